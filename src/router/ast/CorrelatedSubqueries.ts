// Subqueries of a SELECT's own level (in its WHERE and select list) that read one table tied to a relation of the
// SELECT's FROM on one column: `EXISTS (SELECT … FROM t WHERE t.k = outer.k …)`, `(SELECT count(*) FROM t WHERE
// t.k = outer.k)`, `outer.k IN (SELECT t.k FROM t …)`. When both columns are the sharding keys of co-located
// tables (the router decides, with the shard map), every row such a subquery reads for an outer row lives on
// that row's shard, so each shard answers it exactly for its own rows: what Django's Exists(OuterRef('pk')),
// Subquery annotations and `__in` querysets send.
import type { A_Expr, BoolExpr, ColumnRef, Node, RangeVar, SelectStmt, SubLink } from 'libpg-query'
import type { RelationColumn, TableRef } from '../StatementPlan.js'
import { asNode, stringList, walkAst } from './AstNode.js'
import { tableRefOf } from './PinCollector.js'
import type { FromSources } from './QueryScopes.js'

/** A subquery tied to the statement's FROM level: the table it reads, and the column pairs that tie them. */
export interface CorrelatedSubquery {
  rv: RangeVar
  inner: TableRef
  /** Equal column pairs: a relation of the FROM level (index) and the inner table's column. */
  ties: { outer: RelationColumn; innerColumn: string }[]
}

/** The subqueries of `s`'s WHERE and select list that read one table and are tied to its FROM level. */
export function correlatedSubqueries(s: SelectStmt, from: FromSources): CorrelatedSubquery[] {
  const refnames = from.relations.map((r) => r.rv.alias?.aliasname ?? r.rv.relname ?? '')
  const found: CorrelatedSubquery[] = []
  // `conjunct`: `root` is itself a subquery that is an AND-part of the WHERE clause.
  const visit = (root: unknown, conjunct: boolean) =>
    walkAst([root], (tag, body) => {
      if (tag !== 'SubLink') return true
      const c = correlated(body as SubLink, refnames, conjunct)
      if (c !== undefined) found.push(c)
      return false
    })
  for (const part of conjuncts(s.whereClause)) visit(part, asNode(part, 'SubLink') !== undefined)
  visit(s.targetList, false)
  return found
}

/**
 * The subquery's table and ties, or undefined. `conjunct`: the subquery is a whole AND-part of the WHERE clause,
 * where `outer.k IN (SELECT t.k …)` filters as a join would (elsewhere its NULLs would count, or under NOT).
 */
function correlated(link: SubLink, refnames: string[], conjunct: boolean): CorrelatedSubquery | undefined {
  const sub = asNode(link.subselect, 'SelectStmt')
  if (sub === undefined || (sub.op ?? 'SETOP_NONE') !== 'SETOP_NONE' || sub.withClause !== undefined) return undefined
  const rv = onlyTable(sub)
  if (rv === undefined) return undefined
  const innerRef = rv.alias?.aliasname ?? rv.relname ?? ''
  const innerColumn = (n: Node | undefined): string | undefined => {
    const f = columnFields(n)
    return f?.length === 1 || (f?.length === 2 && f[0] === innerRef) ? f[f.length - 1] : undefined
  }
  // Inside the subquery a qualified name is the outer relation's only when the subquery's table has another name.
  const outerColumn = (n: Node | undefined): RelationColumn | undefined => {
    const f = columnFields(n)
    return f?.[0] === innerRef ? undefined : outerColumnOf(f, refnames)
  }
  const ties: CorrelatedSubquery['ties'] = []
  // `… WHERE t.k = outer.k AND …`: every row it reads has the outer row's value.
  for (const part of conjuncts(sub.whereClause)) {
    const eq = equality(part)
    if (eq === undefined) continue
    for (const [a, b] of [eq, [eq[1], eq[0]] as const]) {
      const inner = innerColumn(a)
      const outer = outerColumn(b)
      if (inner !== undefined && outer !== undefined) ties.push({ outer, innerColumn: inner })
    }
  }
  // `outer.k IN (SELECT t.k FROM t …)`, uncorrelated: only the rows of t with the outer row's value match, as
  // long as the subquery combines no rows (an aggregate or LIMIT would pick from every shard's rows).
  const op = stringList(link.operName)
  if (ties.length === 0 && conjunct && link.subLinkType === 'ANY_SUBLINK' && (op === null || op.length === 0 || (op.length === 1 && op[0] === '=')) && combinesNoRows(sub)) {
    const target = sub.targetList?.length === 1 ? asNode(sub.targetList[0], 'ResTarget')?.val : undefined
    const inner = innerColumn(target)
    const testFields = columnFields(link.testexpr)
    const outer = testFields?.length === 1 && refnames.length === 1 ? { relation: 0, column: testFields[0]! } : outerColumnOf(testFields, refnames)
    if (inner !== undefined && outer !== undefined) ties.push({ outer, innerColumn: inner })
  }
  return ties.length > 0 ? { rv, inner: tableRefOf(rv), ties } : undefined
}

/** The one table a subquery reads, named alone in its FROM; undefined when it reads none or several. */
function onlyTable(sub: SelectStmt): RangeVar | undefined {
  const from = sub.fromClause ?? []
  const rv = from.length === 1 ? asNode(from[0], 'RangeVar') : undefined
  if (rv === undefined) return undefined
  let tables = 0
  walkAst(sub, (tag) => {
    if (tag === 'RangeVar' || tag === 'RangeSubselect' || tag === 'RangeFunction' || tag === 'JoinExpr') tables++
    return true
  })
  return tables === 1 ? rv : undefined
}

function combinesNoRows(sub: SelectStmt): boolean {
  if (sub.groupClause !== undefined || sub.havingClause !== undefined || sub.limitCount !== undefined || sub.limitOffset !== undefined || sub.windowClause !== undefined) return false
  let calls = false
  walkAst(sub.targetList, (tag) => {
    if (tag === 'FuncCall' || tag === 'SubLink') calls = true
    return !calls
  })
  return !calls
}

/** `rel.col` of a relation named once in the FROM level. */
function outerColumnOf(fields: string[] | undefined, refnames: string[]): RelationColumn | undefined {
  if (fields?.length !== 2) return undefined
  const relation = refnames.indexOf(fields[0]!)
  return relation < 0 || refnames.indexOf(fields[0]!, relation + 1) >= 0 ? undefined : { relation, column: fields[1]! }
}

/** The AND-parts of a condition. */
function conjuncts(n: Node | undefined): Node[] {
  if (n === undefined) return []
  const b = asNode(n, 'BoolExpr') as BoolExpr | undefined
  if (b?.boolop === 'AND_EXPR') return (b.args ?? []).flatMap(conjuncts)
  return [n]
}

/** `a = b`, as its two sides. */
function equality(n: Node): readonly [Node | undefined, Node | undefined] | undefined {
  const e = asNode(n, 'A_Expr') as A_Expr | undefined
  if (e === undefined || e.kind !== 'AEXPR_OP') return undefined
  const op = stringList(e.name)
  return op?.length === 1 && op[0] === '=' ? [e.lexpr, e.rexpr] : undefined
}

/** A plain column reference's names (`t.c` → ['t', 'c']); undefined for `*` or anything else. */
function columnFields(n: Node | undefined): string[] | undefined {
  const c = asNode(n, 'ColumnRef') as ColumnRef | undefined
  const fields = c === undefined ? null : stringList(c.fields)
  return fields === null || fields.length === 0 ? undefined : fields
}
