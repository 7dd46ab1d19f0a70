import { SqlLexer, Tok } from '../router/SqlLexer.js'

export interface Renumbered {
  sql: string
  /** For each new parameter $i (index i-1), the original parameter number. */
  original: number[]
}

/**
 * Renumbers the $n parameters of a statement to $1…$k in order of first use. A part of a split statement
 * uses only some of the client's parameters, and Postgres must be able to infer the type of every parameter
 * a statement has, so each part gets exactly the ones it uses.
 */
export function renumberParams(sql: string): Renumbered {
  const lexer = new SqlLexer(sql)
  const mapping = new Map<number, number>()
  const original: number[] = []
  let out = ''
  let copied = 0
  for (let k = lexer.next(); k !== Tok.End && k !== Tok.Error; k = lexer.next()) {
    if (k !== Tok.Param) continue
    const n = Number(sql.slice(lexer.start + 1, lexer.end))
    let m = mapping.get(n)
    if (m === undefined) {
      original.push(n)
      m = original.length
      mapping.set(n, m)
    }
    out += sql.slice(copied, lexer.start) + '$' + m
    copied = lexer.end
  }
  return { sql: out + sql.slice(copied), original }
}
