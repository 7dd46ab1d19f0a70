// Quoting for SQL text the proxy writes itself (settings replayed on server connections, control statements).

/** A double-quoted identifier: always quoted, so case and keywords survive. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/**
 * A string constant that reads the same whatever standard_conforming_strings is: with a backslash in the value
 * it is written as E'…' with the backslashes doubled, otherwise as '…'.
 */
export function quoteLiteral(value: string): string {
  const quoted = value.replaceAll("'", "''")
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`
}

/**
 * The parts of a possibly qualified name as Postgres reads it (`public.seq`, `"My Seq"`): unquoted parts folded
 * to lower case, quoted ones as written. Null when the text is not such a name.
 */
export function qualifiedNameParts(text: string): string[] | null {
  const parts: string[] = []
  let i = 0
  for (;;) {
    if (text[i] === '"') {
      let part = ''
      for (i++; ; i++) {
        if (i >= text.length) return null
        if (text[i] === '"' && text[i + 1] === '"') part += text[i++]
        else if (text[i] === '"') break
        else part += text[i]
      }
      i++
      if (part === '') return null
      parts.push(part)
    } else {
      const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(text.slice(i))
      if (m === null) return null
      parts.push(m[0].toLowerCase())
      i += m[0].length
    }
    if (i === text.length) return parts.length <= 3 ? parts : null
    if (text[i] !== '.') return null
    i++
  }
}

/**
 * Two names of one sequence as the client and the configuration write them (qualifiedNameParts): equal parts, or
 * equal names when only one of them gives the schema (both resolve through the client's search_path then).
 */
export function sameSequence(a: readonly string[], b: readonly string[]): boolean {
  if (a.length === b.length) return a.every((part, i) => part === b[i])
  return a.at(-1) === b.at(-1)
}
