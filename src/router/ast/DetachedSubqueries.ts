// Subqueries that refer to nothing outside themselves (`WHERE total > (SELECT avg(total) FROM orders)`, `id IN
// (SELECT user_id FROM orders ORDER BY total DESC LIMIT 3)`, `FROM (SELECT status, count(*) … GROUP BY status) s`):
// Postgres evaluates such a subquery in an expression once per statement (an InitPlan), and a subquery in FROM
// that names nothing around it is a table of its own, so their answers may be computed first, on their own, and
// written into the statement as constants. The router decides with the shard map whether that is needed (it reads a sharded table
// whose rows are not all on the statement's shard); here they are only found.
import type { ColumnRef, CommonTableExpr, JoinExpr, Node, RangeFunction, RangeSubselect, RangeVar, SelectStmt, SubLink } from 'libpg-query'
import { enclosingParenthesized, layoutSelect } from '../SelectLayout.js'
import { SqlLexer, Tok } from '../SqlLexer.js'
import type { StatementText } from '../StatementText.js'
import { asNode, walkAst } from './AstNode.js'
import { insertQueryOnItsOwn } from './InsertSelectRows.js'

/**
 * How the subquery's answer is written in: `scalar` (`(SELECT …)` as a value), `in` (`x [NOT] IN (SELECT …)`: a
 * list of values), `exists` (`EXISTS (SELECT …)`: whether it has a row), `rows` (`x op ANY|ALL (SELECT …)`,
 * `ARRAY(SELECT …)`: its rows as a VALUES list), `table` (a subquery in FROM: its rows, with its columns' names),
 * `values` (the query of an INSERT with RETURNING or ON CONFLICT: its rows as the INSERT's VALUES list).
 */
export type DetachedForm = 'scalar' | 'in' | 'exists' | 'rows' | 'table' | 'values'

export interface DetachedSpan {
  /** Bytes of the query between the subquery's parentheses. */
  start: number
  end: number
  form: DetachedForm
}

const FORMS: Partial<Record<NonNullable<SubLink['subLinkType']>, DetachedForm>> = {
  EXPR_SUBLINK: 'scalar',
  EXISTS_SUBLINK: 'exists',
  ANY_SUBLINK: 'rows',
  ALL_SUBLINK: 'rows',
  ARRAY_SUBLINK: 'rows',
}

/**
 * The outermost subqueries of `stmt` (bytes before `end` of `text`) that name no column, table alias or WITH query
 * of the statement around them, and lock nothing. A subquery that does name one is searched for such subqueries
 * inside it. An unqualified column cannot be told from the text alone: a subquery naming an outer column so runs
 * into an unknown column when read on its own, and the statement is refused then.
 */
export function detachedSubqueries(stmt: Node, text: StatementText, end: number): DetachedSpan[] {
  const ctes = new Set<string>()
  walkAst(stmt, (tag, body) => {
    if (tag === 'CommonTableExpr') ctes.add((body as CommonTableExpr).ctename ?? '')
  })
  const found: DetachedSpan[] = []
  // The query of an INSERT that COPY cannot take, whole: what is inside it is read with it.
  const insert = asNode(stmt, 'InsertStmt')
  const rows = insert !== undefined && selfContained(insert.selectStmt!, ctes, true) ? insertQueryOnItsOwn(insert, text, end) : null
  if (rows !== null) found.push({ ...rows, form: 'values' })
  const query = rows !== null ? asNode(insert!.selectStmt, 'SelectStmt') : undefined
  walkAst(stmt, (tag, body) => {
    if (body === query) return false
    if (tag === 'RangeSubselect') {
      const span = derivedSpan(body as RangeSubselect, text, end, ctes)
      if (span === null) return true
      found.push({ ...span, form: 'table' })
      return false
    }
    if (tag !== 'SubLink') return true
    const link = body as SubLink
    const form = link.subLinkType === undefined ? undefined : FORMS[link.subLinkType]
    if (form === undefined || asNode(link.subselect, 'SelectStmt') === undefined || !selfContained(link.subselect!, ctes)) return true
    const span = subquerySpan(text, link.location ?? 0, end)
    if (span === null) return true
    found.push({ ...span, form: form === 'rows' && link.subLinkType === 'ANY_SUBLINK' && span.afterIn ? 'in' : form })
    return false
  })
  return found
}

/**
 * The bytes of a subquery in FROM, not LATERAL (which names the FROM items before it), when it is one SELECT that
 * refers to nothing outside itself: found around its first select-list item, as the SELECT laid out there.
 */
function derivedSpan(derived: RangeSubselect, text: StatementText, end: number, ctes: ReadonlySet<string>): { start: number; end: number } | null {
  const select = asNode(derived.subquery, 'SelectStmt')
  if (derived.lateral === true || select === undefined || !plainSelect(select) || !selfContained(derived.subquery!, ctes)) return null
  const at = asNode(select.targetList?.[0], 'ResTarget')?.location
  const span = at === undefined ? null : enclosingParenthesized(text.bytes, 0, end, at)
  return span !== null && layoutSelect(text.bytes, span.start, span.end)?.targets[0]?.start === at ? span : null
}

function plainSelect(s: SelectStmt): boolean {
  return (s.op ?? 'SETOP_NONE') === 'SETOP_NONE' && s.valuesLists === undefined && (s.targetList?.length ?? 0) > 0
}

/**
 * Whether the subquery names only what it defines itself (and tables), and takes no row lock; `tableless`: one that
 * reads no table counts too.
 */
function selfContained(subselect: Node, outerCtes: ReadonlySet<string>, tableless = false): boolean {
  const names = new Set<string>()
  const innerCtes = new Set<string>()
  const columns: ColumnRef[] = []
  const tables: RangeVar[] = []
  let locks = false
  walkAst(subselect, (tag, body) => {
    switch (tag) {
      case 'RangeVar': {
        const rv = body as RangeVar
        tables.push(rv)
        names.add(rv.alias?.aliasname ?? rv.relname ?? '')
        break
      }
      case 'RangeSubselect':
      case 'RangeFunction':
      case 'JoinExpr': {
        const alias = (body as RangeSubselect | RangeFunction | JoinExpr).alias?.aliasname
        if (alias !== undefined) names.add(alias)
        break
      }
      case 'CommonTableExpr':
        innerCtes.add((body as CommonTableExpr).ctename ?? '')
        break
      case 'ColumnRef':
        columns.push(body as ColumnRef)
        break
      case 'LockingClause':
        locks = true
        return false
    }
    return true
  })
  // Without a table it costs nothing where it is (and a `SELECT NULL` holding a subquery's place stays put).
  if (locks || (tables.length === 0 && !tableless)) return false
  // A WITH query of the statement around it: not there when the subquery runs alone.
  if (tables.some((rv) => rv.schemaname === undefined && outerCtes.has(rv.relname ?? '') && !innerCtes.has(rv.relname ?? ''))) return false
  return columns.every((c) => {
    const fields = c.fields ?? []
    if (fields.length < 2) return true
    // t.col, t.*, schema.t.col: the name before the column is a relation the subquery must define.
    const relation = asNode(fields[fields.length - 2], 'String')?.sval
    return relation !== undefined && names.has(relation)
  })
}

/**
 * The bytes inside the subquery's parentheses: the first parenthesized part from the SubLink's location (its `(`,
 * or the IN, operator, EXISTS or ARRAY before it), when it holds a query. `afterIn`: only IN (or NOT IN) comes
 * before the parenthesis, so that a list of values may take the query's place.
 */
function subquerySpan(text: StatementText, from: number, end: number): { start: number; end: number; afterIn: boolean } | null {
  const lexer = new SqlLexer(text.bytes, from, end)
  let depth = 0
  let start = -1
  let afterIn = false
  let onlyIn = true
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (start < 0 && k !== Tok.LParen) {
      if (k === Tok.Ident && lexer.isWord('in')) afterIn = true
      else if (!(k === Tok.Ident && lexer.isWord('not'))) onlyIn = false
    }
    if (k === Tok.LParen && depth++ === 0) {
      start = lexer.end
      const first = new SqlLexer(text.bytes, start, end)
      const t = first.nextSignificant()
      if (!(t === Tok.LParen || (t === Tok.Ident && (first.isWord('select') || first.isWord('with') || first.isWord('values') || first.isWord('table'))))) return null
    } else if (k === Tok.RParen && --depth === 0) return { start, end: lexer.start, afterIn: afterIn && onlyIn }
  }
  return null
}
