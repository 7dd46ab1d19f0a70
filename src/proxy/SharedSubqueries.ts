// A subquery in FROM whose rows its LIMIT or OFFSET picks (an ORM's first rows with their eager-loaded children:
// `SELECT … FROM (SELECT … FROM users ORDER BY users.id LIMIT 5) anon_1 LEFT JOIN orders …`) would pick each
// shard's own first rows if each shard ran it as written. It runs first across shards, merged as a read of its
// own, which tells how many of each shard's rows, in that shard's order, its OFFSET skips and its LIMIT keeps;
// each shard then runs the statement with exactly those in the subquery (`LIMIT kept OFFSET skipped`), so that
// the shards' rows of it are the rows one Postgres would pick. Two reads: a row written between them may be seen
// by the second (as by a second statement in READ COMMITTED); ties in its ORDER BY are broken by each shard, as
// one Postgres breaks them as it likes.
import { usedParams } from '../router/LiteralNormalizer.js'
import type { BoundParam, Role } from '../router/Route.js'
import type { RowShare } from '../router/merge/ResultMerger.js'
import type { LimitedSubquery, ScatterPlan } from '../router/StatementPlan.js'
import type { MultiShardExecutor, ReplyShape, ShardStatement, SuspendedScatter } from './MultiShardExecutor.js'

const TEXT_OID = 25

/**
 * A read across shards as its scatter plan runs it: the shares of its LIMIT subqueries learnt first, then every
 * shard's part, merged into the executor's output. `counted`: the output counts the rows (CountedRows), which
 * then come as text, all of them. False when the output got an error.
 */
export async function scatterRead(
  executor: MultiShardExecutor,
  shards: number[],
  role: Role,
  read: ScatterPlan,
  stmt: ShardStatement,
  restore: (sql: string) => string,
  param: (n: number) => BoundParam | undefined,
  shape: ReplyShape,
  counted: boolean,
  onSuspend?: (scatter: SuspendedScatter) => void,
  onShares?: (shares: readonly RowShare[]) => void,
): Promise<boolean> {
  const sqlByShard = read.limited ? await sharedTexts(executor, shards, role, read, stmt, restore, param, shape.execute) : undefined
  if (sqlByShard === null) return false
  const bind = counted && stmt.bind ? { ...stmt.bind, resultFormats: [] } : stmt.bind
  const shardStmt = { sql: restore(read.shardSql), ...(bind ? { bind } : {}), ...(sqlByShard ? { sqlByShard } : {}) }
  return executor.scatter(shards, role, read, shardStmt, counted ? { ...shape, maxRows: 0 } : shape, param, counted ? undefined : onSuspend, onShares)
}

/**
 * The text each shard (by number) runs of `plan`, its marked subqueries given their shares and `restore`d; null
 * when the client got an error. Without `execute` (a Describe), the subqueries are left empty: only the columns count.
 */
export async function sharedTexts(
  executor: MultiShardExecutor,
  shards: number[],
  role: Role,
  plan: ScatterPlan,
  stmt: ShardStatement,
  restore: (sql: string) => string,
  param: (n: number) => BoundParam | undefined,
  execute: boolean,
): Promise<string[] | null> {
  let texts = shards.map(() => plan.shardSql)
  for (const l of plan.limited ?? []) {
    const clause = await clauseByShard(l, execute ? () => executor.rowShares(shards, role, l.plan, firstRead(restore(l.plan.shardSql), stmt.bind), param) : null)
    if (clause === null) return null
    texts = texts.map((text, i) => text.replace(l.marker, () => clause(shards[i]!)))
  }
  const byShard: string[] = []
  shards.forEach((shard, i) => (byShard[shard] = restore(texts[i]!)))
  return byShard
}

/**
 * What replaces a subquery's marker on a shard: its own clause, or that shard's share of its rows, which `read`
 * learns (null without Execute: the subquery is left empty); null when the client got an error.
 */
async function clauseByShard(l: LimitedSubquery, read: (() => Promise<readonly RowShare[] | null>) | null): Promise<((shard: number) => string) | null> {
  // Over no sharded table, every shard has all its rows and picks the same ones.
  if (l.spread === false) return () => l.clause
  if (read === null) return () => ' LIMIT 0'
  const shares = await read()
  if (shares === null) return null
  return (shard) => ` LIMIT ${shares[shard]?.kept ?? 0} OFFSET ${shares[shard]?.skipped ?? 0}`
}

/**
 * A subquery's read, with the client's Bind: the parameters its text does not use are sent as NULL text (their
 * types could not be told), and its rows come as text (only pgshard reads them).
 */
export function firstRead(sql: string, bind: ShardStatement['bind']): ShardStatement {
  if (bind === undefined) return { sql }
  const used = usedParams(sql)
  return {
    sql,
    bind: {
      params: bind.params.map((p, i) => (used.has(i + 1) ? p : null)),
      formats: bind.formats,
      types: bind.params.map((_, i) => (used.has(i + 1) ? (bind.types[i] ?? 0) : (bind.types[i] || TEXT_OID))),
      resultFormats: [],
    },
  }
}
