import type { FieldDescription } from '../protocol/ServerMessages.js'
import { TEXT_OID, commandComplete, dataRow, rowDescription } from '../protocol/ServerMessages.js'
import type { Role } from '../router/Route.js'
import type { ScatterPlan } from '../router/StatementPlan.js'
import { encodeStatement, failureMessage, isFailure, type ClientOutput, type MultiShardExecutor, type ReplyShape, type ShardStatement } from './MultiShardExecutor.js'
import { callShard, type ShardReply } from './ShardCall.js'

const QUERY_PLAN: FieldDescription[] = [{ name: 'QUERY PLAN', typeOid: TEXT_OID }]

/**
 * EXPLAIN of a read across shards, as one QUERY PLAN column: how pgshard runs it (`reason`) and the text each shard
 * runs, then each shard's own plan of it under the shard's name. Each shard explains `stmt` (EXPLAIN and the
 * client's options before the shards' text); with ANALYZE each runs it. A shard's error is the client's. Without
 * `plan` (and `shardSql`), the EXPLAIN of a write, which each shard it may write explains as the client wrote it.
 */
export async function explainAcrossShards(
  executor: MultiShardExecutor,
  out: ClientOutput,
  shards: number[],
  role: Role,
  stmt: ShardStatement,
  shardSql: string | null,
  plan: ScatterPlan | null,
  reason: string,
  shape: ReplyShape,
): Promise<boolean> {
  if (shape.describe) out.emit(rowDescription(QUERY_PLAN))
  if (!shape.execute) return true
  const held = await executor.connections(shards, role)
  try {
    const replies = await executor.cancellable(held, () => Promise.allSettled(held.map((h) => callShard(h.conn, encodeStatement(stmt, h.conn, h.placement.shard)))))
    const failed = replies.find(isFailure)
    if (failed !== undefined) {
      out.emit(failureMessage(failed))
      return false
    }
    const lines = [`pgshard: ${reason}`]
    if (plan !== null) lines.push(`  Merge: ${mergeSteps(plan)}`)
    if (shardSql !== null) lines.push(`  Shard query: ${shardSql.replace(/\s+/g, ' ').trim()}`)
    replies.forEach((r, i) => {
      const { placement } = held[i]!
      lines.push(`  ->  Shard ${placement.shardName} (${placement.nodeName})`)
      for (const row of (r as PromiseFulfilledResult<ShardReply>).value.rows) lines.push(`        ${row[0]?.toString('utf8') ?? ''}`)
    })
    for (const line of lines) out.emit(dataRow([line]))
    out.emit(commandComplete('EXPLAIN'))
    return true
  } finally {
    executor.giveBack(held)
  }
}

/** What pgshard does with the shards' rows, in the order it does it. */
function mergeSteps(plan: ScatterPlan): string {
  const aggregated = plan.groupBy !== null || plan.columns.some((c) => c.kind === 'aggregate')
  const steps = [
    aggregated ? (plan.groupBy !== null && plan.groupBy.length > 0 ? 'groups folded' : 'aggregates folded') : 'rows appended',
    plan.having !== null ? 'HAVING' : '',
    plan.distinct ? 'DISTINCT' : '',
    plan.orderBy.length > 0 ? 'ORDER BY' : '',
    plan.offset !== null ? 'OFFSET' : '',
    plan.limit !== null ? 'LIMIT' : '',
  ]
  return steps.filter((s) => s !== '').join(', ')
}
