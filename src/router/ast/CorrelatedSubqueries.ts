// Subqueries of a SELECT's own level (in its WHERE, select list, ORDER BY, or LATERAL in FROM) that read one table
// tied to a relation of the SELECT's FROM on one column: `EXISTS (SELECT … FROM t WHERE t.k = outer.k …)`,
// `(SELECT count(*) FROM t WHERE t.k = outer.k)`, `LEFT JOIN LATERAL (SELECT json_agg(…) FROM t WHERE t.k =
// outer.k) x ON true`, `outer.k IN (SELECT t.k FROM t …)`. When both columns are the sharding keys of co-located
// tables (the router decides, with the shard map), every row such a subquery reads for an outer row lives on
// that row's shard, so each shard answers it exactly for its own rows: what Django's Exists(OuterRef('pk')),
// Subquery annotations and `__in` querysets, and Drizzle's relational queries send.
import type { A_Expr, ColumnRef, Node, RangeSubselect, RangeVar, SelectStmt, SubLink } from 'libpg-query'
import type { RelationColumn, TableRef } from '../StatementPlan.js'
import { asNode, conjuncts, stringList, walkAst } from './AstNode.js'
import { tableRefOf } from './PinCollector.js'
import type { FromSources } from './QueryScopes.js'

/**
 * A subquery tied to the statement's FROM level: the tables it reads (one, or several joined: the router lets
 * only one be sharded, the others reference tables), and the column pairs that tie them.
 */
export interface CorrelatedSubquery {
  rvs: RangeVar[]
  tables: TableRef[]
  /** Equal column pairs: a relation of the FROM level (index) and a column of one of `tables` (index). */
  ties: { outer: RelationColumn; table: number; innerColumn: string }[]
}

/** The subqueries of `s`'s WHERE, select list, ORDER BY and LATERAL FROM items tied to its FROM level. */
export function correlatedSubqueries(s: SelectStmt, from: FromSources): CorrelatedSubquery[] {
  const refnames = from.relations.map((r) => r.rv.alias?.aliasname ?? r.rv.relname ?? '')
  // ORDER BY an Exists or Subquery annotation (Django): each shard computes it for its own rows.
  return tiedSubqueries({ where: s.whereClause, expressions: [s.targetList, s.sortClause], laterals: from.laterals }, refnames)
}

/**
 * The subqueries of one query level tied to its relations (named `refnames`): in its WHERE, in other expressions
 * (a select list, ORDER BY, an UPDATE's SET), and LATERAL in its FROM.
 */
export function tiedSubqueries(level: { where: Node | undefined; expressions: unknown[]; laterals: SelectStmt[] }, refnames: string[]): CorrelatedSubquery[] {
  const found: CorrelatedSubquery[] = []
  walkAst([level.where, ...level.expressions], (tag, body) => {
    if (tag !== 'SubLink') return true
    const c = sublink(body as SubLink, refnames)
    if (c !== undefined) found.push(c)
    return false
  })
  for (const lateral of level.laterals) {
    const c = tiedQuery(lateral, refnames)
    if (c !== undefined) found.push(c)
  }
  return found
}

/**
 * A subquery in an expression. Tied as any subquery, or, anywhere (under NOT and OR too), `outer.k IN (SELECT t.k
 * FROM t …)` and `outer.k <> ALL (SELECT t.k …)` without a tie, when it reads one table and combines no rows (an
 * aggregate or LIMIT would pick from every shard's rows): once the router finds both columns sharding keys, the
 * rows whose t.k equals an outer row's key are all on that row's shard, and a sharding key is never NULL (pgshard
 * refuses to write one), so each shard's answer for its rows is the answer over all rows (NOT IN included).
 */
function sublink(link: SubLink, refnames: string[]): CorrelatedSubquery | undefined {
  const sub = asNode(link.subselect, 'SelectStmt')
  if (sub === undefined) return undefined
  const tied = tiedQuery(sub, refnames)
  if (tied !== undefined) return tied
  const op = stringList(link.operName)
  const equal = op === null || op.length === 0 || (op.length === 1 && op[0] === '=')
  const membership = (link.subLinkType === 'ANY_SUBLINK' && equal) || (link.subLinkType === 'ALL_SUBLINK' && op?.length === 1 && (op[0] === '<>' || op[0] === '!='))
  if (!membership || !combinesNoRows(sub)) return undefined
  const read = tableRead(sub)
  if (read === undefined || read.reader !== sub || read.rvs.length !== 1) return undefined
  const target = sub.targetList?.length === 1 ? asNode(sub.targetList[0], 'ResTarget')?.val : undefined
  const inner = innerColumnOf(columnFields(target), read.refnames)
  const testFields = columnFields(link.testexpr)
  const outer = testFields?.length === 1 && refnames.length === 1 ? { relation: 0, column: testFields[0]! } : outerColumnOf(testFields, refnames, read.names)
  return inner !== undefined && outer !== undefined ? { rvs: read.rvs, tables: read.rvs.map(tableRefOf), ties: [{ outer, ...inner }] } : undefined
}

/**
 * A query that reads one table, tied by `t.k = outer.k` among the AND-ed conditions of the query level that reads
 * it (which subqueries in FROM may wrap: every row the whole query computes from then has the outer row's value).
 */
/**
 * The tables an UPDATE's FROM or a DELETE's USING list joins to its target (`refnames`), as a subquery of them tied
 * to it by the WHERE clause's equalities would be.
 */
export function tiedJoin(from: Node[], where: Node | undefined, refnames: string[]): CorrelatedSubquery | undefined {
  return tiedQuery({ fromClause: from, whereClause: where } as SelectStmt, refnames)
}

function tiedQuery(sub: SelectStmt, refnames: string[]): CorrelatedSubquery | undefined {
  const read = tableRead(sub)
  if (read === undefined) return undefined
  const ties: CorrelatedSubquery['ties'] = []
  for (const part of conjuncts(read.reader.whereClause)) {
    const eq = equality(part)
    if (eq === undefined) continue
    for (const [a, b] of [eq, [eq[1], eq[0]] as const]) {
      const inner = innerColumnOf(columnFields(a), read.refnames)
      const outer = outerColumnOf(columnFields(b), refnames, read.names)
      if (inner !== undefined && outer !== undefined) ties.push({ outer, ...inner })
    }
  }
  return ties.length > 0 ? { rvs: read.rvs, tables: read.rvs.map(tableRefOf), ties } : undefined
}

/**
 * The tables a query reads, all in the FROM of one query level (`reader`: the query itself, or a plain subquery in
 * FROM that it wraps, alone), named or joined there, and every name the query defines (which hide the outer
 * query's names inside it).
 */
function tableRead(sub: SelectStmt): { rvs: RangeVar[]; refnames: string[]; reader: SelectStmt; names: Set<string> } | undefined {
  let tables = 0
  let other = false
  const names = new Set<string>()
  walkAst([{ SelectStmt: sub }], (tag, body) => {
    if (tag === 'RangeVar') {
      tables++
      const rv = body as RangeVar
      names.add(rv.alias?.aliasname ?? rv.relname ?? '')
    } else if (tag === 'RangeSubselect') {
      const alias = (body as RangeSubselect).alias?.aliasname
      if (alias !== undefined) names.add(alias)
    } else if (tag === 'RangeFunction' || tag === 'CommonTableExpr') other = true
    else if (tag === 'SelectStmt') {
      const s = body as SelectStmt
      if ((s.op ?? 'SETOP_NONE') !== 'SETOP_NONE') other = true
    }
    return true
  })
  if (tables === 0 || other) return undefined
  for (let level: SelectStmt | undefined = sub; level !== undefined; ) {
    const from: Node[] = level.fromClause ?? []
    const wrapped: RangeSubselect | undefined = from.length === 1 ? asNode(from[0], 'RangeSubselect') : undefined
    if (wrapped === undefined) {
      const rvs = joinedTables(from)
      if (rvs === undefined || rvs.length !== tables) return undefined
      return { rvs, refnames: rvs.map((rv) => rv.alias?.aliasname ?? rv.relname ?? ''), reader: level, names }
    }
    level = wrapped.lateral === true ? undefined : asNode(wrapped.subquery, 'SelectStmt')
  }
  return undefined
}

/** The tables of FROM items that are tables or joins of tables; undefined for anything else. */
function joinedTables(items: (Node | undefined)[]): RangeVar[] | undefined {
  const out: RangeVar[] = []
  for (const item of items) {
    const rv = asNode(item, 'RangeVar')
    const join = asNode(item, 'JoinExpr')
    const sides = join === undefined ? undefined : joinedTables([join.larg, join.rarg])
    if (rv !== undefined) out.push(rv)
    else if (sides !== undefined) out.push(...sides)
    else return undefined
  }
  return out
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

/**
 * `t.col` of a table read (or `col` when it reads one table: the table's column when it has one, the key always),
 * as that table's index and the column.
 */
function innerColumnOf(fields: string[] | undefined, refnames: string[]): { table: number; innerColumn: string } | undefined {
  if (fields?.length === 1 && refnames.length === 1) return { table: 0, innerColumn: fields[0]! }
  const table = fields?.length === 2 ? refnames.indexOf(fields[0]!) : -1
  return table < 0 || refnames.indexOf(fields![0]!, table + 1) >= 0 ? undefined : { table, innerColumn: fields![1]! }
}

/** `rel.col` of a relation named once in the FROM level, and by no name the subquery itself defines. */
function outerColumnOf(fields: string[] | undefined, refnames: string[], hidden: ReadonlySet<string>): RelationColumn | undefined {
  if (fields?.length !== 2 || hidden.has(fields[0]!)) return undefined
  const relation = refnames.indexOf(fields[0]!)
  return relation < 0 || refnames.indexOf(fields[0]!, relation + 1) >= 0 ? undefined : { relation, column: fields[1]! }
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
