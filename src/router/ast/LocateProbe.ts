// The query that finds which shards hold the rows of an UPDATE or DELETE whose WHERE does not pin the sharding
// key (an ORM's save() or delete() of a row it addresses by its own id): the statement's table and WHERE clause
// as a SELECT, which each shard answers before the write goes where rows are.
import type { Node, SelectStmt } from 'libpg-query'
import { layoutSelect } from '../SelectLayout.js'
import { SqlLexer, Tok } from '../SqlLexer.js'
import { decodeBytes, type StatementText } from '../StatementText.js'
import { asNode } from './AstNode.js'

/**
 * `SELECT 1 FROM <table [AS alias]> [WHERE …] LIMIT 1` for an UPDATE or DELETE of one table written before
 * byte `end` of `text`; undefined for one that also reads FROM/USING tables, has a WITH clause, or writes
 * through a cursor (WHERE CURRENT OF).
 */
export function locateProbe(stmt: Node, text: StatementText, end: number): string | undefined {
  const update = asNode(stmt, 'UpdateStmt')
  const del = asNode(stmt, 'DeleteStmt')
  const target = update ?? del
  if (target?.relation?.location === undefined || target.withClause !== undefined) return undefined
  if ((update?.fromClause?.length ?? 0) > 0 || (del?.usingClause?.length ?? 0) > 0) return undefined
  if (asNode(target.whereClause, 'CurrentOfExpr') !== undefined) return undefined
  const lexer = new SqlLexer(text.bytes, target.relation.location, end)
  let depth = 0
  let tableEnd = -1
  let whereStart = -1
  // The end of the last token before RETURNING (or the statement's end): no trailing comment or semicolon.
  let lastEnd = -1
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error && k !== Tok.Semicolon; k = lexer.nextSignificant()) {
    if (k === Tok.LParen) depth++
    else if (k === Tok.RParen) depth--
    if (depth === 0 && k === Tok.Ident) {
      if (lexer.isWord('returning')) break
      if (tableEnd < 0 && lexer.isWord(update ? 'set' : 'where')) tableEnd = lastEnd
      if (whereStart < 0 && lexer.isWord('where')) whereStart = lexer.start
    }
    lastEnd = lexer.end
  }
  if (tableEnd < 0) {
    if (update) return undefined
    tableEnd = lastEnd
  }
  const where = whereStart < 0 ? '' : ` ${text.bytes.slice(whereStart, lastEnd)}`
  return decodeBytes(`SELECT 1 FROM ${text.bytes.slice(target.relation.location, tableEnd)}${where}\nLIMIT 1`, text.ascii)
}

/**
 * The same for a locking read of one table (SELECT … FROM t WHERE … FOR UPDATE [LIMIT n], as Django's
 * select_for_update() and update_or_create() send): its FROM and WHERE, at bytes [start, end) of `text`.
 * Undefined when it reads more than one table or combines rows.
 */
export function lockingReadProbe(select: SelectStmt, text: StatementText, start: number, end: number): string | undefined {
  if (select.lockingClause === undefined || select.fromClause?.length !== 1 || asNode(select.fromClause[0], 'RangeVar') === undefined) return undefined
  if (select.groupClause !== undefined || select.havingClause !== undefined || select.distinctClause !== undefined || select.windowClause !== undefined) return undefined
  if (select.withClause !== undefined || (select.op !== undefined && select.op !== 'SETOP_NONE')) return undefined
  const layout = layoutSelect(text.bytes, start, end)
  const from = layout?.clauses.get('from')
  if (!layout || from === undefined) return undefined
  const where = layout.clauses.get('where')
  const span = (s: { start: number; end: number } | undefined) => (s === undefined ? '' : ` ${text.bytes.slice(s.start, s.end)}`)
  return decodeBytes(`SELECT 1${span(from)}${span(where)}\nLIMIT 1`, text.ascii)
}
