// Simple-protocol clients inline their values (`pgbench -S` sends a new aid every time), so a plan cache keyed by
// raw text would never hit. This scanner replaces each literal by $k in one pass, so every statement of one shape
// shares one cached plan, and hands the values back for routing. It only touches places where a parameter means
// the same as the literal to the parser; where the grammar needs a constant (typed literals `DATE '…'`, type
// modifiers `varchar(10)`, ORDER BY / GROUP BY positions) the literal stays in the text.
import type { NormalizedText } from './StatementPlan.js'
import { SqlLexer, Tok, isIdentChar, wordEquals, type Tok as TokKind } from './SqlLexer.js'
import { hintBodyStart } from './HintParser.js'

export interface NormalizedLiterals extends NormalizedText {
  /** Each literal as written (quotes, prefix, folded unary minus), to put back into a text derived from `text`. */
  sources: string[]
}

const NONE = -1

// Words after which a literal is an operand on its own (not the value of a typed literal like `DATE '…'`).
const OPERAND_WORDS = words(
  'select where and or not then else when case limit offset returning having on between like ilike to from escape ' +
    'distinct all first next',
)
const DML_START_WORDS = words('select insert update delete with values table')
const BY_LIST_END_WORDS = words('limit offset having window for fetch union intersect except returning into')
// Type names whose `(n)` modifier the grammar requires to be an integer constant.
const TYPMOD_WORDS = words('char character varchar varying nchar bit numeric decimal dec float time timestamp interval second')

/** Words grouped by length, so a token is compared without slicing it out. */
function words(list: string): string[][] {
  const byLength: string[][] = []
  for (const w of list.split(' ')) (byLength[w.length] ??= []).push(w)
  return byLength
}

function wordIn(text: string, start: number, end: number, set: string[][]): boolean {
  const candidates = set[end - start]
  if (candidates === undefined) return false
  for (const w of candidates) if (wordEquals(text, start, end, w)) return true
  return false
}

const MAX_DEPTH = 64
const byList = new Uint8Array(MAX_DEPTH)

/**
 * The text with its literals replaced by $firstParam, $firstParam+1, …, or null when the text is not plain DML
 * (SELECT/INSERT/UPDATE/DELETE/WITH/VALUES/TABLE) or cannot be scanned safely. Comments other than pgshard hints
 * are replaced by a space, so per-request comments (trace ids) do not defeat the cache.
 */
export function normalizeLiterals(sql: string, firstParam: number): NormalizedLiterals | null {
  const lexer = new SqlLexer(sql)
  const values: string[] = []
  const sources: string[] = []
  let out = ''
  let copied = 0
  let changed = false
  let depth = 0
  let typmodDepth = NONE
  let atStatementStart = true
  let commentSincePrev = false
  // The two previous significant tokens.
  let prevKind: TokKind | typeof NONE = NONE
  let prevStart = 0
  let prevEnd = 0
  let prev2Kind: TokKind | typeof NONE = NONE
  let prev2Start = 0
  let prev2End = 0
  byList.fill(0)

  const replace = (from: number, to: number, value: string): void => {
    out += sql.slice(copied, from) + '$' + String(firstParam + values.length)
    copied = to
    changed = true
    values.push(value)
    sources.push(sql.slice(from, to))
  }
  const prevIsWord = (set: string[][]): boolean => prevKind === Tok.Ident && wordIn(sql, prevStart, prevEnd, set)
  // Whether a literal right after the previous token stands alone as an operand.
  const operandPosition = (kind: number, start: number, end: number): boolean => {
    if (kind === Tok.Ident) return wordIn(sql, start, end, OPERAND_WORDS)
    return (
      kind === NONE ||
      kind === Tok.LParen ||
      kind === Tok.LBracket ||
      kind === Tok.Comma ||
      kind === Tok.Operator ||
      kind === Tok.Semicolon
    )
  }

  for (;;) {
    const kind = lexer.next()
    const start = lexer.start
    const end = lexer.end
    if (kind === Tok.End) break
    if (kind === Tok.Error) return null
    if (kind === Tok.LineComment || kind === Tok.BlockComment) {
      if (hintBodyStart(sql, start, end) < 0) {
        out += sql.slice(copied, start) + ' '
        copied = end
        changed = true
      }
      commentSincePrev = true
      continue
    }
    if (atStatementStart) {
      if (kind !== Tok.LParen && !(kind === Tok.Ident && wordIn(sql, start, end, DML_START_WORDS))) {
        if (kind !== Tok.Semicolon) return null
      } else atStatementStart = false
    }
    switch (kind) {
      case Tok.Number: {
        if (isIdentChar(sql.charCodeAt(end))) break // `1abc`: PG15 reads `1 AS abc`, PG16+ rejects it
        if (typmodDepth !== NONE && depth >= typmodDepth) break
        const listItemStart =
          prevKind === Tok.Comma || prevKind === Tok.LParen || (prevKind === Tok.Ident && wordEquals(sql, prevStart, prevEnd, 'by'))
        if (byList[depth] === 1 && listItemStart) break
        const unaryMinus =
          prevKind === Tok.Operator &&
          prevEnd - prevStart === 1 &&
          sql.charCodeAt(prevStart) === 45 &&
          !commentSincePrev &&
          operandPosition(prev2Kind, prev2Start, prev2End)
        if (unaryMinus) replace(prevStart, end, '-' + sql.slice(start, end))
        else replace(start, end, sql.slice(start, end))
        break
      }
      case Tok.String:
      case Tok.EString:
      case Tok.UString:
      case Tok.BitString: {
        if (!operandPosition(prevKind, prevStart, prevEnd)) break
        if (kind === Tok.UString && followedByUescape(sql, end)) break
        const value = decodeLiteral(kind, sql, start, end)
        if (value === null) return null
        replace(start, end, value)
        break
      }
      case Tok.Param:
        if (paramNumber(sql, start, end) >= firstParam) return null
        break
      case Tok.Ident:
        if (wordEquals(sql, start, end, 'by')) byList[depth] = 1
        else if (wordIn(sql, start, end, BY_LIST_END_WORDS)) byList[depth] = 0
        break
      case Tok.LParen:
      case Tok.LBracket: {
        // `ORDER BY (1)` is position 1 as `ORDER BY 1` is (Django writes it so after a UNION).
        const byItem = byList[depth] === 1 && (prevKind === Tok.Comma || (prevKind === Tok.Ident && wordEquals(sql, prevStart, prevEnd, 'by')))
        if (++depth >= MAX_DEPTH) return null
        // DISTINCT ON (1) names output positions, like ORDER BY 1.
        const distinctOn =
          prevKind === Tok.Ident &&
          wordEquals(sql, prevStart, prevEnd, 'on') &&
          prev2Kind === Tok.Ident &&
          wordEquals(sql, prev2Start, prev2End, 'distinct')
        byList[depth] = distinctOn || byItem ? 1 : 0
        if (kind === Tok.LParen && typmodDepth === NONE && prevIsWord(TYPMOD_WORDS)) typmodDepth = depth
        break
      }
      case Tok.RParen:
      case Tok.RBracket:
        if (depth === typmodDepth) typmodDepth = NONE
        if (depth > 0) depth--
        break
      case Tok.Semicolon:
        depth = 0
        typmodDepth = NONE
        byList.fill(0)
        atStatementStart = true
        break
    }
    prev2Kind = prevKind
    prev2Start = prevStart
    prev2End = prevEnd
    prevKind = kind
    prevStart = start
    prevEnd = end
    commentSincePrev = false
  }
  return { text: changed ? out + sql.slice(copied) : sql, values, firstParam, sources }
}

/** Puts `sources` back in place of $firstParam… in a text derived from a normalized one (e.g. a shard query). */
export function restoreLiterals(text: string, firstParam: number, sources: readonly string[]): string {
  if (sources.length === 0) return text
  const lexer = new SqlLexer(text)
  let out = ''
  let copied = 0
  for (let k = lexer.next(); k !== Tok.End && k !== Tok.Error; k = lexer.next()) {
    if (k !== Tok.Param) continue
    const source = sources[paramNumber(text, lexer.start, lexer.end) - firstParam]
    if (source === undefined) continue
    // `- $1` with $1 = `-5` must not become the comment `--5`.
    const glue = source.charCodeAt(0) === 45 && lexer.start > 0 && text.charCodeAt(lexer.start - 1) === 45 ? ' ' : ''
    out += text.slice(copied, lexer.start) + glue + source
    copied = lexer.end
  }
  return out + text.slice(copied)
}

/** The numbers of the $n in the text. */
export function usedParams(sql: string): Set<number> {
  const used = new Set<number>()
  if (sql.indexOf('$') < 0) return used
  const lexer = new SqlLexer(sql)
  for (let k = lexer.next(); k !== Tok.End && k !== Tok.Error; k = lexer.next()) {
    if (k === Tok.Param) used.add(paramNumber(sql, lexer.start, lexer.end))
  }
  return used
}

/** The highest $n in the text (0 when there is none). */
export function highestParam(sql: string): number {
  if (sql.indexOf('$') < 0) return 0
  const lexer = new SqlLexer(sql)
  let max = 0
  for (let k = lexer.next(); k !== Tok.End && k !== Tok.Error; k = lexer.next()) {
    if (k === Tok.Param) max = Math.max(max, paramNumber(sql, lexer.start, lexer.end))
  }
  return max
}

function paramNumber(text: string, start: number, end: number): number {
  let n = 0
  for (let i = start + 1; i < end; i++) n = n * 10 + (text.charCodeAt(i) - 48)
  return n
}

function followedByUescape(sql: string, p: number): boolean {
  const lexer = new SqlLexer(sql, p)
  return lexer.nextSignificant() === Tok.Ident && lexer.isWord('uescape')
}

/** The value of a string literal token, or null when it is malformed (Postgres would reject it). */
function decodeLiteral(kind: TokKind, text: string, start: number, end: number): string | null {
  switch (kind) {
    case Tok.String: {
      const body = text.slice(start + 1, end - 1)
      return body.includes("''") ? body.replaceAll("''", "'") : body
    }
    case Tok.EString:
      return decodeEscapeString(text.slice(start + 2, end - 1))
    case Tok.UString:
      return decodeUnicodeString(text.slice(start + 3, end - 1))
    case Tok.BitString:
      return text.slice(start + 2, end - 1)
  }
  return null
}

const SIMPLE_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }

/** E'…' body: backslash escapes, including octal and hex bytes that together must form UTF-8. */
function decodeEscapeString(body: string): string | null {
  if (!body.includes('\\')) return body.replaceAll("''", "'")
  let out = ''
  let bytes: number[] = []
  const flushBytes = (): boolean => {
    if (bytes.length === 0) return true
    const decoded = new TextDecoder('utf-8', { fatal: true })
    try {
      out += decoded.decode(Uint8Array.from(bytes))
    } catch {
      return false
    }
    bytes = []
    return true
  }
  let i = 0
  while (i < body.length) {
    const c = body[i]!
    if (c === "'" && body[i + 1] === "'") {
      if (!flushBytes()) return null
      out += "'"
      i += 2
      continue
    }
    if (c !== '\\' || i + 1 >= body.length) {
      if (!flushBytes()) return null
      out += c
      i++
      continue
    }
    const e = body[i + 1]!
    if (e >= '0' && e <= '7') {
      let j = i + 1
      let v = 0
      while (j < body.length && j < i + 4 && body[j]! >= '0' && body[j]! <= '7') v = v * 8 + Number(body[j++])
      bytes.push(v & 0xff)
      i = j
    } else if (e === 'x' && /[0-9a-fA-F]/.test(body[i + 2] ?? '')) {
      const hex = /^[0-9a-fA-F]{1,2}/.exec(body.slice(i + 2, i + 4))![0]
      bytes.push(parseInt(hex, 16))
      i += 2 + hex.length
    } else if (e === 'u' || e === 'U') {
      const width = e === 'u' ? 4 : 8
      const hex = body.slice(i + 2, i + 2 + width)
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== width) return null
      const code = parseInt(hex, 16)
      if (code > 0x10ffff || code === 0) return null
      if (!flushBytes()) return null
      out += String.fromCodePoint(code)
      i += 2 + width
    } else {
      if (!flushBytes()) return null
      out += SIMPLE_ESCAPES[e] ?? e
      i += 2
    }
  }
  if (!flushBytes()) return null
  return out.includes('\0') ? null : out
}

/** U&'…' body with the default escape character: \XXXX, \+XXXXXX and \\. */
function decodeUnicodeString(body: string): string | null {
  let out = ''
  let i = 0
  while (i < body.length) {
    const c = body[i]!
    if (c === "'" && body[i + 1] === "'") {
      out += "'"
      i += 2
    } else if (c !== '\\') {
      out += c
      i++
    } else if (body[i + 1] === '\\') {
      out += '\\'
      i += 2
    } else {
      const plus = body[i + 1] === '+'
      const hex = body.slice(i + (plus ? 2 : 1), i + (plus ? 8 : 5))
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== (plus ? 6 : 4)) return null
      const code = parseInt(hex, 16)
      if (code > 0x10ffff || code === 0) return null
      out += String.fromCodePoint(code)
      i += plus ? 8 : 5
    }
  }
  return out
}
