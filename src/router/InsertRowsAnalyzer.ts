// The rows of an INSERT … VALUES and where each `(…)` row is written, so a multi-row INSERT whose rows belong to
// several shards can be rebuilt as one INSERT per shard.
import type { InsertStmt, Node } from 'libpg-query'
import type { FillableValue, InsertRows, ValueRef } from './StatementPlan.js'
import { asNode, functionName, stringList } from './ast/AstNode.js'
import { tableRefOf } from './ast/PinCollector.js'
import { valueRefOf } from './ast/ValueRefs.js'
import { layoutCall } from './SelectLayout.js'
import { SqlLexer, Tok } from './SqlLexer.js'
import { qualifiedNameParts, quoteIdent, sameSequence } from './SqlQuoting.js'
import { decodeBytes, StatementText } from './StatementText.js'

/**
 * The rows of `ins` (written before byte `end` of `text`), or undefined when it is not a plain INSERT … VALUES.
 * A value other than a constant or parameter (`now()`, DEFAULT, `$1 || 'x'`) is null: the row can still be
 * routed when its key is a constant or a parameter.
 */
export function insertRows(ins: InsertStmt, text: StatementText, end: number): InsertRows | undefined {
  if (ins.selectStmt === undefined && ins.relation !== undefined && (ins.cols ?? []).length === 0) return defaultValuesRow(ins, text, end)
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
  const items = lists.map((list) => asNode(list, 'List')?.items ?? [])
  const values = items.map((list): (ValueRef | null)[] => list.map(valueRefOf))
  const fillable = items.map((list) => list.map((item) => fillableValue(item, text.bytes, end)))
  const found = rowSpans(text.bytes, ins.relation.location ?? 0, end)
  if (found === null || found.spans.length !== values.length) return undefined
  const spans = found.spans
  return {
    text: text.sql,
    table: tableRefOf(ins.relation),
    columns,
    columnsAt,
    rows: values.map((v, i) => ({
      values: v,
      start: spans[i]!.start,
      end: spans[i]!.end,
      ...(fillable[i]!.some((d) => d !== null) ? { fillable: fillable[i] } : {}),
    })),
    valuesStart: spans[0]!.start,
    valuesEnd: spans[spans.length - 1]!.end,
    ...(ins.override === undefined || ins.override === 'OVERRIDING_NOT_SET' ? { valuesAt: found.valuesAt } : {}),
  }
}

/** A value written DEFAULT, or `nextval(name)` with a constant or parameter name (SQLAlchemy's Sequence columns). */
function fillableValue(item: Node, bytes: string, end: number): FillableValue | null {
  const location = asNode(item, 'SetToDefault')?.location
  if (location !== undefined) return { start: location, end: location + DEFAULT.length }
  const call = asNode(item, 'FuncCall')
  const name = call === undefined ? null : stringList(call.funcname)
  if (call === undefined || name === null || name.length > 2 || (name.length === 2 && name[0] !== 'pg_catalog') || functionName(call.funcname) !== 'nextval') return null
  if (call.args?.length !== 1 || call.location === undefined || call.agg_filter !== undefined || call.over !== undefined) return null
  const sequence = valueRefOf(call.args[0])
  const layout = layoutCall(bytes, call.location, end)
  if (sequence === null || 'null' in sequence || layout === null || layout.filter !== null) return null
  return { start: call.location, end: layout.end, nextval: sequence }
}

/** `INSERT INTO t DEFAULT VALUES`: one row of no values, where `DEFAULT VALUES` is written. */
function defaultValuesRow(ins: InsertStmt, text: StatementText, end: number): InsertRows | undefined {
  const lexer = new SqlLexer(text.bytes, ins.relation!.location ?? 0, end)
  let start = -1
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (lexer.isWord('default')) start = lexer.start
    else if (start >= 0 && lexer.isWord('values')) {
      const span = { start, end: lexer.end }
      return { text: text.sql, table: tableRefOf(ins.relation!), columns: [], columnsAt: null, rows: [{ values: [], ...span }], valuesStart: span.start, valuesEnd: span.end, defaultValues: true }
    } else start = -1
  }
  return undefined
}

/** The `(…)` rows after the first VALUES at depth 0 from `from`, and where that VALUES is. */
function rowSpans(bytes: string, from: number, end: number): { spans: { start: number; end: number }[]; valuesAt: number } | null {
  const lexer = new SqlLexer(bytes, from, end)
  let depth = 0
  let k = lexer.nextSignificant()
  for (; k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (k === Tok.LParen) depth++
    else if (k === Tok.RParen) depth--
    else if (depth === 0 && lexer.isWord('values')) break
  }
  if (k !== Tok.Ident) return null
  const valuesAt = lexer.start
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
    if (lexer.nextSignificant() !== Tok.Comma) return { spans, valuesAt }
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
 * The INSERT with `values[i]` (SQL text: a literal or a parameter) as row i's key, given keys drawn from a
 * sequence: in place of the DEFAULT each row gives it (`keyIndex`: the key's column), or, when the column list
 * left the key out, with column `key` first in the list and a key first in each row.
 */
export function insertWithKeys(insert: InsertRows, key: string, keyIndex: number | null, values: readonly string[]): string {
  if (values.length !== insert.rows.length) throw new RangeError(`INSERT has ${insert.rows.length} rows, not ${values.length}`)
  const text = new StatementText(insert.text)
  const bytes = text.bytes
  // Edits in text order: [offset, bytes replaced, text put there].
  const edits: [number, number, string][] = []
  // Drawn values must reach an identity column GENERATED ALWAYS too: OVERRIDING SYSTEM VALUE, which any table takes.
  const overriding = insert.valuesAt !== undefined ? ([[insert.valuesAt, 0, 'OVERRIDING SYSTEM VALUE ']] as [number, number, string][]) : []
  if (insert.defaultValues) edits.push([insert.valuesStart, insert.valuesEnd - insert.valuesStart, `(${quoteIdent(key)}) OVERRIDING SYSTEM VALUE VALUES (${values[0]})`])
  else if (keyIndex === null) {
    if (insert.columnsAt === null) throw new RangeError('INSERT has no column list')
    edits.push([insert.columnsAt, 0, quoteIdent(key) + ', '], ...overriding)
    insert.rows.forEach((row, i) => edits.push([row.start + 1, 0, values[i] + ', ']))
  } else {
    edits.push(...overriding)
    insert.rows.forEach((row, i) => {
      const at = row.fillable?.[keyIndex]
      if (at === undefined || at === null) throw new RangeError(`INSERT row ${i} gives its key`)
      edits.push([at.start, at.end - at.start, values[i]!])
    })
  }
  let out = ''
  let at = 0
  for (const [offset, length, put] of edits) {
    out += bytes.slice(at, offset) + put
    at = offset + length
  }
  return decodeBytes(out + bytes.slice(at), text.ascii)
}

const DEFAULT = 'DEFAULT'

/**
 * Whether the INSERT gives no value of column `index` (-1: not in its column list) that pgshard could not
 * make: the column list leaves it out, DEFAULT VALUES, or DEFAULT in every row, or `nextval(sequence)`, the
 * sequence pgshard draws the column from (`sequenceName` reads a nextval's name: null when unknown). An INSERT
 * without a column list gives every column.
 */
export function leavesOut(insert: InsertRows, index: number, sequence?: string, sequenceName?: (ref: ValueRef) => string | null): boolean {
  if (index < 0) return insert.columnsAt !== null || insert.defaultValues === true
  const drawnFrom = sequence === undefined ? null : qualifiedNameParts(sequence)
  return insert.rows.every((row) => {
    const value = row.fillable?.[index]
    if (value === undefined || value === null) return false
    if (value.nextval === undefined) return true
    const name = drawnFrom && sequenceName ? sequenceName(value.nextval) : null
    const parts = name === null ? null : qualifiedNameParts(name)
    return drawnFrom !== null && parts !== null && sameSequence(parts, drawnFrom)
  })
}
