// The rows of an INSERT … VALUES and where each `(…)` row is written, so a multi-row INSERT whose rows belong to
// several shards can be rebuilt as one INSERT per shard.
import type { InsertStmt } from 'libpg-query'
import type { InsertRows, ValueRef } from './StatementPlan.js'
import { asNode } from './ast/AstNode.js'
import { tableRefOf } from './ast/PinCollector.js'
import { valueRefOf } from './ast/ValueRefs.js'
import { SqlLexer, Tok } from './SqlLexer.js'
import { quoteIdent } from './SqlQuoting.js'
import { decodeBytes, StatementText } from './StatementText.js'

/**
 * The rows of `ins` (written before byte `end` of `text`), or undefined when it is not a plain INSERT … VALUES.
 * A value other than a constant or parameter (`now()`, DEFAULT, `$1 || 'x'`) is null: the row can still be
 * routed when its key is a constant or a parameter.
 */
export function insertRows(ins: InsertStmt, text: StatementText, end: number): InsertRows | undefined {
  const select = asNode(ins.selectStmt, 'SelectStmt')
  const lists = select?.valuesLists
  if (ins.relation === undefined || lists === undefined || select === undefined) return undefined
  if (select.sortClause !== undefined || select.limitCount !== undefined || select.limitOffset !== undefined) return undefined
  if (select.withClause !== undefined) return undefined
  const columns: string[] = []
  let columnsAt: number | null = null
  for (const c of ins.cols ?? []) {
    const target = asNode(c, 'ResTarget')
    if (target?.name === undefined || target.indirection !== undefined) return undefined
    columnsAt ??= target.location ?? null
    columns.push(target.name)
  }
  const values = lists.map((list): (ValueRef | null)[] => (asNode(list, 'List')?.items ?? []).map(valueRefOf))
  const spans = rowSpans(text.bytes, ins.relation.location ?? 0, end)
  if (spans === null || spans.length !== values.length) return undefined
  return {
    text: text.sql,
    table: tableRefOf(ins.relation),
    columns,
    columnsAt,
    rows: values.map((v, i) => ({ values: v, start: spans[i]!.start, end: spans[i]!.end })),
    valuesStart: spans[0]!.start,
    valuesEnd: spans[spans.length - 1]!.end,
  }
}

/** The `(…)` rows after the first VALUES at depth 0 from `from`. */
function rowSpans(bytes: string, from: number, end: number): { start: number; end: number }[] | null {
  const lexer = new SqlLexer(bytes, from, end)
  let depth = 0
  let k = lexer.nextSignificant()
  for (; k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (k === Tok.LParen) depth++
    else if (k === Tok.RParen) depth--
    else if (depth === 0 && lexer.isWord('values')) break
  }
  if (k !== Tok.Ident) return null
  const spans: { start: number; end: number }[] = []
  for (;;) {
    if (lexer.nextSignificant() !== Tok.LParen) return null
    const start = lexer.start
    depth = 1
    while (depth > 0) {
      k = lexer.nextSignificant()
      if (k === Tok.End || k === Tok.Error) return null
      if (k === Tok.LParen) depth++
      else if (k === Tok.RParen) depth--
    }
    spans.push({ start, end: lexer.end })
    if (lexer.nextSignificant() !== Tok.Comma) return spans
  }
}

/**
 * The INSERT with only the rows `rowIndexes` in its VALUES list: the head up to the VALUES list, those rows
 * joined by ', ', and the rest (ON CONFLICT, RETURNING). Offsets are bytes.
 */
export function buildInsertText(insert: InsertRows, rowIndexes: readonly number[]): string {
  const text = new StatementText(insert.text)
  const bytes = text.bytes
  const rows = rowIndexes.map((i) => {
    const row = insert.rows[i]
    if (row === undefined) throw new RangeError(`INSERT has no row ${i}`)
    return bytes.slice(row.start, row.end)
  })
  return decodeBytes(bytes.slice(0, insert.valuesStart) + rows.join(', ') + bytes.slice(insert.valuesEnd), text.ascii)
}

/**
 * The INSERT with column `key` first in its column list and `values[i]` (SQL text: a literal or a parameter)
 * first in row i: the rows of an INSERT that left the key out, given keys drawn from a sequence.
 */
export function insertWithKeys(insert: InsertRows, key: string, values: readonly string[]): string {
  if (insert.columnsAt === null) throw new RangeError('INSERT has no column list')
  if (values.length !== insert.rows.length) throw new RangeError(`INSERT has ${insert.rows.length} rows, not ${values.length}`)
  const text = new StatementText(insert.text)
  const bytes = text.bytes
  let out = bytes.slice(0, insert.columnsAt) + quoteIdent(key) + ', '
  let at = insert.columnsAt
  insert.rows.forEach((row, i) => {
    out += bytes.slice(at, row.start + 1) + values[i] + ', '
    at = row.start + 1
  })
  return decodeBytes(out + bytes.slice(at), text.ascii)
}
