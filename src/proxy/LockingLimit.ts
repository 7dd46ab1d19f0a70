import { encodeQuery } from '../protocol/FrontendMessages.js'
import type { RowShare } from '../router/merge/ResultMerger.js'
import type { BoundParam, Role } from '../router/Route.js'
import type { ScatterPlan } from '../router/StatementPlan.js'
import { callEach } from './BatchedScatterRead.js'
import type { MultiShardExecutor, ReplyShape, ShardStatement } from './MultiShardExecutor.js'
import { scatterRead } from './SharedSubqueries.js'

/** The savepoint each shard locks inside (released before the statement ends, so the client never sees it). */
const SAVEPOINT = 'pgshard_locking_limit'

/**
 * A locking read with LIMIT or OFFSET across shards inside the client's transaction (`SELECT … ORDER BY created
 * LIMIT 1 FOR UPDATE [SKIP LOCKED]`: Django's select_for_update().first(), a job queue taking its next job). Each
 * shard locks the first rows it returns, more than the merge keeps: it locks inside a savepoint, which is rolled
 * back on the shards the merge kept no row of, releasing their locks, and released on the others. A shard whose
 * rows the merge kept only some of keeps its locks on the rest until the transaction ends (none with LIMIT 1).
 * False when the client got an error (the transaction has failed then: its ROLLBACK ends the savepoints).
 */
export async function lockingLimitRead(
  executor: MultiShardExecutor,
  shards: number[],
  role: Role,
  plan: ScatterPlan,
  stmt: ShardStatement,
  restore: (sql: string) => string,
  param: (n: number) => BoundParam | undefined,
  shape: ReplyShape,
): Promise<boolean> {
  const held = await executor.connections(shards, role)
  const every = held.map((_, i) => i)
  if ((await callEach(executor, held, every, encodeQuery(`SAVEPOINT ${SAVEPOINT}`))) === null) return false
  let shares: readonly RowShare[] = []
  if (!(await scatterRead(executor, shards, role, plan, stmt, restore, param, shape, false, undefined, (s) => (shares = s)))) return false
  const kept = (shard: number) => (shares[shard]?.kept ?? 0) + (shares[shard]?.skipped ?? 0) > 0
  const end = (_: unknown, shard: number) =>
    encodeQuery(kept(shard) ? `RELEASE SAVEPOINT ${SAVEPOINT}` : `ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`)
  return (await callEach(executor, held, every, end)) !== null
}
