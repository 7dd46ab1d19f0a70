import type { DatabaseConfig } from '../config/ConfigSchema.js'
import { canonicalKey, type KeyType } from '../router/KeyEncoding.js'
import type { ShardedTable, ShardMap } from '../router/ShardMap.js'
import { quoteIdent } from '../router/SqlQuoting.js'
import type { MoveParticipant, MoveTransaction, ShardPrimary } from './MoveTransaction.js'

/** Rows of one table that went from one shard to another. */
export interface MovedRows {
  database: string
  table: string
  from: string
  to: string
  rows: number
}

export interface RowMovePlan {
  oldMap: ShardMap
  newMap: ShardMap
  /** The primary of every shard of either map, by shard name. */
  primaries: ReadonlyMap<string, ShardPrimary>
  /** The database name on a shard's primary for a logical database (a node may override it). */
  serverDatabase(shard: string, database: DatabaseConfig): string
  databases: readonly DatabaseConfig[]
}

/** Distinct keys read per round trip: bounds the memory of one step (all rows of those keys). */
const KEYS_PER_BATCH = 1000
/** Rows of a reference table copied per round trip. */
const ROWS_PER_BATCH = 1000
const COPY_CURSOR = 'pgshard_reshard_rows'

const KEY_CURSOR = 'pgshard_reshard_keys'

const SQL_TYPE: Record<KeyType, string> = { bigint: 'bigint', integer: 'integer', text: 'text', uuid: 'uuid' }

interface Column {
  name: string
  type: string
}

/**
 * Moves the rows of every sharded table whose key the new map places on another shard, inside `tx` (nothing
 * is committed here). Each old shard's distinct keys are read through a cursor, a batch at a time; the rows of
 * keys that move are read as text, inserted on their new shard (cast back column by column, so a table's
 * columns may sit in another order there) and deleted where they were. Generated columns are recomputed by
 * the destination; identity columns keep their values. Rows whose key is NULL stay where they are. Shards the
 * new map adds get every reference table's rows from the shard that holds the unsharded tables.
 */
export async function moveRows(plan: RowMovePlan, tx: MoveTransaction): Promise<MovedRows[]> {
  const moved: MovedRows[] = []
  const oldShards = plan.oldMap.shards.map((s) => s.name)
  const addedShards = plan.newMap.shards.map((s) => s.name).filter((name) => !oldShards.includes(name))
  const holder = plan.oldMap.shardName(plan.oldMap.defaultShard)
  for (const database of plan.databases) {
    for (const table of plan.newMap.shardedTables) {
      for (const from of oldShards) {
        const source = await tx.on(plan.primaries.get(from)!, plan.serverDatabase(from, database))
        const counts = await moveTableFrom(plan, tx, database, table, source)
        for (const [to, rows] of counts) moved.push({ database: database.name, table: qualifiedName(table), from, to, rows })
      }
    }
    // A reference table has the same rows on every shard, so an added shard gets all of them.
    for (const table of plan.newMap.referenceTableNames()) {
      const source = await tx.on(plan.primaries.get(holder)!, plan.serverDatabase(holder, database))
      for (const to of addedShards) {
        const destination = await tx.on(plan.primaries.get(to)!, plan.serverDatabase(to, database))
        const rows = await copyTable(`${quoteIdent(table.schema)}.${quoteIdent(table.name)}`, source, destination)
        moved.push({ database: database.name, table: `${table.schema}.${table.name}`, from: holder, to, rows })
      }
    }
  }
  return moved
}

/** Replaces what `destination` holds of a table with every row `source` has (a reference table on an added shard). */
async function copyTable(rel: string, source: MoveParticipant, destination: MoveParticipant): Promise<number> {
  const columns = await columnsOf(source, rel)
  await destination.query(`DELETE FROM ${rel}`)
  await source.query(`DECLARE ${COPY_CURSOR} NO SCROLL CURSOR FOR SELECT ${textColumns(columns)} FROM ${rel}`)
  let copied = 0
  for (;;) {
    const rows = await source.query<Record<string, string | null>>(`FETCH ${ROWS_PER_BATCH} FROM ${COPY_CURSOR}`)
    if (rows.length === 0) break
    await insertRows(destination, rel, columns, rows)
    copied += rows.length
  }
  await source.query(`CLOSE ${COPY_CURSOR}`)
  return copied
}

/** Every stored column as text, `c0`, `c1` …: the exact text form, whatever the type. */
function textColumns(columns: Column[]): string {
  return columns.map((c, i) => `${quoteIdent(c.name)}::text AS c${i}`).join(', ')
}

/** Inserts rows read by textColumns, each value cast back to its column's type. */
async function insertRows(destination: MoveParticipant, rel: string, columns: Column[], rows: Record<string, string | null>[]): Promise<void> {
  await destination.query(
    `INSERT INTO ${rel} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) OVERRIDING SYSTEM VALUE ` +
      `SELECT ${columns.map((c, i) => `c${i}::${c.type}`).join(', ')} FROM unnest(${columns.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS u(${columns.map((_, i) => `c${i}`).join(', ')})`,
    columns.map((_, i) => rows.map((r) => r[`c${i}`])),
  )
}

async function moveTableFrom(plan: RowMovePlan, tx: MoveTransaction, database: DatabaseConfig, table: ShardedTable, source: MoveParticipant): Promise<Map<string, number>> {
  const rel = `${quoteIdent(table.schema ?? 'public')}.${quoteIdent(table.name)}`
  const key = quoteIdent(table.key)
  const keyType = SQL_TYPE[table.keyType]
  const columns = await columnsOf(source, rel)
  const counts = new Map<string, number>()
  // A cursor reads the keys as they were when it opened: the deletes that follow do not disturb it, and rows
  // moved here from another shard (which stay) are not seen again.
  await source.query(`DECLARE ${KEY_CURSOR} NO SCROLL CURSOR FOR SELECT DISTINCT ${key}::text AS k, ${key} AS o FROM ${rel} WHERE ${key} IS NOT NULL ORDER BY o`)
  for (;;) {
    const keys = await source.query<{ k: string }>(`FETCH ${KEYS_PER_BATCH} FROM ${KEY_CURSOR}`)
    if (keys.length === 0) {
      await source.query(`CLOSE ${KEY_CURSOR}`)
      return counts
    }
    const byOwner = new Map<string, string[]>()
    for (const { k } of keys) {
      const owner = plan.newMap.shardName(plan.newMap.ring.shardFor(canonicalKey(table.keyType, k, 0, 0)))
      if (owner === source.primary.shard) continue
      const list = byOwner.get(owner)
      if (list) list.push(k)
      else byOwner.set(owner, [k])
    }
    for (const [owner, ownerKeys] of byOwner) {
      const destination = await tx.on(plan.primaries.get(owner)!, plan.serverDatabase(owner, database))
      const rows = await source.query<Record<string, string | null>>(`SELECT ${textColumns(columns)} FROM ${rel} WHERE ${key} = ANY($1::${keyType}[])`, [ownerKeys])
      if (rows.length === 0) continue
      await insertRows(destination, rel, columns, rows)
      await source.query(`DELETE FROM ${rel} WHERE ${key} = ANY($1::${keyType}[])`, [ownerKeys])
      counts.set(owner, (counts.get(owner) ?? 0) + rows.length)
    }
  }
}

/** The columns a row is moved by: stored ones, generated ones excepted (the destination computes them). */
async function columnsOf(source: MoveParticipant, rel: string): Promise<Column[]> {
  return source.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum`,
    [rel],
  )
}

function qualifiedName(t: ShardedTable): string {
  return `${t.schema ?? 'public'}.${t.name}`
}
