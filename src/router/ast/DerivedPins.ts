// Carries a pin on a subquery's output column into the subquery: `FROM (SELECT … FROM orders o …) s WHERE
// s.customer_id = 5` reads only customer 5's orders when the filter, written inside the subquery, would leave the
// rows it makes for customer 5 as they are (Postgres pushes such filters down itself). That holds when the column is
// a plain column of the subquery's FROM and the subquery has no LIMIT/OFFSET, groups by the column if it groups,
// and partitions every window and DISTINCT ON by it. A set operation takes the filter into each of its SELECTs.
import type { Node, SelectStmt } from 'libpg-query'
import { asNode, expressionKey, stringList } from './AstNode.js'
import { windowPartitions } from './WindowPartitions.js'

/** A plain SELECT of the subquery, and the column of its own FROM that the output column is. */
export interface PushedColumn {
  select: SelectStmt
  column: Node
}

/**
 * Where a filter on the output column `name` of a subquery in FROM goes (`colnames`: its alias's column list), or
 * undefined when it cannot go inside without changing the subquery's rows.
 */
export function pushdownTargets(sub: SelectStmt, name: string, colnames: readonly string[]): PushedColumn[] | undefined {
  const leaves = plainSelects(sub)
  if (leaves === undefined) return undefined
  const first = leaves[0]!
  let position = colnames.indexOf(name)
  if (position < 0) {
    const named = outputNames(first)
    position = named === undefined ? -1 : named.indexOf(name)
    // A column the alias list renamed is not reachable by its old name; a second one of the name is ambiguous.
    if (position < colnames.length || named!.indexOf(name, position + 1) >= 0) position = -1
  }
  if (position < 0 && leaves.length === 1 && colnames.length === 0) {
    const star = starColumn(first, name)
    return star === undefined ? undefined : [{ select: first, column: star }]
  }
  if (position < 0) return undefined
  const out: PushedColumn[] = []
  for (const select of leaves) {
    const output = outputNames(select)?.[position]
    const target = asNode(select.targetList?.[position], 'ResTarget')?.val
    if (output === undefined || asNode(target, 'ColumnRef') === undefined || !keepsRowsOf(select, target!, position, output)) return undefined
    out.push({ select, column: target! })
  }
  return out
}

/** The plain SELECTs of a subquery (one, or the branches of its set operations); undefined under LIMIT/OFFSET. */
function plainSelects(s: SelectStmt): SelectStmt[] | undefined {
  if (s.limitCount !== undefined || s.limitOffset !== undefined) return undefined
  if (s.op === undefined || s.op === 'SETOP_NONE') return s.valuesLists === undefined ? [s] : undefined
  const left = s.larg !== undefined ? plainSelects(s.larg) : undefined
  const right = s.rarg !== undefined ? plainSelects(s.rarg) : undefined
  return left === undefined || right === undefined ? undefined : [...left, ...right]
}

/** The output column names of a SELECT, when no `*` hides how many there are. */
function outputNames(s: SelectStmt): string[] | undefined {
  const names: string[] = []
  for (const item of s.targetList ?? []) {
    const target = asNode(item, 'ResTarget')
    const fields = asNode(target?.val, 'ColumnRef')?.fields ?? []
    if (fields.some((f) => asNode(f, 'A_Star') !== undefined)) return undefined
    names.push(target?.name ?? stringList(fields)?.at(-1) ?? '?column?')
  }
  return names
}

/**
 * The column `name` of the one relation a SELECT's only `*` (or `rel.*`) stands for, when no other output column
 * has the name.
 */
function starColumn(s: SelectStmt, name: string): Node | undefined {
  const stars = (s.targetList ?? []).flatMap((item) => {
    const fields = asNode(asNode(item, 'ResTarget')?.val, 'ColumnRef')?.fields ?? []
    return asNode(fields.at(-1), 'A_Star') !== undefined ? [stringList(fields.slice(0, -1))] : []
  })
  const explicit = (s.targetList ?? []).length - stars.length
  if (stars.length !== 1 || explicit > 0 || stars[0] === null) return undefined
  let relation = stars[0]!
  if (relation.length === 0) {
    const from = s.fromClause ?? []
    const only = from.length === 1 ? from[0] : undefined
    const rv = asNode(only, 'RangeVar')
    const refname = rv?.alias?.aliasname ?? rv?.relname ?? asNode(only, 'RangeSubselect')?.alias?.aliasname
    if (refname === undefined) return undefined
    relation = [refname]
  }
  if (s.groupClause !== undefined || s.distinctClause !== undefined || windowPartitions(s) !== undefined) return undefined
  const fields = [...relation, name].map((sval) => ({ String: { sval } }))
  return { ColumnRef: { fields } } as Node
}

/**
 * Whether filtering the SELECT's rows on `column` (its output column `output` at `position`) keeps the rows it
 * makes for the values kept as they were.
 */
function keepsRowsOf(s: SelectStmt, column: Node, position: number, output: string): boolean {
  const key = expressionKey(column)
  const names = (items: Node[] | undefined) => (items ?? []).map(expressionKey)
  const distinct = s.distinctClause
  if (distinct !== undefined && !(distinct.length === 1 && Object.keys(distinct[0]!).length === 0) && !names(distinct).includes(key)) return false
  if (s.groupClause !== undefined) {
    const byColumn = s.groupClause.some(
      (g) => expressionKey(g) === key || asNode(g, 'A_Const')?.ival?.ival === position + 1 || stringList(asNode(g, 'ColumnRef')?.fields)?.join('.') === output,
    )
    if (!byColumn || s.groupClause.some((g) => asNode(g, 'GroupingSet') !== undefined)) return false
  }
  // Every window must partition by the column: then the filter keeps or drops whole partitions.
  return (windowPartitions(s) ?? []).every((partition) => names(partition).includes(key))
}
