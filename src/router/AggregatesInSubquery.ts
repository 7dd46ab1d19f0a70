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
 * a lock, a subquery in an expression), an aggregate the merge cannot fold, a GROUP BY item that is not a column, or
 * a column outside the aggregates that is not one of the GROUP BY columns.
 */
export function aggregatesInSubquery(s: SelectStmt, text: StatementText, start: number, end: number): string | undefined {
  if ((s.op ?? 'SETOP_NONE') !== 'SETOP_NONE' || s.withClause || s.windowClause || s.distinctClause || s.lockingClause || s.intoClause || !s.fromClause) return undefined
  const groups = (s.groupClause ?? []).map((g) => asNode(g, 'ColumnRef'))
  // GROUP BY an output name (`lower(name) AS n … GROUP BY n`) groups by that item, which is no column below.
  const aliases = new Set((s.targetList ?? []).map((t) => asNode(t, 'ResTarget')?.name))
  if (groups.some((g) => g === undefined || (g.fields?.length === 1 && aliases.has(asNode(g.fields[0], 'String')?.sval)))) return undefined
  const layout = layoutSelect(text.bytes, start, end)
  const targets = (s.targetList ?? []).map((t) => asNode(t, 'ResTarget'))
  if (layout === null || targets.some((t) => t === undefined) || layout.targets.length !== targets.length) return undefined
  const bytes = text.bytes
  const groupKeys = groups.map((g) => expressionKey({ ColumnRef: g! }))
  const aggregates: string[] = []
  const outputNames = new Set(targets.map((t) => outputName(t!)))
  const replacements: Replacement[] = []
  let possible = true
  let aggregated = false
  const scan = (root: unknown, orderBy: boolean): void => {
    walkAst(root, (tag, body) => {
      if (!possible) return false
      if (tag === 'SubLink' || tag === 'WindowDef') possible = false
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
  scan(s.targetList, false)
  scan(s.havingClause, false)
  scan(s.sortClause, true)
  // Bare aggregates and columns only: nothing to compute over them (and the subquery would be the statement again).
  const bare = !s.havingClause && targets.every((t, i) => {
    const span = t!.name === undefined ? layout.targets[i]! : { start: layout.targets[i]!.start, end: valueEnd(layout.targets[i]!, bytes) }
    return replacements.some((r) => r.span.start === span.start && r.span.end === bytes.slice(0, span.end).trimEnd().length)
  })
  if (!possible || !aggregated || (bare && !orderedByAggregate(replacements, layout.clauses.get('order')))) return undefined
  const from = layout.clauses.get('from')
  if (from === undefined) return undefined
  const fromEnd = layout.clauses.get('where')?.end ?? from.end
  const outerTargets = targets.map((t, i) => {
    const span = layout.targets[i]!
    const name = t!.name ?? columnName(t!)
    if (name === undefined) return null
    const expression = t!.name === undefined ? span : { start: span.start, end: valueEnd(span, bytes) }
    return `${rewritten(bytes, expression, replacements)} AS ${quoteIdent(name)}`
  })
  if (outerTargets.some((t) => t === null)) return undefined
  const groupSpans = groups.map((g) => columnSpan(bytes, g!.location ?? -1, end))
  if (groupSpans.some((g) => g === null)) return undefined
  const inner = [...groupSpans.map((g, i) => `${bytes.slice(g!.start, g!.end)} AS g${i + 1}`), ...aggregates.map((a, i) => `${a} AS a${i + 1}`)]
  const group = layout.clauses.get('group')
  const having = layout.clauses.get('having')
  const order = layout.clauses.get('order')
  const tail = (['limit', 'offset', 'fetch'] as const).flatMap((c) => layout.clauses.get(c) ?? []).sort((a, b) => a.start - b.start)
  const parts = [
    `${bytes.slice(0, start)}SELECT ${outerTargets.join(', ')} FROM (SELECT ${inner.join(', ')} ${bytes.slice(from.start, fromEnd)}${group ? ` ${bytes.slice(group.start, group.end)}` : ''}) AS ${SUBQUERY}`,
    having ? ` WHERE ${rewritten(bytes, afterWords(bytes, having, 1), replacements)}` : '',
    order ? ` ORDER BY ${rewritten(bytes, afterWords(bytes, order, 2), replacements)}` : '',
    ...tail.map((c) => ` ${bytes.slice(c.start, c.end)}`),
  ]
  return decodeBytes(parts.join('') + bytes.slice(end), text.ascii)
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
