// Where each clause of a top-level SELECT sits in its text. The AST gives start offsets of some nodes but no ends,
// so the scatter planner, which must rewrite the text (drop HAVING, fold OFFSET into LIMIT, append hidden
// columns), finds the clause keywords at parenthesis depth 0 with the lexer. All offsets are byte offsets.
import { SqlLexer, Tok } from './SqlLexer.js'

export interface Span {
  start: number
  end: number
}

export interface OrderItem {
  /** The whole item, with ASC/DESC/NULLS … */
  item: Span
  /** The sort expression alone. */
  expr: Span
}

export interface SelectLayout {
  /** The DISTINCT keyword after SELECT. */
  distinct: Span | null
  targets: Span[]
  /** Each clause from its keyword to the end of its last token. */
  clauses: Map<Clause, Span>
  groupItems: Span[]
  orderItems: OrderItem[]
}

export type Clause = 'from' | 'where' | 'group' | 'having' | 'window' | 'order' | 'limit' | 'offset' | 'fetch' | 'locking'

const CLAUSE_WORDS: readonly Clause[] = ['from', 'where', 'group', 'having', 'window', 'order', 'limit', 'offset', 'fetch']
// Clauses the planner refuses before it asks for a layout; seeing one here means the text is not what it expects.
const UNEXPECTED_WORDS = ['for', 'into', 'union', 'intersect', 'except']
const SORT_SUFFIX_WORDS = ['asc', 'desc', 'nulls', 'using']
const LOCK_WORDS = ['update', 'share', 'no', 'key']

interface Token {
  kind: Tok
  start: number
  end: number
  depth: number
}

/** The layout of the SELECT in bytes[start, end), or null when the text does not have the expected shape. */
export function layoutSelect(bytes: string, start: number, end: number): SelectLayout | null {
  const tokens = significantTokens(bytes, start, end)
  if (tokens === null) return null
  const word = (i: number, w: string): boolean => isWord(bytes, tokens[i], w)
  const isLabel = (i: number): boolean => isLabelAt(bytes, tokens, i)
  if (word(0, 'with')) {
    // The clauses laid out are the main SELECT's, after the CTEs (each body in parentheses).
    const main = tokens.findIndex((t, i) => t.depth === 0 && word(i, 'select'))
    return main < 0 ? null : layoutSelect(bytes, tokens[main]!.start, end)
  }
  if (!word(0, 'select')) return null
  let i = 1
  let distinct: Span | null = null
  if (word(1, 'distinct') && word(2, 'on')) {
    // DISTINCT ON (…) stays in the shards' text as it is: the targets start after its parenthesis.
    if (tokens[3]?.kind !== Tok.LParen) return null
    const close = tokens.findIndex((t, j) => j > 3 && t.depth === 0 && t.kind === Tok.RParen)
    if (close < 0) return null
    i = close + 1
  } else if (word(1, 'distinct')) {
    distinct = { start: tokens[1]!.start, end: tokens[1]!.end }
    i = 2
  } else if (word(1, 'all')) i = 2

  const layout: SelectLayout = { distinct, targets: [], clauses: new Map(), groupItems: [], orderItems: [] }
  let clause: Clause | 'targets' = 'targets'
  let clauseStart = i
  // Splits tokens [from, to) into comma-separated items at depth 0.
  const items = (from: number, to: number): Span[] => {
    const out: Span[] = []
    let first = from
    for (let j = from; j <= to; j++) {
      if (j === to || (tokens[j]!.depth === 0 && tokens[j]!.kind === Tok.Comma)) {
        if (j === first) return out
        out.push({ start: tokens[first]!.start, end: tokens[j - 1]!.end })
        first = j + 1
      }
    }
    return out
  }
  const close = (to: number): boolean => {
    if (clause === 'targets') {
      layout.targets = items(clauseStart, to)
      return layout.targets.length > 0
    }
    if (to <= clauseStart) return false
    layout.clauses.set(clause, { start: tokens[clauseStart]!.start, end: tokens[to - 1]!.end })
    if (clause === 'group') layout.groupItems = items(clauseStart + 2, to)
    if (clause === 'order') {
      for (const item of items(clauseStart + 2, to)) {
        let exprEnd = item.end
        for (let j = clauseStart + 2; j < to; j++) {
          const t = tokens[j]!
          if (t.start < item.start || t.start >= item.end || t.depth !== 0) continue
          if (SORT_SUFFIX_WORDS.some((w) => word(j, w)) && !isLabel(j) && j > 0) {
            exprEnd = tokens[j - 1]!.end
            break
          }
        }
        layout.orderItems.push({ item, expr: { start: item.start, end: exprEnd } })
      }
    }
    return true
  }
  for (; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.depth !== 0 || t.kind !== Tok.Ident || isLabel(i)) continue
    // FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE [OF …] [NOWAIT | SKIP LOCKED], one or more, to the end.
    if (word(i, 'for') && LOCK_WORDS.some((w) => word(i + 1, w))) {
      if (clause === 'locking') continue
      if (!close(i)) return null
      clause = 'locking'
      clauseStart = i
      continue
    }
    if (UNEXPECTED_WORDS.some((w) => word(i, w))) return null
    const next = CLAUSE_WORDS.find((w) => word(i, w))
    if (next === undefined) continue
    if ((next === 'group' || next === 'order') && !word(i + 1, 'by')) continue // WITHIN GROUP (…)
    if (next === 'from' && word(i - 1, 'distinct')) continue // IS [NOT] DISTINCT FROM
    if (!close(i)) return null
    clause = next
    clauseStart = i
  }
  return close(tokens.length) ? layout : null
}

/** Whether token `t` is the keyword (or identifier) `w`, in any case. */
function isWord(bytes: string, t: Token | undefined, w: string): boolean {
  return t !== undefined && t.kind === Tok.Ident && t.end - t.start === w.length && bytes.slice(t.start, t.end).toLowerCase() === w
}

/** A keyword after AS or `.` is a column label (`1 AS limit`, `t.order`), not a clause. */
function isLabelAt(bytes: string, tokens: Token[], i: number): boolean {
  return i > 0 && (isWord(bytes, tokens[i - 1], 'as') || tokens[i - 1]!.kind === Tok.Dot)
}

function significantTokens(bytes: string, start: number, end: number): Token[] | null {
  const lexer = new SqlLexer(bytes, start, end)
  const tokens: Token[] = []
  let depth = 0
  for (let k = lexer.nextSignificant(); k !== Tok.End; k = lexer.nextSignificant()) {
    if (k === Tok.Error || k === Tok.Semicolon) return null
    if (k === Tok.RParen || k === Tok.RBracket) depth--
    if (depth < 0) return null
    tokens.push({ kind: k, start: lexer.start, end: lexer.end, depth })
    if (k === Tok.LParen || k === Tok.LBracket) depth++
  }
  return depth === 0 ? tokens : null
}

/** Inside the first parentheses at depth 0 of bytes[start, end) (a subquery in a FROM clause), or null. */
export function firstParenthesized(bytes: string, start: number, end: number): Span | null {
  const tokens = significantTokens(bytes, start, end)
  const open = tokens?.findIndex((t) => t.depth === 0 && t.kind === Tok.LParen) ?? -1
  if (tokens === null || open < 0) return null
  const close = tokens.findIndex((t, i) => i > open && t.depth === 0 && t.kind === Tok.RParen)
  return close < 0 ? null : { start: tokens[open]!.end, end: tokens[close]!.start }
}

/** Inside the innermost parentheses of bytes[start, end) still open at offset `at` (a subquery around its first item), or null. */
export function enclosingParenthesized(bytes: string, start: number, end: number, at: number): Span | null {
  const tokens = significantTokens(bytes, start, end)
  if (tokens === null) return null
  const open: number[] = []
  for (let i = 0; i < tokens.length && tokens[i]!.start < at; i++) {
    if (tokens[i]!.kind === Tok.LParen) open.push(i)
    else if (tokens[i]!.kind === Tok.RParen) open.pop()
  }
  const o = open.at(-1)
  if (o === undefined) return null
  const depth = tokens[o]!.depth
  const close = tokens.findIndex((t, i) => i > o && t.depth === depth && t.kind === Tok.RParen)
  return close < 0 ? null : { start: tokens[o]!.end, end: tokens[close]!.start }
}

/** The parts of a function call written at `start`: its name, argument list and optional FILTER (…). */
export interface CallLayout {
  /** The last part of the (possibly schema-qualified) name. */
  name: Span
  /** Inside the parentheses. */
  args: Span
  /** Inside the parentheses of `WITHIN GROUP (ORDER BY …)` (an ordered-set aggregate), when present. */
  within: Span | null
  /** `FILTER (WHERE …)`, when present. */
  filter: Span | null
  end: number
}

export function layoutCall(bytes: string, start: number, end: number): CallLayout | null {
  const lexer = new SqlLexer(bytes, start, end)
  let name: Span | null = null
  let k = lexer.nextSignificant()
  while (k === Tok.Ident || k === Tok.QuotedIdent) {
    name = { start: lexer.start, end: lexer.end }
    k = lexer.nextSignificant()
    if (k !== Tok.Dot) break
    k = lexer.nextSignificant()
  }
  if (name === null || k !== Tok.LParen) return null
  const argsStart = lexer.end
  const argsEnd = matchParen(lexer)
  if (argsEnd < 0) return null
  let callEnd = lexer.end
  let within: Span | null = null
  const group = new SqlLexer(bytes, callEnd, end)
  if (group.nextSignificant() === Tok.Ident && group.isWord('within') && group.nextSignificant() === Tok.Ident && group.isWord('group') && group.nextSignificant() === Tok.LParen) {
    const withinStart = group.end
    const withinEnd = matchParen(group)
    if (withinEnd < 0) return null
    within = { start: withinStart, end: withinEnd }
    callEnd = group.end
  }
  let filter: Span | null = null
  const after = new SqlLexer(bytes, callEnd, end)
  if (after.nextSignificant() === Tok.Ident && after.isWord('filter')) {
    const filterStart = after.start
    if (after.nextSignificant() === Tok.LParen && matchParen(after) >= 0) {
      filter = { start: filterStart, end: after.end }
      callEnd = after.end
    }
  }
  return { name, args: { start: argsStart, end: argsEnd }, within, filter, end: callEnd }
}

/**
 * The value x of `WITHIN GROUP (ORDER BY x …)`, from the span inside its parentheses: what follows ORDER BY, less
 * the `trailingWords` words of its direction (ASC or DESC, NULLS FIRST or LAST); null when the text differs.
 */
export function withinGroupValue(bytes: string, within: Span, trailingWords: number): string | null {
  const tokens = significantTokens(bytes, within.start, within.end)
  if (tokens === null || !isWord(bytes, tokens[0], 'order') || !isWord(bytes, tokens[1], 'by')) return null
  const last = tokens.length - 1 - trailingWords
  if (last < 2 || tokens.slice(last + 1).some((t) => t.kind !== Tok.Ident || t.depth !== 0)) return null
  return bytes.slice(tokens[2]!.start, tokens[last]!.end)
}

/** With the lexer just past a `(`: moves past the matching `)` and returns that `)`'s offset, or -1. */
function matchParen(lexer: SqlLexer): number {
  let depth = 1
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (k === Tok.LParen) depth++
    else if (k === Tok.RParen && --depth === 0) return lexer.start
  }
  return -1
}

/**
 * The clauses of a UNION as a whole in bytes[start, end): ORDER BY, LIMIT, OFFSET and FETCH after its last set
 * operation keyword, each from its keyword to the next; null when the text does not have that shape.
 */
export function layoutSetOperation(bytes: string, start: number, end: number): Map<'order' | 'limit' | 'offset' | 'fetch', Span> | null {
  const tokens = significantTokens(bytes, start, end)
  if (tokens === null) return null
  const word = (i: number, w: string): boolean => tokens[i]?.depth === 0 && isWord(bytes, tokens[i], w)
  let last = -1
  tokens.forEach((_, i) => {
    if (word(i, 'union') || word(i, 'intersect') || word(i, 'except')) last = i
  })
  if (last < 0) return null
  const starts: [number, 'order' | 'limit' | 'offset' | 'fetch'][] = []
  for (let i = last + 1; i < tokens.length; i++) {
    if (isLabelAt(bytes, tokens, i)) continue
    if (word(i, 'order') && word(i + 1, 'by')) starts.push([i, 'order'])
    else if (word(i, 'limit') || word(i, 'offset') || word(i, 'fetch')) starts.push([i, bytes.slice(tokens[i]!.start, tokens[i]!.end).toLowerCase() as 'limit'])
  }
  const clauses = new Map<'order' | 'limit' | 'offset' | 'fetch', Span>()
  starts.forEach(([i, clause], k) => {
    const to = k + 1 < starts.length ? starts[k + 1]![0] : tokens.length
    clauses.set(clause, { start: tokens[i]!.start, end: tokens[to - 1]!.end })
  })
  return clauses
}
