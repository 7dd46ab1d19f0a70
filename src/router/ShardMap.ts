// The shard map built from the config: shards, the ring, which tables are sharded (by which key) or
// reference tables, and the default shard that holds everything else.
//
// Table names: a config name is `table` or `schema.table`, parsed as Postgres parses identifiers (unquoted
// parts are lower-cased, "quoted" parts kept). An unqualified config name means `public.table`. A statement's
// qualified reference matches only that schema; an unqualified one is looked up in each schema of the
// session's search_path in order (default ['public']), as Postgres would resolve it if the configured tables
// are the ones that exist there. `$user` entries are skipped (the proxy does not resolve them).
import type { Config, ShardConfig } from '../config/ConfigSchema.js'
import { canonicalKey, KeyEncodingError, parseInt64, parseUuid, type KeyType } from './KeyEncoding.js'
import type { BoundParam } from './Route.js'
import { ShardRing } from './ShardRing.js'
import type { TableRef } from './StatementPlan.js'

export type GeneratedKey = { sequence: string } | 'uuid'

export interface ShardedTable {
  name: string
  schema?: string
  key: string
  keyType: KeyType
  broadcastWrites: boolean
  /**
   * Where the key of a row an INSERT leaves it out of comes from: nextval of a sequence on the default shard's
   * primary, or a random UUID pgshard makes.
   */
  generatedKey?: GeneratedKey
  /** Foreign keys along which its rows are placed with their parent rows (sharding.tables[].parents). */
  parents: { column: string; table: ShardedTable; references: string }[]
}

/** A column whose values pgshard makes (from a sequence on the default shard, or random UUIDs) for INSERTs that leave it out. */
export interface DrawnColumn {
  column: string
  made: GeneratedKey
}

const DEFAULT_SCHEMA = 'public'

export class ShardMap {
  readonly shards: ShardConfig[]
  readonly ring: ShardRing
  readonly defaultShard: number
  readonly shardedTables: ShardedTable[]
  /** Reference tables as `schema.table`. */
  readonly referenceTables: string[]
  private readonly sharded = new Map<string, ShardedTable>()
  private readonly reference = new Set<string>()
  /** Views pgshard knows (from the catalogs and the CREATE VIEWs it routed) and their definitions, by name. */
  private readonly views = new Map<string, string>()
  /** Columns whose values pgshard draws (sharding.made_columns), by table. */
  private readonly drawn = new Map<string, DrawnColumn[]>()
  private readonly indexByName = new Map<string, number>()

  constructor(config: Config) {
    this.shards = config.shards
    this.shards.forEach((s, i) => this.indexByName.set(s.name, i))
    const ring = config.sharding.ring
    this.ring = new ShardRing(
      this.shards.map((s) => s.name),
      { version: ring.version, pointsPerShard: ring.points_per_shard, seed: ring.seed },
    )
    const fallback = config.sharding.default_shard
    this.defaultShard = fallback === undefined ? 0 : (this.indexByName.get(fallback) ?? 0)
    for (const t of config.sharding.tables) {
      const [schema, name] = qualifiedName(t.name)
      const id = tableId(schema, name)
      if (this.sharded.has(id)) continue
      this.sharded.set(id, {
        name,
        schema,
        key: lastIdentifier(t.key),
        keyType: t.type,
        broadcastWrites: t.broadcast_writes,
        generatedKey: t.key_sequence !== undefined ? { sequence: t.key_sequence } : t.key_uuid ? 'uuid' : undefined,
        parents: [],
      })
    }
    for (const t of config.sharding.tables) {
      const child = this.sharded.get(tableId(...qualifiedName(t.name)))!
      for (const p of t.parents) {
        const parent = this.sharded.get(tableId(...qualifiedName(p.table)))
        if (parent !== undefined) child.parents.push({ column: lastIdentifier(p.column), table: parent, references: lastIdentifier(p.references) })
      }
    }
    for (const r of config.sharding.reference_tables) {
      const id = tableId(...qualifiedName(r))
      if (!this.sharded.has(id)) this.reference.add(id)
    }
    for (const c of config.sharding.made_columns) {
      const id = tableId(...qualifiedName(c.table))
      const column = lastIdentifier(c.column)
      this.drawn.set(id, [...(this.drawn.get(id) ?? []), { column, made: c.sequence !== undefined ? { sequence: c.sequence } : 'uuid' }])
    }
    this.shardedTables = [...this.sharded.values()]
    this.referenceTables = [...this.reference].map((id) => id.replace('\u0000', '.'))
  }

  /** The reference tables, schema and name apart (as Postgres reads them from the config's names). */
  referenceTableNames(): { schema: string; name: string }[] {
    return [...this.reference].map((id) => {
      const [schema, name] = id.split('\u0000')
      return { schema, name }
    })
  }

  shardIndex(name: string): number | undefined {
    return this.indexByName.get(name)
  }

  shardName(index: number): string {
    return this.shards[index]?.name ?? `#${index}`
  }

  /**
   * Whether rows of `a` and `b` equal on these columns are on one shard: their sharding keys (of one key family),
   * or a foreign key one declares to the other as its parent.
   */
  colocatedBy(a: ShardedTable, aColumn: string, b: ShardedTable, bColumn: string): boolean {
    if (a.key === aColumn && b.key === bColumn) return keyFamily(a.keyType) === keyFamily(b.keyType)
    const declares = (child: ShardedTable, column: string, parent: ShardedTable, references: string) =>
      child.parents.some((p) => p.column === column && p.table === parent && p.references === references)
    return declares(a, aColumn, b, bColumn) || declares(b, bColumn, a, aColumn)
  }

  shardedTable(ref: TableRef, searchPath: string[]): ShardedTable | undefined {
    for (const schema of candidateSchemas(ref, searchPath)) {
      const t = this.sharded.get(tableId(schema, ref.name))
      if (t) return t
    }
    return undefined
  }

  /**
   * A partition of a sharded table (CREATE TABLE … PARTITION OF, ATTACH PARTITION, or read from a catalog) is
   * sharded by the same key: its rows are that table's rows, on the shards of their keys. `child` unqualified
   * is in the first schema of the search path, where Postgres creates it. Returns both names qualified (to learn
   * again into another map), or undefined when `parent` is not sharded.
   */
  learnPartition(child: TableRef, parent: TableRef, searchPath: string[]): { child: TableRef; parent: TableRef } | undefined {
    const table = this.shardedTable(parent, searchPath)
    if (table === undefined) return undefined
    const schema = this.creationSchema(child, searchPath)
    const id = tableId(schema, child.name)
    if (!this.sharded.has(id)) {
      const partition: ShardedTable = { ...table, name: child.name, schema }
      this.sharded.set(id, partition)
      this.shardedTables.push(partition)
    }
    return { child: { schema, name: child.name }, parent: { schema: table.schema ?? DEFAULT_SCHEMA, name: table.name } }
  }

  /**
   * The schema an unqualified CREATE makes its relation in: Postgres takes the first schema of the search_path that
   * exists, so one pgshard knows holds relations comes first (`"$user"` of a role without its own schema does not).
   */
  private creationSchema(ref: TableRef, searchPath: string[]): string {
    if (ref.schema !== undefined) return ref.schema
    const candidates = candidateSchemas(ref, searchPath)
    const known = new Set([DEFAULT_SCHEMA, ...[...this.sharded.keys(), ...this.reference, ...this.views.keys()].map((id) => id.slice(0, id.indexOf('\u0000')))])
    return candidates.find((s) => known.has(s)) ?? candidates[0] ?? DEFAULT_SCHEMA
  }

  /** A view (or materialized view) and its definition, lower case: what it reads decides where it may be read. */
  learnView(view: TableRef, definition: string, searchPath: string[]): TableRef {
    const schema = this.creationSchema(view, searchPath)
    this.views.set(tableId(schema, view.name), definition.toLowerCase())
    return { schema, name: view.name }
  }

  /** Forgets a view (dropped, or renamed): the schema-qualified view, if it was known. */
  forgetView(ref: TableRef, searchPath: string[]): Required<Pick<TableRef, 'schema' | 'name'>> | undefined {
    for (const schema of candidateSchemas(ref, searchPath)) {
      if (this.views.delete(tableId(schema, ref.name))) return { schema, name: ref.name }
    }
    return undefined
  }

  /** The sharded table a known view's definition names, if `ref` is such a view. */
  shardsUnderView(ref: TableRef, searchPath: string[]): ShardedTable | undefined {
    if (this.views.size === 0) return undefined
    for (const schema of candidateSchemas(ref, searchPath)) {
      const definition = this.views.get(tableId(schema, ref.name))
      if (definition !== undefined) return this.shardedTableIn(definition)
    }
    return undefined
  }

  /**
   * The sharded table a view's definition (lower case) reads: named in it, or read by a known view it names
   * (a view over a view over a sharded table).
   */
  shardedTableIn(definition: string, depth = 0): ShardedTable | undefined {
    const table = this.shardedTables.find((t) => namesTable(definition, t))
    if (table !== undefined || depth >= MAX_VIEW_DEPTH) return table
    for (const [id, inner] of this.views) {
      if (!namesWord(definition, id.slice(id.indexOf('\u0000') + 1).toLowerCase())) continue
      const under = this.shardedTableIn(inner, depth + 1)
      if (under !== undefined) return under
    }
    return undefined
  }

  /** The columns of a sharded or reference table whose values pgshard draws from a sequence. */
  drawnColumns(ref: TableRef, searchPath: string[]): DrawnColumn[] {
    for (const schema of candidateSchemas(ref, searchPath)) {
      const id = tableId(schema, ref.name)
      if (this.sharded.has(id) || this.reference.has(id)) return this.drawn.get(id) ?? []
    }
    return []
  }

  isReferenceTable(ref: TableRef, searchPath: string[]): boolean {
    return candidateSchemas(ref, searchPath).some((schema) => this.reference.has(tableId(schema, ref.name)))
  }

  /** The shard owning a key value of `table`; throws KeyEncodingError (23502 for NULL). */
  shardForKey(table: ShardedTable, value: BoundParam): number {
    if (value.value === null) {
      throw new KeyEncodingError(`sharding key "${table.key}" of "${table.name}" is NULL: it must have a value`, '23502')
    }
    return this.ring.shardFor(canonicalKey(table.keyType, value.value, value.format === 1 ? 1 : 0, value.typeOid))
  }

  /**
   * The shard of a `key=VALUE` hint when the key type is unknown: an integer (as int8in parses it) is read
   * as an integer key, else a uuid (as uuid_in parses it) as a uuid key, else the text as is. A text key that
   * looks like a number or a uuid ('042', upper-case uuid) must be routed with its table's type instead
   * (the Router does that when the statement names the table).
   */
  shardForHint(keyHint: string): number {
    const n = parseInt64(keyHint)
    if (n !== undefined) return this.ring.shardFor(n.toString())
    return this.ring.shardFor(parseUuid(keyHint) ?? keyHint)
  }

  /** The shard of a hint value for a known key type; throws KeyEncodingError. */
  shardForTypedHint(keyType: KeyType, keyHint: string): number {
    return this.shardForValue(keyType, keyHint, 0, 0)
  }

  /** The shard of a key value in text or binary form (a COPY field); throws KeyEncodingError. */
  shardForValue(keyType: KeyType, value: string | Buffer, format: 0 | 1, typeOid: number): number {
    return this.ring.shardFor(canonicalKey(keyType, value, format, typeOid))
  }
}

/** Views read through views are followed this deep (Postgres allows no cycle; this bounds the search). */
const MAX_VIEW_DEPTH = 8

function tableId(schema: string, name: string): string {
  return `${schema}\u0000${name}`
}

function candidateSchemas(ref: TableRef, searchPath: string[]): string[] {
  if (ref.schema !== undefined) return [ref.schema]
  return searchPath.filter((s) => s !== '$user' && s !== '"$user"')
}

function qualifiedName(text: string): [schema: string, name: string] {
  const parts = parseIdentifiers(text)
  if (parts.length === 0) return [DEFAULT_SCHEMA, text]
  if (parts.length === 1) return [DEFAULT_SCHEMA, parts[0]]
  return [parts.at(-2)!, parts.at(-1)!]
}

/** Splits a dotted name into identifiers: "Quoted" kept as written ("" is a quote), unquoted lower-cased. */
export function parseIdentifiers(text: string): string[] {
  const parts: string[] = []
  let i = 0
  while (i <= text.length) {
    let part = ''
    if (text[i] === '"') {
      i++
      while (i < text.length && !(text[i] === '"' && text[i + 1] !== '"')) {
        part += text[i]
        i += text[i] === '"' ? 2 : 1
      }
      i++
    } else {
      while (i < text.length && text[i] !== '.') part += text[i++]
      part = part.trim().replace(/[A-Z]/g, (c) => c.toLowerCase())
    }
    parts.push(part)
    if (text[i] !== '.') break
    i++
  }
  return parts
}

/** Whether SQL text (lower case: a function's body, a view's definition) names `table`, as a whole word. */
export function namesTable(text: string, table: ShardedTable): boolean {
  return namesWord(text, table.name.toLowerCase())
}

function namesWord(text: string, word: string): boolean {
  for (let at = text.indexOf(word); at >= 0; at = text.indexOf(word, at + 1)) {
    if (!/[a-z0-9_$]/.test(text[at - 1] ?? ' ') && !/[a-z0-9_$]/.test(text[at + word.length] ?? ' ')) return true
  }
  return false
}

/** Key types whose equal values are placed alike (integers of any width are encoded as int64). */
export function keyFamily(type: ShardedTable['keyType']): string {
  return type === 'integer' ? 'bigint' : type
}

/** The last name of a possibly qualified identifier, as Postgres folds it. */
function lastIdentifier(name: string): string {
  return parseIdentifiers(name).at(-1) ?? name
}
