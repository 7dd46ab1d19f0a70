import { commandComplete, dataRow, noticeResponse, rowDescription, type FieldDescription } from '../protocol/ServerMessages.js'
import type { Cell, Column, ColumnType } from './AdminCommand.js'

const TYPE_OID: Record<ColumnType, { oid: number; size: number }> = {
  text: { oid: 25, size: -1 },
  int8: { oid: 20, size: 8 },
  float8: { oid: 701, size: 8 },
  bool: { oid: 16, size: 1 },
}

export function describeColumns(columns: Column[]): Buffer {
  return rowDescription(columns.map((c): FieldDescription => ({ name: c.name, typeOid: TYPE_OID[c.type].oid, typeSize: TYPE_OID[c.type].size })))
}

/** A cell in Postgres' text format for its column type. */
function cellText(cell: Cell): string | null {
  if (cell === null) return null
  if (typeof cell === 'boolean') return cell ? 't' : 'f'
  if (typeof cell === 'number' && !Number.isFinite(cell)) return Number.isNaN(cell) ? 'NaN' : cell > 0 ? 'Infinity' : '-Infinity'
  return String(cell)
}

/** Notices, then the rows, then CommandComplete (RowDescription is the caller's: the extended protocol sends it on Describe). */
export function encodeRows(rows: Cell[][] | undefined, tag: string, notices: string[] = []): Buffer[] {
  const out = notices.map((n) => noticeResponse(n))
  for (const row of rows ?? []) out.push(dataRow(row.map(cellText)))
  out.push(commandComplete(tag))
  return out
}
