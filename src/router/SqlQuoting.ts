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
