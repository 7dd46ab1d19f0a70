// How to scatter a set operation of SELECTs over sharded tables (UNION, INTERSECT, EXCEPT) and merge the answers.
// Each shard runs the whole statement over its rows: when no SELECT combines rows, a shard's UNION ALL is its share
// of the whole, and a UNION's rows are the distinct rows of the shards' (the merge removes the duplicates between
// shards). INTERSECT and EXCEPT (and a UNION under UNION ALL) are exact on each shard only when equal rows are on
// one shard: the router requires a column that holds the sharding key in every SELECT (keyedBy). ORDER BY names
// output columns (Postgres allows nothing else there), so the merge orders by them; LIMIT n OFFSET m becomes
// LIMIT n + m on each shard.
import type { Node, ResTarget, SelectStmt } from 'libpg-query'
import { asNode, stringList } from './ast/AstNode.js'
import type { FromSources } from './ast/QueryScopes.js'
import { derivedSources, isStar, outputName, rowCombining, setOperationNeedingKey, unionColumns } from './LevelSources.js'
import { int8, limitValue, refuse, rewrittenSelect, sortDirection, Unmergeable, type ScatterResult } from './ScatterPlanner.js'
import { layoutSetOperation, type Span } from './SelectLayout.js'
import type { OrderKey, ScatterPlan, TableRef, ValueRef } from './StatementPlan.js'
import { decodeBytes, type StatementText } from './StatementText.js'

/** The scatter plan of the set operation `s` in text[start, end) whose SELECTs are `branches` (QueryScopes), or why none. */
export function planUnion(
  s: SelectStmt,
  text: StatementText,
  start: number,
  end: number,
  branches: { select: SelectStmt; from: FromSources }[],
  nested: TableRef[],
): ScatterResult {
  try {
    return { scatter: union(s, text, start, end, branches, nested) }
  } catch (err) {
    if (err instanceof Unmergeable) return { unmergeable: err.message }
    throw err
  }
}

function union(s: SelectStmt, text: StatementText, start: number, end: number, branches: { select: SelectStmt; from: FromSources }[], nested: TableRef[]): ScatterPlan {
  const op = s.op!.replace('SETOP_', '')
  if (s.withClause !== undefined) refuse(`a WITH query (CTE) over a ${op} across shards`)
  if (s.lockingClause !== undefined) refuse(`a locking clause (FOR UPDATE/SHARE) on a ${op}`)
  if (s.limitOption === 'LIMIT_OPTION_WITH_TIES') refuse('FETCH FIRST … WITH TIES')
  for (const { select } of branches) {
    const combines = rowCombining(select)
    if (combines !== undefined) refuse(`${combines} in a SELECT of a ${op} across shards: each shard would apply it to its own rows only`)
    if (select.withClause !== undefined) refuse(`a WITH query (CTE) in a SELECT of a ${op} across shards`)
  }
  const targets = (branches[0]!.select.targetList ?? []).map((t) => asNode(t, 'ResTarget') ?? {})
  if (targets.some((t) => isStar(t.val))) refuse(`a * in a ${op} across shards (name the columns)`)
  const clauses = layoutSetOperation(text.bytes, start, end)
  if (clauses === null) refuse(`a ${op} whose text pgshard cannot map`)
  const keyedBy = setOperationNeedingKey(s, true)
  const orderBy = (s.sortClause ?? []).map((o): OrderKey => {
    const sort = asNode(o, 'SortBy') ?? {}
    if (sort.useOp !== undefined) refuse('ORDER BY … USING')
    return { column: outputColumn(sort.node, targets), ...sortDirection(sort) }
  })
  const limit = limitValue(s.limitCount, 'LIMIT')
  const offset = limitValue(s.limitOffset, 'OFFSET')
  return {
    shardSql: offset === null ? text.slice(start, end) : checked(decodeBytes(foldOffset(text.bytes, start, end, clauses, limit, offset), false), s),
    columns: targets.map(() => ({ kind: 'value' })),
    visibleColumns: targets.length,
    groupBy: null,
    distinct: s.all !== true,
    orderBy,
    limit,
    offset,
    having: null,
    sources: {
      relations: [],
      join: { function: 'a set operation' },
      equalities: [],
      nested,
      correlated: [],
      calls: [],
      distinctArgs: [],
      derived: branches.map(({ select, from }, i) => derivedSources({ select, from, alias: `SELECT ${i + 1} of the ${op}` })),
      union: true,
      unionColumns: unionColumns(branches.map((b) => b.select), undefined),
      ...(keyedBy !== undefined ? { keyedBy } : {}),
    },
  }
}

/** The shards' text, checked to parse as the same set operation (rewrittenSelect). */
function checked(sql: string, s: SelectStmt): string {
  const parsed = rewrittenSelect(sql)
  if (parsed === undefined || parsed.op !== s.op || parsed.all !== s.all) refuse('a set operation pgshard could not rewrite for the shards')
  return sql
}

/** The output column an ORDER BY item of a set operation names: a position, or the name of a column of the first SELECT. */
function outputColumn(n: Node | undefined, targets: ResTarget[]): number {
  const position = asNode(n, 'A_Const')?.ival
  if (position !== undefined) {
    const p = position.ival ?? 0
    if (p < 1 || p > targets.length) refuse(`ORDER BY position ${p}`)
    return p - 1
  }
  const fields = stringList(asNode(n, 'ColumnRef')?.fields)
  const name = fields?.length === 1 ? fields[0] : undefined
  const named = name === undefined ? [] : targets.flatMap((t, i) => (outputName(t) === name ? [i] : []))
  if (named.length !== 1) refuse('an ORDER BY of a set operation that is not one output column')
  return named[0]!
}

/**
 * The text with LIMIT n OFFSET m (or FETCH) as LIMIT n + m: each shard's first rows. The three are the last
 * clauses of a set operation (a locking clause after them is refused), so they are cut as one run.
 */
function foldOffset(bytes: string, start: number, end: number, clauses: Map<string, Span>, limit: ValueRef | null, offset: ValueRef): string {
  const removed = (['limit', 'offset', 'fetch'] as const).flatMap((c) => clauses.get(c) ?? [])
  if (removed.length === 0) refuse('a set operation whose OFFSET pgshard cannot find in its text')
  const from = Math.min(...removed.map((r) => r.start))
  const to = Math.max(...removed.map((r) => r.end))
  // Without LIMIT each shard returns all its rows; a parameter stays in the text, which must still take it.
  const folded = limit !== null ? ` LIMIT ${int8(limit)} + ${int8(offset)}` : 'param' in offset ? ` OFFSET ${int8(offset)} * 0` : ''
  return bytes.slice(start, from).trimEnd() + folded + bytes.slice(to, end)
}
