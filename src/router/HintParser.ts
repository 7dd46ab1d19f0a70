// Routing hints live in comments (`/* pgshard: shard=s1 key=42 role=replica */`), which libpg-query's AST does
// not keep, so they are read from the text with the lexer.
import type { Hint } from './StatementPlan.js'
import { SqlLexer, Tok } from './SqlLexer.js'
import { SqlAnalysisError } from './SqlParser.js'

const PREFIX = 'pgshard:'

/** A hint that cannot be obeyed: the client asked for something explicit, so it is refused, not ignored. */
export class InvalidHintError extends SqlAnalysisError {
  constructor(message: string) {
    super('22023', message)
    this.name = 'InvalidHintError'
  }
}

/** Offset of the hint body when the comment token text[start, end) is a pgshard hint, else -1. */
export function hintBodyStart(text: string, start: number, end: number): number {
  let p = start + 2
  while (p < end && (text.charCodeAt(p) === 32 || text.charCodeAt(p) === 9)) p++
  if (end - p < PREFIX.length) return -1
  for (let i = 0; i < PREFIX.length; i++) {
    let c = text.charCodeAt(p + i)
    if (c >= 65 && c <= 90) c += 32
    if (c !== PREFIX.charCodeAt(i)) return -1
  }
  return p + PREFIX.length
}

/** Every hint in the comments of `text`, in order. Throws InvalidHintError for an unknown key or role. */
export function parseHints(text: string): Hint[] {
  const hints: Hint[] = []
  if (!/pgshard:/i.test(text)) return hints
  const lexer = new SqlLexer(text)
  for (let k = lexer.next(); k !== Tok.End && k !== Tok.Error; k = lexer.next()) {
    if (k !== Tok.BlockComment && k !== Tok.LineComment) continue
    const body = hintBodyStart(text, lexer.start, lexer.end)
    if (body < 0) continue
    const bodyEnd = k === Tok.BlockComment ? lexer.end - 2 : lexer.end
    for (const [key, value] of hintPairs(text.slice(body, bodyEnd))) hints.push(toHint(key, value))
  }
  return hints
}

/** `k=v` pairs separated by spaces or commas; a value may be quoted with ' or ". */
function hintPairs(body: string): [string, string][] {
  const pairs: [string, string][] = []
  let p = 0
  const n = body.length
  const isSep = (c: string): boolean => c === ' ' || c === ',' || c === '\t' || c === '\n' || c === '\r'
  while (p < n) {
    while (p < n && isSep(body[p]!)) p++
    if (p >= n) break
    const eq = body.indexOf('=', p)
    if (eq < 0) throw new InvalidHintError(`pgshard hint "${body.slice(p).trim()}" is not of the form key=value`)
    const key = body.slice(p, eq).trim().toLowerCase()
    p = eq + 1
    let value: string
    const quote = body[p]
    if (quote === "'" || quote === '"') {
      const close = body.indexOf(quote, p + 1)
      if (close < 0) throw new InvalidHintError(`pgshard hint ${key}: unterminated quoted value`)
      value = body.slice(p + 1, close)
      p = close + 1
    } else {
      const from = p
      while (p < n && !isSep(body[p]!)) p++
      value = body.slice(from, p)
    }
    if (key === '' || value === '') throw new InvalidHintError(`pgshard hint "${key}=${value}" needs a key and a value`)
    pairs.push([key, value])
  }
  return pairs
}

/** The hint a comment `name=value` stands for. */
function toHint(name: string, value: string): Hint {
  switch (name) {
    case 'shard':
      return { kind: 'shard', value }
    case 'key':
      return { kind: 'key', value }
    case 'role': {
      const role = value.toLowerCase()
      if (role !== 'primary' && role !== 'replica') {
        throw new InvalidHintError(`pgshard hint role=${value}: expected primary or replica`)
      }
      return { kind: 'role', value: role }
    }
  }
  throw new InvalidHintError(`unknown pgshard hint "${name}" (expected shard, key or role)`)
}
