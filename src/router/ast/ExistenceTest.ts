// A SELECT that only asks whether some row of one table matches a condition: `SELECT EXISTS (SELECT … FROM t WHERE
// …)` (SQLAlchemy's exists()) or `SELECT 1 AS row_exists FROM (SELECT 1 AS dummy_column) dummy WHERE EXISTS (SELECT
// … FROM t WHERE …) LIMIT 1` (TypeORM's exists()). Such a row exists when it exists on some shard, so every shard
// may answer for its own rows and the proxy takes the OR of the answers (the first shard's row, for the second
// form). That holds only when the subquery keeps or drops each row of t by that row alone (no grouping, no
// aggregate, no OFFSET, no further subquery, no join) and the outer query makes at most one row of constants.
import type { Node, RangeVar, SelectStmt } from 'libpg-query'
import { asNode, walkAst } from './AstNode.js'

export interface ExistenceTest {
  /** 'value': the select list is the EXISTS (one bool row); 'filter': the WHERE clause is, over at most one row. */
  form: 'value' | 'filter'
  /** The table the subquery reads. */
  table: RangeVar
}

export function existenceTest(s: SelectStmt): ExistenceTest | undefined {
  // LIMIT n (a literal or, once literals are normalized, a parameter) keeps the one row or none, on each shard as
  // on all of them; OFFSET would skip a row one shard has and another has not.
  if (!plainLevel(s) || s.limitOffset !== undefined || s.sortClause !== undefined) return undefined
  const targets = (s.targetList ?? []).map((t) => asNode(t, 'ResTarget')?.val)
  if (targets.length === 1 && s.fromClause === undefined && s.whereClause === undefined && s.limitCount === undefined) {
    const table = existsTable(targets[0])
    return table === undefined ? undefined : { form: 'value', table }
  }
  if (!atMostOneRow(s.fromClause) || targets.some((t) => t === undefined || beyondTheRow(t, 'FuncCall'))) return undefined
  const table = existsTable(s.whereClause)
  return table === undefined ? undefined : { form: 'filter', table }
}

/** The table of `EXISTS (SELECT … FROM table …)` when the subquery judges each of its rows alone. */
function existsTable(n: Node | undefined): RangeVar | undefined {
  const link = asNode(n, 'SubLink')
  const inner = link?.subLinkType === 'EXISTS_SUBLINK' ? asNode(link.subselect, 'SelectStmt') : undefined
  if (inner === undefined || !plainLevel(inner) || inner.limitOffset !== undefined) return undefined
  const table = inner.fromClause?.length === 1 ? asNode(inner.fromClause[0], 'RangeVar') : undefined
  // A select list calling an aggregate or a set-returning function changes how many rows there are; WHERE cannot.
  if (table === undefined || beyondTheRow(inner.whereClause, 'SubLink') || beyondTheRow(inner.targetList, 'FuncCall')) return undefined
  const distinct = inner.distinctClause
  return distinct === undefined || distinct.every((d) => Object.keys(d).length === 0) ? table : undefined
}

/** No CTE, set operation, VALUES, grouping, window or lock. */
function plainLevel(s: SelectStmt): boolean {
  const parts = [s.withClause, s.valuesLists, s.groupClause, s.havingClause, s.windowClause, s.lockingClause, s.intoClause]
  return parts.every((p) => p === undefined) && (s.op === undefined || s.op === 'SETOP_NONE') && s.groupDistinct !== true && s.limitOption !== 'LIMIT_OPTION_WITH_TIES'
}

/** FROM absent, or one subquery that names no table and makes one row of constants (or parameters). */
function atMostOneRow(from: Node[] | undefined): boolean {
  if (from === undefined) return true
  const sub = from.length === 1 ? asNode(from[0], 'RangeSubselect') : undefined
  const inner = sub?.lateral === true ? undefined : asNode(sub?.subquery, 'SelectStmt')
  if (inner === undefined || !plainLevel(inner) || inner.fromClause !== undefined || inner.whereClause !== undefined || inner.distinctClause !== undefined) return false
  if (inner.limitCount !== undefined || inner.limitOffset !== undefined) return false
  return (inner.targetList ?? []).every((t) => constant(asNode(t, 'ResTarget')?.val))
}

function constant(n: Node | undefined): boolean {
  const cast = asNode(n, 'TypeCast')
  return cast !== undefined ? constant(cast.arg) : asNode(n, 'A_Const') !== undefined || asNode(n, 'ParamRef') !== undefined
}

/**
 * Whether `n` holds a subquery, or with `'FuncCall'` also any function call (an aggregate, a window or
 * set-returning function: what makes a row depend on other rows, or makes several).
 */
function beyondTheRow(n: unknown, what: 'SubLink' | 'FuncCall'): boolean {
  let found = false
  walkAst(n, (tag) => {
    if (tag === 'SubLink' || (what === 'FuncCall' && (tag === 'FuncCall' || tag === 'JsonArrayAgg' || tag === 'JsonObjectAgg'))) found = true
    return !found
  })
  return found
}
