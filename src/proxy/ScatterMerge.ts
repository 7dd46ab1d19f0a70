import { PgError, SqlState } from '../protocol/PgError.js'
import { errorResponse, type FieldDescription } from '../protocol/ServerMessages.js'
import { MergeError, ResultMerger } from '../router/merge/ResultMerger.js'
import type { ColumnInfo } from '../router/merge/ColumnInfo.js'
import type { MergeTypes } from '../router/merge/EnumTypes.js'
import { StaleEnumLabel } from '../router/merge/SqlValue.js'
import type { IntervalStyle } from '../router/merge/IntervalText.js'
import { isCreatedType, TypeOid } from '../router/merge/TypeOid.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import type { BoundParam } from '../router/Route.js'
import type { ScatterPlan } from '../router/StatementPlan.js'
import type { ShardConnection } from './MultiShardExecutor.js'

// What every read across shards shares: the merge of the shards' rows, the client's view of its columns, and
// the errors of a merge or a lost shard as the client gets them.

/** Sizes of the types a merge may produce (avg of integers becomes numeric …), for the RowDescription. */
const TYPE_SIZE: Record<number, number> = { 20: 8, 21: 2, 23: 4, 700: 4, 701: 8, 16: 1, 1082: 4, 1114: 8, 1184: 8, 2950: 16 }

/** The ErrorResponse for a shard whose connection was lost while it answered. */
export function lostConnection(reason: unknown): Buffer {
  return errorResponse(new PgError(SqlState.CONNECTION_FAILURE, String(reason instanceof Error ? reason.message : reason)))
}

/** What failed while merging, as the client's error; `types` hears when an enum's labels were out of date. */
export function asMergeFailure(err: unknown, types: MergeTypes): PgError {
  if (err instanceof StaleEnumLabel) types.stale()
  return err instanceof PgError ? err : err instanceof MergeError ? new PgError(err.code, err.message, err.hint === undefined ? {} : { hint: err.hint }) : new PgError(SqlState.INTERNAL_ERROR, String(err))
}

/** The merge of the shards' answers, once every shard described its rows alike. */
export function mergerFor(
  plan: ScatterPlan,
  held: ShardConnection[],
  described: FieldDescription[][],
  param: (n: number) => BoundParam | undefined,
  types: MergeTypes,
): ResultMerger {
  for (let s = 1; s < described.length; s++) checkSameShape(described[0]!, described[s]!, held[0]!.placement.shardName, held[s]!.placement.shardName, types)
  // Text orders as the shards' database does (the first shard's: their databases are made alike).
  const collation = types.collationOf(held[0]!.placement.shard, held[0]!.placement.serverDatabase)
  const intervalStyle = intervalStyleOf(held[0]!.conn)
  const columns = described[0]!.map((f, i): ColumnInfo => {
    const column: ColumnInfo = { name: f.name, typeOid: f.typeOid, format: f.format === 1 ? 1 : 0, collation, ...(f.typeOid === TypeOid.interval ? { intervalStyle } : {}) }
    const labels = isCreatedType(f.typeOid) ? types.labelsOf(described.map((d) => serverOid(d[i]!))) : undefined
    return labels === undefined ? column : { ...column, labels }
  })
  return new ResultMerger(plan, columns, held.length, param)
}

/**
 * The IntervalStyle a shard's connection prints in: the client's setting, as applied to it (a SET or the
 * set_config pgshard records from the server's report), else the server's own at log-in.
 */
function intervalStyleOf(conn: ServerConnection): IntervalStyle {
  const applied = conn.settings.get('intervalstyle')?.match(INTERVAL_STYLES)?.[0] ?? conn.serverParams.get('IntervalStyle')?.match(INTERVAL_STYLES)?.[0]
  return (applied?.toLowerCase() as IntervalStyle | undefined) ?? 'postgres'
}

const INTERVAL_STYLES = /postgres_verbose|postgres|sql_standard|iso_8601/i

/** The OID the shard gave (the catalogs' enum labels are listed by each shard's own numbers). */
const serverOid = (f: FieldDescription) => f.serverTypeOid ?? f.typeOid

/**
 * Types made on each shard (enums, extensions' types) get an OID of each shard's own: their columns match when
 * their values come as text, which is the same on every shard, and so do an enum's binary values (its label).
 * Binary values of arrays and composites hold element OIDs, so there the OIDs must agree.
 */
function checkSameShape(a: FieldDescription[], b: FieldDescription[], shardA: string, shardB: string, types: MergeTypes): void {
  const differ = (what: string) => new PgError(SqlState.FEATURE_NOT_SUPPORTED, `shards ${shardA} and ${shardB} ${what}; their schemas differ`, { hint: 'Apply the same DDL on every shard.' })
  if (a.length !== b.length) throw differ('describe the result differently')
  a.forEach((f, i) => {
    const g = b[i]!
    if (f.name !== g.name || f.format !== g.format) throw differ('describe the result differently')
    if (serverOid(f) === serverOid(g)) return
    if (f.typeOid !== g.typeOid && !(isCreatedType(f.typeOid) && isCreatedType(g.typeOid))) throw differ(`give column "${f.name}" different types`)
    if (f.format === 1 && types.labelsOf([serverOid(f), serverOid(g)]) === undefined) {
      throw new PgError(
        SqlState.FEATURE_NOT_SUPPORTED,
        `column "${f.name}" has a type made on each shard (an array or composite of one, an extension's type) whose OID differs between shards ${shardA} and ${shardB}, and its binary values may hold that OID`,
        { hint: 'Ask for the column in text format, or cast it (e.g. ::text). An enum made since pgshard last read the catalogs is merged in binary too once they are read again (a moment later, or after RELOAD).' },
      )
    }
  })
}

/** The client's RowDescription: visible columns, with the type the merge produces (avg becomes numeric …). */
export function clientFields(fields: FieldDescription[], output: { name: string; typeOid: number; format: 0 | 1 }[]): FieldDescription[] {
  return output.map((o, i) => {
    const f = fields[i]
    if (f.typeOid === o.typeOid) return f
    return { name: o.name, typeOid: o.typeOid, typeSize: TYPE_SIZE[o.typeOid] ?? -1, typeModifier: -1, format: o.format }
  })
}
