// Column values decoded for comparison, grouping and aggregation, from either wire format, and encoded
// back. Ordering follows Postgres: integers and numerics by value (numeric NaN above everything), floats with
// NaN above everything and -0 = 0, strings by the column's collation (TextCollation; bytes when none is known),
// uuids and bytea by bytes,
// booleans false < true, dates, times and timestamps by time, intervals by their span (IntervalText), jsonb as its
// btree operators do (JsonbValue).
import { parseUuid } from '../KeyEncoding.js'
import { formatFloat4, formatFloat8 } from './FloatText.js'
import { compareJsonb, jsonbEqualityKey, parseJsonb, type JsonbNode } from './JsonbValue.js'
import { BYTE_ORDER, type TextCollation } from './TextCollation.js'
import { parseDateText, parseTimestampText } from './DateTimeText.js'
import { intervalSpan, parseIntervalText, parseTimeText, parseTimeTzText, timeTzOrder } from './IntervalText.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { MergeError } from './MergeError.js'
import {
  compareNumeric,
  numericEqualityKey,
  numericFromBigInt,
  numericFromBinary,
  numericToBinary,
  numericToText,
  parseNumeric,
  type NumericValue,
} from './NumericValue.js'
import { isCreatedType, TypeOid, typeName } from './TypeOid.js'

export type SqlValue =
  | { kind: 'int'; value: bigint }
  | { kind: 'numeric'; value: NumericValue }
  | { kind: 'float'; value: number }
  /** uuid (its 16 bytes), bytea. */
  | { kind: 'bytes'; value: Buffer }
  /** Strings (their UTF-8 bytes), ordered by a collation. */
  | { kind: 'text'; value: Buffer; collation: TextCollation }
  | { kind: 'bool'; value: boolean }
  /**
   * date: days since 2000-01-01; timestamp[tz]: microseconds since 2000-01-01 (UTC); time: microseconds since
   * midnight; timetz: its time in UTC, then its zone (IntervalText); interval: its span in microseconds, a month
   * as 30 days (IntervalText).
   */
  | { kind: 'time'; value: bigint }
  /** Its strings ordered by a collation. */
  | { kind: 'jsonb'; value: JsonbNode; collation: TextCollation }

const ORDERED = new Set<number>([
  TypeOid.int2, TypeOid.int4, TypeOid.int8, TypeOid.oid, TypeOid.float4, TypeOid.float8, TypeOid.numeric,
  TypeOid.text, TypeOid.varchar, TypeOid.bpchar, TypeOid.name, TypeOid.char, TypeOid.unknown, TypeOid.bool,
  TypeOid.date, TypeOid.timestamp, TypeOid.timestamptz, TypeOid.time, TypeOid.timetz, TypeOid.interval, TypeOid.uuid, TypeOid.bytea, TypeOid.jsonb,
])

const FLOAT_TEXT = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$|^\s*[+-]?(?:NaN|Infinity|inf)\s*$/i
const BOOL_TRUE = new Set(['t', 'true', 'y', 'yes', 'on', '1'])
const BOOL_FALSE = new Set(['f', 'false', 'n', 'no', 'off', '0'])

/** Whether the merger can order (and so also group) values of this type. */
export function canOrder(oid: number): boolean {
  return ORDERED.has(oid)
}

/** An error for a type the merge cannot handle, suggesting the way out. */
export function unsupported(oid: number, what: string): MergeError {
  return new MergeError(
    `cannot ${what} values of ${typeName(oid)} when merging results from several shards`,
    '0A000',
    `cast the column (e.g. ::text${isCreatedType(oid) ? ', which orders an enum by its labels\u2019 text, not by their declared order' : ''}): the merge handles integers, numeric, float, text, bool, date, time[tz], timestamp[tz], interval, uuid, bytea and jsonb`,
  )
}

/** A value of an enum column that is not among the labels read from the catalogs: they are out of date. */
export class StaleEnumLabel extends MergeError {}

/** Whether the merger can order (and so also group) the values of a column: an enum whose labels it knows too. */
export function canOrderColumn(col: ColumnInfo): boolean {
  return col.labels !== undefined || canOrder(col.typeOid)
}

/** Decodes a column's value; an enum's label becomes its place in the declared order (both formats send the label). */
export function decodeColumn(raw: Buffer, col: ColumnInfo): SqlValue {
  if (col.labels === undefined) return decodeValue(raw, col.typeOid, col.format, col.collation)
  const label = raw.toString('utf8')
  const place = col.labels.indexOf(label)
  if (place < 0) {
    throw new StaleEnumLabel(
      `enum label "${label.slice(0, 64)}" of column "${col.name}" is not among the labels pgshard read from the shards' catalogs`,
      '0A000',
      'the type changed since pgshard read the catalogs: run RELOAD on the admin console (pgshard also reads them again on its own shortly), then retry',
    )
  }
  return { kind: 'int', value: BigInt(place) }
}

/** Decodes a value as the server sent it (text or binary format); strings ordered by `collation`. */
export function decodeValue(raw: Buffer, oid: number, format: 0 | 1, collation: TextCollation = BYTE_ORDER): SqlValue {
  if (TEXT_TYPES.has(oid)) return { kind: 'text', value: oid === TypeOid.bpchar ? trimTrailingSpaces(raw) : raw, collation }
  if (oid === TypeOid.jsonb) {
    // Binary: its version (1), then the text.
    if (format === 1 && raw[0] !== 1) throw badBinary(oid)
    return { kind: 'jsonb', value: parseJsonb(raw.toString('utf8', format)), collation }
  }
  return format === 1 ? decodeBinary(raw, oid) : valueFromText(raw.toString('utf8'), oid, raw)
}

/** String types: the same bytes in both formats. */
const TEXT_TYPES = new Set<number>([TypeOid.text, TypeOid.varchar, TypeOid.bpchar, TypeOid.name, TypeOid.unknown])

function badBinary(oid: number): MergeError {
  return new MergeError(`invalid binary value of ${typeName(oid)} from a shard`, '22P03')
}

function decodeBinary(raw: Buffer, oid: number): SqlValue {
  const need = (n: number) => {
    if (raw.length !== n) throw badBinary(oid)
  }
  switch (oid) {
    case TypeOid.int2:
      need(2)
      return { kind: 'int', value: BigInt(raw.readInt16BE(0)) }
    case TypeOid.int4:
      need(4)
      return { kind: 'int', value: BigInt(raw.readInt32BE(0)) }
    case TypeOid.int8:
      need(8)
      return { kind: 'int', value: raw.readBigInt64BE(0) }
    case TypeOid.oid:
      need(4)
      return { kind: 'int', value: BigInt(raw.readUInt32BE(0)) }
    case TypeOid.float4:
      need(4)
      return { kind: 'float', value: raw.readFloatBE(0) }
    case TypeOid.float8:
      need(8)
      return { kind: 'float', value: raw.readDoubleBE(0) }
    case TypeOid.numeric:
      return { kind: 'numeric', value: numericFromBinary(raw) }
    case TypeOid.bool:
      need(1)
      return { kind: 'bool', value: raw[0] !== 0 }
    case TypeOid.date:
      need(4)
      return { kind: 'time', value: BigInt(raw.readInt32BE(0)) }
    case TypeOid.timestamp:
    case TypeOid.timestamptz:
      need(8)
      return { kind: 'time', value: raw.readBigInt64BE(0) }
    case TypeOid.time:
      need(8)
      return { kind: 'time', value: raw.readBigInt64BE(0) }
    case TypeOid.timetz:
      need(12)
      return { kind: 'time', value: timeTzOrder(raw.readBigInt64BE(0), raw.readInt32BE(8)) }
    case TypeOid.interval:
      need(16)
      return { kind: 'time', value: intervalSpan(BigInt(raw.readInt32BE(12)), BigInt(raw.readInt32BE(8)), raw.readBigInt64BE(0)) }
    case TypeOid.uuid:
      need(16)
      return { kind: 'bytes', value: raw }
    case TypeOid.bytea:
      return { kind: 'bytes', value: raw }
    // "char" is not collatable: its byte.
    case TypeOid.char:
      return { kind: 'text', value: raw, collation: BYTE_ORDER }
    default:
      throw unsupported(oid, 'decode binary')
  }
}

/**
 * Reads a value of type `oid` from its text form: a shard's text-format column, or a constant or text
 * parameter of a HAVING condition. `raw` saves re-encoding strings that arrived as bytes.
 */
export function valueFromText(text: string, oid: number, raw?: Buffer): SqlValue {
  const invalid = () => new MergeError(`invalid input syntax for type ${typeName(oid)}: "${text.slice(0, 64)}"`, '22P02')
  switch (oid) {
    case TypeOid.int2:
    case TypeOid.int4:
    case TypeOid.int8:
    case TypeOid.oid: {
      if (!/^\s*[+-]?\d+\s*$/.test(text)) throw invalid()
      return { kind: 'int', value: BigInt(text.trim()) }
    }
    case TypeOid.float4:
    case TypeOid.float8: {
      if (!FLOAT_TEXT.test(text)) throw invalid()
      const t = text.trim()
      if (/nan/i.test(t)) return { kind: 'float', value: NaN }
      if (/inf/i.test(t)) return { kind: 'float', value: t.startsWith('-') ? -Infinity : Infinity }
      return { kind: 'float', value: Number(t) }
    }
    case TypeOid.numeric: {
      const v = parseNumeric(text)
      if (v === undefined) throw invalid()
      return { kind: 'numeric', value: v }
    }
    case TypeOid.bool: {
      const t = text.trim().toLowerCase()
      if (BOOL_TRUE.has(t)) return { kind: 'bool', value: true }
      if (BOOL_FALSE.has(t)) return { kind: 'bool', value: false }
      throw invalid()
    }
    case TypeOid.date: {
      const days = parseDateText(text)
      if (days === undefined) throw notIso(oid, text)
      return { kind: 'time', value: days }
    }
    case TypeOid.timestamp:
    case TypeOid.timestamptz: {
      const usecs = parseTimestampText(text, oid === TypeOid.timestamptz)
      if (usecs === undefined) throw notIso(oid, text)
      return { kind: 'time', value: usecs }
    }
    case TypeOid.time: {
      const usecs = parseTimeText(text)
      if (usecs === undefined) throw invalid()
      return { kind: 'time', value: usecs }
    }
    case TypeOid.timetz: {
      const order = parseTimeTzText(text)
      if (order === undefined) throw invalid()
      return { kind: 'time', value: order }
    }
    case TypeOid.interval: {
      const span = parseIntervalText(text)
      if (span === undefined) throw invalid()
      return { kind: 'time', value: span }
    }
    case TypeOid.uuid: {
      const hex = parseUuid(text)
      if (hex === undefined) throw invalid()
      return { kind: 'bytes', value: Buffer.from(hex, 'hex') }
    }
    case TypeOid.bytea: {
      if (!/^\\x(?:[0-9a-fA-F]{2})*$/.test(text)) throw unsupported(oid, 'read escape-format')
      return { kind: 'bytes', value: Buffer.from(text.slice(2), 'hex') }
    }
    case TypeOid.bpchar:
      return { kind: 'text', value: trimTrailingSpaces(raw ?? Buffer.from(text, 'utf8')), collation: BYTE_ORDER }
    case TypeOid.text:
    case TypeOid.varchar:
    case TypeOid.name:
    case TypeOid.char:
    case TypeOid.unknown:
      return { kind: 'text', value: raw ?? Buffer.from(text, 'utf8'), collation: BYTE_ORDER }
    case TypeOid.jsonb:
      return { kind: 'jsonb', value: parseJsonb(text), collation: BYTE_ORDER }
    default:
      throw unsupported(oid, 'compare')
  }
}

function notIso(oid: number, text: string): MergeError {
  return new MergeError(
    `cannot read ${typeName(oid)} value "${text.slice(0, 64)}" when merging results: the proxy needs DateStyle ISO` +
      (oid === TypeOid.timestamptz ? ' and an explicit UTC offset' : ''),
    '0A000',
  )
}

function trimTrailingSpaces(raw: Buffer): Buffer {
  let end = raw.length
  while (end > 0 && raw[end - 1] === 0x20) end--
  return end === raw.length ? raw : raw.subarray(0, end)
}

function asFloat(v: SqlValue): number | undefined {
  if (v.kind === 'float') return v.value
  if (v.kind === 'int') return Number(v.value)
  if (v.kind === 'numeric') return Number(numericToText(v.value))
  return undefined
}

/** Total order; integers, numerics and floats compare with each other by value. */
export function compareValues(a: SqlValue, b: SqlValue): number {
  if (a.kind === b.kind) {
    switch (a.kind) {
      case 'int':
      case 'time': {
        const y = b.value as bigint
        return a.value < y ? -1 : a.value > y ? 1 : 0
      }
      case 'numeric':
        return compareNumeric(a.value, b.value as NumericValue)
      case 'float':
        return compareFloats(a.value, b.value as number)
      case 'bytes':
        return Buffer.compare(a.value, b.value as Buffer)
      case 'text': {
        // A constant of a HAVING condition knows no collation: the column's orders.
        const other = b as typeof a
        return (a.collation !== BYTE_ORDER ? a.collation : other.collation).compare(a.value, other.value)
      }
      case 'bool':
        return Number(a.value) - Number(b.value as boolean)
      case 'jsonb': {
        const other = b as typeof a
        return compareJsonb(a.value, other.value, a.collation !== BYTE_ORDER ? a.collation : other.collation)
      }
    }
  }
  if (a.kind === 'float' || b.kind === 'float') {
    const x = asFloat(a)
    const y = asFloat(b)
    if (x !== undefined && y !== undefined) return compareFloats(x, y)
  }
  const x = a.kind === 'int' ? numericFromBigInt(a.value) : a.kind === 'numeric' ? a.value : undefined
  const y = b.kind === 'int' ? numericFromBigInt(b.value) : b.kind === 'numeric' ? b.value : undefined
  if (x !== undefined && y !== undefined) return compareNumeric(x, y)
  throw new MergeError(`cannot compare a ${a.kind} value with a ${b.kind} value`, '42883')
}

function compareFloats(x: number, y: number): number {
  if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : 1
  if (Number.isNaN(y)) return -1
  return x < y ? -1 : x > y ? 1 : 0
}

/** A string equal for values that are equal (GROUP BY and DISTINCT: NULLs are handled by the caller). */
export function equalityKey(v: SqlValue): string {
  switch (v.kind) {
    case 'int':
      return 'i' + v.value
    case 'numeric':
      return 'n' + numericEqualityKey(v.value)
    case 'float':
      return Number.isNaN(v.value) ? 'fNaN' : 'f' + (v.value === 0 ? '0' : String(v.value))
    case 'bytes':
    case 'text':
      return 'b' + v.value.toString('latin1')
    case 'bool':
      return v.value ? 't' : 'f'
    case 'time':
      return 'd' + v.value
    case 'jsonb':
      return 'j' + jsonbEqualityKey(v.value)
  }
}

/** Encodes a merged value as a column of type `oid` in `format`. */
export function encodeValue(v: SqlValue, oid: number, format: 0 | 1): Buffer {
  switch (oid) {
    case TypeOid.int2:
    case TypeOid.int4:
    case TypeOid.int8: {
      if (v.kind !== 'int') break
      const bits = oid === TypeOid.int8 ? 64n : oid === TypeOid.int4 ? 32n : 16n
      if (v.value < -(2n ** (bits - 1n)) || v.value >= 2n ** (bits - 1n)) {
        // Postgres' own words for the merged total it would have computed.
        throw new MergeError(`${oid === TypeOid.int8 ? 'bigint' : oid === TypeOid.int4 ? 'integer' : 'smallint'} out of range`, '22003')
      }
      if (format === 0) return Buffer.from(v.value.toString())
      const out = Buffer.alloc(oid === TypeOid.int8 ? 8 : oid === TypeOid.int4 ? 4 : 2)
      if (oid === TypeOid.int8) out.writeBigInt64BE(v.value)
      else if (oid === TypeOid.int4) out.writeInt32BE(Number(v.value))
      else out.writeInt16BE(Number(v.value))
      return out
    }
    case TypeOid.numeric: {
      const n = v.kind === 'int' ? numericFromBigInt(v.value) : v.kind === 'numeric' ? v.value : undefined
      if (n === undefined) break
      return format === 0 ? Buffer.from(numericToText(n)) : numericToBinary(n)
    }
    case TypeOid.float4:
    case TypeOid.float8: {
      if (v.kind !== 'float') break
      const single = oid === TypeOid.float4
      if (format === 0) return Buffer.from(single ? formatFloat4(v.value) : formatFloat8(v.value))
      const out = Buffer.alloc(single ? 4 : 8)
      if (single) out.writeFloatBE(v.value)
      else out.writeDoubleBE(v.value)
      return out
    }
    case TypeOid.bool:
      if (v.kind !== 'bool') break
      return format === 0 ? Buffer.from(v.value ? 't' : 'f') : Buffer.from([v.value ? 1 : 0])
  }
  throw unsupported(oid, 'encode merged')
}
