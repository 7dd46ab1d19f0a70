// A read whose select list, HAVING or ORDER BY computes over aggregates (`SELECT sum(total) / count(*) FROM
// orders`, `SELECT status, round(avg(total), 2) FROM orders GROUP BY status HAVING count(*) > 10`): the merge folds
// bare aggregates only. Written instead as the same expressions over a subquery in FROM that computes the bare
// aggregates by the same groups, that subquery can be read first across shards (DetachedSubqueries), and the
// expressions computed over its rows by one server, as Postgres would compute them.
import type { ColumnRef, FuncCall, Node, ResTarget, SelectStmt } from 'libpg-query'
import { asNode, expressionKey, functionName, walkAst } from './ast/AstNode.js'
import { outputName } from './LevelSources.js'
import { MERGEABLE, UNMERGEABLE_AGGREGATES } from './MergeableAggregates.js'
import { layoutCall, layoutSelect, type Span } from './SelectLayout.js'
import { SqlLexer, Tok } from './SqlLexer.js'
import { quoteIdent } from './SqlQuoting.js'
import { decodeBytes, type StatementText } from './StatementText.js'

const SUBQUERY = 'pgshard_groups'

/** A piece of the statement's text and what takes its place in the outer query. */
interface Replacement {
  span: Span
  text: string
}

/**
 * The text of the SELECT at bytes [start, end) of `text` with its aggregates computed in a subquery in FROM, or
 * undefined when it cannot be written so: not one plain grouped SELECT (a window, DISTINCT, WITH, a set operation,
 * a lock, a subquery in an expression), an aggregate the merge cannot fold, a GROUP BY item that is neither a
 * column nor a select-list item, or a column outside the aggregates and the grouped items that is not grouped by.
 */
export function aggregatesInSubquery(s: SelectStmt, text: StatementText, start: number, end: number): string | undefined {
  if ((s.op ?? 'SETOP_NONE') !== 'SETOP_NONE' || s.withClause || s.windowClause || s.distinctClause || s.lockingClause || s.intoClause || !s.fromClause) return undefined
  const layout = layoutSelect(text.bytes, start, end)
  const targets = (s.targetList ?? []).map((t) => asNode(t, 'ResTarget'))
  if (layout === null || targets.some((t) => t === undefined) || layout.targets.length !== targets.length) return undefined
  const bytes = text.bytes
  const expressions = targets.map((t, i) => (t!.name === undefined ? layout.targets[i]! : { start: layout.targets[i]!.start, end: valueEnd(layout.targets[i]!, bytes) }))
  const groups = (s.groupClause ?? []).map((g) => groupOf(g, targets as ResTarget[], expressions, bytes, end))
  if (groups.some((g) => g === undefined)) return undefined
  const groupKeys = groups.map((g) => g!.key)
  const aggregates: string[] = []
  const outputNames = new Set(targets.map((t) => outputName(t!)))
  const replacements: Replacement[] = []
  let possible = true
  let aggregated = false
  const scan = (root: unknown, orderBy: boolean): void => {
    walkAst(root, (tag, body) => {
      if (!possible) return false
      // A subquery over a table would run where the expressions are computed, not where its rows are; one over
      // none (the `SELECT NULL` holding the place of one read first) is a value anywhere.
      if (tag === 'SubLink') {
        walkAst(body, (inner) => {
          if (inner === 'RangeVar') possible = false
          return possible
        })
        return false
      }
      if (tag === 'WindowDef') possible = false
      else if (tag === 'FuncCall') {
        const call = body as FuncCall
        const name = functionName(call.funcname)
        if (call.over !== undefined || UNMERGEABLE_AGGREGATES.has(name)) possible = false
        else if (MERGEABLE[name] !== undefined && call.location !== undefined) {
          const span = layoutCall(bytes, call.location, end)
          if (span === null) possible = false
          else {
            const callText = bytes.slice(call.location, span.end)
            const index = aggregates.indexOf(callText) >= 0 ? aggregates.indexOf(callText) : aggregates.push(callText) - 1
            replacements.push({ span: { start: call.location, end: span.end }, text: `${SUBQUERY}.a${index + 1}` })
            aggregated = true
            return false
          }
        }
      } else if (tag === 'ColumnRef') {
        const ref = body as ColumnRef
        const group = groupKeys.indexOf(expressionKey({ ColumnRef: ref }))
        const span = columnSpan(bytes, ref.location ?? -1, end)
        const fields = ref.fields ?? []
        // ORDER BY an output column by its name stays as it is: the outer query has the same select list.
        const alias = orderBy && fields.length === 1 && outputNames.has(asNode(fields[0], 'String')?.sval)
        if (group >= 0 && span !== null) replacements.push({ span, text: `${SUBQUERY}.g${group + 1}` })
        else if (!alias) possible = false
      }
      return possible
    })
  }
  targets.forEach((t, i) => {
    // A select-list item grouped by (by its position, or written alike) is that group's value as a whole.
    const group = groups.findIndex((g) => g!.target === i)
    if (group >= 0) replacements.push({ span: expressions[i]!, text: `${SUBQUERY}.g${group + 1}` })
    else scan(t!.val, false)
  })
  scan(s.havingClause, false)
  scan(s.sortClause, true)
  // Bare aggregates and columns only: nothing to compute over them (and the subquery would be the statement again).
  const bare = !s.havingClause && expressions.every((span) => replacements.some((r) => r.span.start === span.start && r.span.end === bytes.slice(0, span.end).trimEnd().length))
  if (!possible || !aggregated || (bare && !orderedByAggregate(replacements, layout.clauses.get('order')))) return undefined
  const from = layout.clauses.get('from')
  if (from === undefined) return undefined
  const fromEnd = layout.clauses.get('where')?.end ?? from.end
  const outerTargets = targets.map((t, i) => {
    const name = t!.name ?? columnName(t!)
    return name === undefined ? null : `${rewritten(bytes, expressions[i]!, replacements)} AS ${quoteIdent(name)}`
  })
  if (outerTargets.some((t) => t === null)) return undefined
  const inner = [...groups.map((g, i) => `${g!.text} AS g${i + 1}`), ...aggregates.map((a, i) => `${a} AS a${i + 1}`)]
  // By the inner select list's positions: a GROUP BY 1 of the statement's is its first item, not the inner one's.
  const group = groups.length === 0 ? '' : ` GROUP BY ${groups.map((_, i) => i + 1).join(', ')}`
  const having = layout.clauses.get('having')
  const order = layout.clauses.get('order')
  const tail = (['limit', 'offset', 'fetch'] as const).flatMap((c) => layout.clauses.get(c) ?? []).sort((a, b) => a.start - b.start)
  const parts = [
    `${bytes.slice(0, start)}SELECT ${outerTargets.join(', ')} FROM (SELECT ${inner.join(', ')} ${bytes.slice(from.start, fromEnd)}${group}) AS ${SUBQUERY}`,
    having ? ` WHERE ${rewritten(bytes, afterWords(bytes, having, 1), replacements)}` : '',
    order ? ` ORDER BY ${rewritten(bytes, afterWords(bytes, order, 2), replacements)}` : '',
    ...tail.map((c) => ` ${bytes.slice(c.start, c.end)}`),
  ]
  return decodeBytes(parts.join('') + bytes.slice(end), text.ascii)
}

/**
 * What a GROUP BY item groups by: a select-list item named by its position or written alike (its expression's text,
 * `target` its index), or a column (its text); undefined for another expression, or a name that is also another
 * item's output name (Postgres takes it for an input column when one has that name, which pgshard cannot tell).
 */
function groupOf(item: Node, targets: ResTarget[], expressions: Span[], bytes: string, end: number): { key: string; text: string; target?: number } | undefined {
  const key = expressionKey(item)
  const position = asNode(item, 'A_Const')?.ival?.ival
  const target = position !== undefined ? position - 1 : targets.findIndex((t) => expressionKey(t.val) === key)
  if (target >= 0 && target < targets.length) return { key, text: bytes.slice(expressions[target]!.start, expressions[target]!.end), target }
  const column = asNode(item, 'ColumnRef')
  const name = column?.fields?.length === 1 ? asNode(column.fields[0], 'String')?.sval : undefined
  if (column === undefined || (name !== undefined && targets.some((t) => t.name === name))) return undefined
  const span = columnSpan(bytes, column.location ?? -1, end)
  return span === null ? undefined : { key, text: bytes.slice(span.start, span.end) }
}

/**
 * The name Postgres gives a select-list item without AS: its column's or function's (through casts), `?column?`
 * for an operator; undefined for what pgshard does not name alike (a cast of an expression is named by its type).
 */
function columnName(t: ResTarget): string | undefined {
  const named = outputName(t)
  if (named !== undefined) return named
  const value = t.val as Node | undefined
  if (asNode(value, 'A_Expr') !== undefined) return '?column?'
  if (asNode(value, 'CaseExpr') !== undefined) return 'case'
  if (asNode(value, 'CoalesceExpr') !== undefined) return 'coalesce'
  return undefined
}

/** Where a named select-list item's expression ends, before its `AS name` (or bare name). */
function valueEnd(span: Span, bytes: string): number {
  const lexer = new SqlLexer(bytes, span.start, span.end)
  let depth = 0
  let last = span.start
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (k === Tok.LParen) depth++
    else if (k === Tok.RParen) depth--
    if (depth === 0 && k === Tok.Ident && lexer.isWord('as')) return last
    last = lexer.end
  }
  // `expr name`: the name is the last token.
  const lastName = new SqlLexer(bytes, span.start, span.end)
  let lastStart = span.end
  for (let k = lastName.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lastName.nextSignificant()) lastStart = lastName.start
  return lastStart
}

function orderedByAggregate(replacements: readonly Replacement[], order: Span | undefined): boolean {
  return order !== undefined && replacements.some((r) => r.text.startsWith(`${SUBQUERY}.a`) && r.span.start >= order.start && r.span.end <= order.end)
}

/** The bytes of `span` with the replacements inside it made. */
function rewritten(bytes: string, span: Span, replacements: readonly Replacement[]): string {
  let out = ''
  let at = span.start
  for (const r of [...replacements].filter((r) => r.span.start >= span.start && r.span.end <= span.end).sort((a, b) => a.span.start - b.span.start)) {
    out += bytes.slice(at, r.span.start) + r.text
    at = r.span.end
  }
  return out + bytes.slice(at, span.end)
}

/** A clause's text after its first `words` keywords (HAVING; ORDER BY). */
function afterWords(bytes: string, clause: Span, words: number): Span {
  const lexer = new SqlLexer(bytes, clause.start, clause.end)
  for (let i = 0; i < words; i++) lexer.nextSignificant()
  return { start: lexer.end, end: clause.end }
}

/** The bytes of a column reference written at `at` (`name`, `t.name`, `"T"."Name"`). */
function columnSpan(bytes: string, at: number, end: number): Span | null {
  if (at < 0) return null
  const lexer = new SqlLexer(bytes, at, end)
  let last = -1
  for (let k = lexer.nextSignificant(); k === Tok.Ident || k === Tok.QuotedIdent; k = lexer.nextSignificant()) {
    last = lexer.end
    if (lexer.nextSignificant() !== Tok.Dot) break
  }
  return last < 0 ? null : { start: at, end: last }
}
