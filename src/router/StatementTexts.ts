import type { RawStmt } from 'libpg-query'
import { SqlLexer, Tok } from './SqlLexer.js'
import { parseSql } from './SqlParser.js'
import { StatementText } from './StatementText.js'

/** Byte range of a statement without the `;` and trailing whitespace or comments. */
export function statementRange(raw: RawStmt, text: StatementText): [number, number] {
  const start = raw.stmt_location ?? 0
  const limit = raw.stmt_len !== undefined && raw.stmt_len > 0 ? start + raw.stmt_len : text.bytes.length
  const lexer = new SqlLexer(text.bytes, start, limit)
  let end = start
  for (let k = lexer.nextSignificant(); k !== Tok.End; k = lexer.nextSignificant()) if (k !== Tok.Semicolon) end = lexer.end
  return [start, end]
}

/** The statements of a query string, each as written (comments before it kept, its `;` dropped), in order. */
export function statementTexts(sql: string): string[] {
  const text = new StatementText(sql)
  return (parseSql(sql).stmts ?? []).map((raw) => text.slice(...statementRange(raw, text)))
}
