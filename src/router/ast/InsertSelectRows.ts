// INSERT … SELECT whose rows pgshard sends to their shards itself, when the key of each row is only known once the
// SELECT has run (generate_series, a reference table, a table sharded by another column): the SELECT as text, run
// as `COPY (…) TO STDOUT`, and the COPY … FROM STDIN of the same table and columns that takes its rows.
import type { InsertStmt } from 'libpg-query'
import { SqlLexer, Tok } from '../SqlLexer.js'
import { quoteIdent } from '../SqlQuoting.js'
import type { InsertSelect } from '../StatementPlan.js'
import { decodeBytes, type StatementText } from '../StatementText.js'
import { asNode, walkAst } from './AstNode.js'

const QUERY_WORDS = ['select', 'values', 'with', 'table']
const WRITES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'])

/**
 * The rows' query and target of a plain `INSERT INTO t [(columns)] query`; undefined when the INSERT has more
 * than COPY can do (ON CONFLICT, RETURNING, its own WITH, OVERRIDING, a query that writes), or a column is written
 * through a field or subscript.
 */
export function insertSelectOf(ins: InsertStmt, text: StatementText, end: number): InsertSelect | undefined {
  const rel = ins.relation
  if (asNode(ins.selectStmt, 'SelectStmt') === undefined || rel?.location === undefined || rel.relname === undefined) return undefined
  if (ins.onConflictClause !== undefined || (ins.returningClause?.exprs?.length ?? 0) > 0 || ins.withClause !== undefined) return undefined
  if (ins.override !== undefined && ins.override !== 'OVERRIDING_NOT_SET') return undefined
  // A query that writes too (a DELETE … RETURNING in its WITH) is not one that COPY … TO can run.
  let writes = false
  walkAst(ins.selectStmt, (tag) => {
    if (WRITES.has(tag)) writes = true
    return !writes
  })
  if (writes) return undefined
  const columns: string[] = []
  for (const c of ins.cols ?? []) {
    const target = asNode(c, 'ResTarget')
    if (target?.name === undefined || target.indirection !== undefined) return undefined
    columns.push(target.name)
  }
  const span = querySpan(text, rel.location, end, columns.length > 0)
  if (span === null) return undefined
  return {
    query: decodeBytes(text.bytes.slice(span.start, span.end), text.ascii),
    table: [rel.schemaname, rel.relname].filter((n): n is string => n !== undefined).map(quoteIdent).join('.'),
    columns: columns.length > 0 ? columns : null,
  }
}

/**
 * The bytes of the query of an `INSERT INTO t [(columns)] query` that COPY cannot take (with RETURNING or ON
 * CONFLICT), when that query reads something (a FROM clause: a VALUES list is the INSERT's own rows) and names
 * nothing of the statement around it: pgshard can read its rows first and write them in as a VALUES list.
 */
export function insertQueryOnItsOwn(ins: InsertStmt, text: StatementText, end: number): { start: number; end: number } | null {
  const select = asNode(ins.selectStmt, 'SelectStmt')
  const rel = ins.relation
  const returns = (ins.returningClause?.exprs?.length ?? 0) > 0
  if (select === undefined || rel?.location === undefined || (ins.onConflictClause === undefined && !returns)) return null
  if (select.valuesLists !== undefined || (select.fromClause?.length ?? 0) === 0) return null
  const span = querySpan(text, rel.location, end, (ins.cols?.length ?? 0) > 0)
  if (span === null) return null
  // The query ends where ON CONFLICT or RETURNING (a reserved word: never the query's own at its level) begins.
  const conflict = ins.onConflictClause?.location ?? end
  const lexer = new SqlLexer(text.bytes, span.start, Math.min(span.end, conflict))
  let depth = 0
  let last = -1
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (k === Tok.LParen) depth++
    else if (k === Tok.RParen) depth--
    if (depth === 0 && k === Tok.Ident && lexer.isWord('returning')) break
    last = lexer.end
  }
  return last <= span.start ? null : { start: span.start, end: last }
}

/** Where the query starts (after the table, its alias and its column list) and ends (before a `;`). */
function querySpan(text: StatementText, from: number, end: number, listed: boolean): { start: number; end: number } | null {
  const lexer = new SqlLexer(text.bytes, from, end)
  let start = -1
  let last = -1
  let depth = 0
  let listSkipped = !listed
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error && !(k === Tok.Semicolon && depth === 0); k = lexer.nextSignificant()) {
    if (start < 0 && depth === 0) {
      if (k === Tok.LParen && listSkipped) start = lexer.start
      else if (k === Tok.Ident && QUERY_WORDS.some((w) => lexer.isWord(w))) start = lexer.start
    }
    if (k === Tok.LParen) depth++
    else if (k === Tok.RParen && --depth === 0 && start < 0) listSkipped = true
    last = lexer.end
  }
  return start < 0 || last <= start ? null : { start, end: last }
}
