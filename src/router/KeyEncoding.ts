// Canonical form of a sharding key value: the string the ring hashes. The same value must give the same
// string however it arrives (literal, text or binary parameter, any integer width, any uuid spelling).
// The key TYPE is deliberately not part of the hashed string, so 42 as bigint and 42 as integer (say
// accounts.id and orders.account_id) land on the same shard and co-located joins stay on one shard.
// This encoding is an on-disk contract (ring version 1): changing it moves keys.
import { numericFromBinary, numericToBigInt, parseNumeric } from './merge/NumericValue.js'
import { isIntegerType, isStringType, TypeOid, typeName } from './merge/TypeOid.js'

export type KeyType = 'bigint' | 'integer' | 'text' | 'uuid'

/** A key value that cannot be encoded for its key type; `code` is the SQLSTATE for the client. */
export class KeyEncodingError extends Error {
  readonly code: string
  constructor(message: string, code = '22P02') {
    super(message)
    this.name = 'KeyEncodingError'
    this.code = code
  }
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
// Already canonical and certainly within int64 (at most 15 digits): skips BigInt on the hot path.
const SHORT_CANONICAL_INT = /^(?:0|-?[1-9]\d{0,14})$/
// What int8in accepts in Postgres 15: optional spaces, a sign, decimal digits, optional spaces.
const INT_TEXT = /^[ \t\n\r\v\f]*([+-]?)(\d+)[ \t\n\r\v\f]*$/
const HEX = /^[0-9a-fA-F]{2}$/
// The usual spelling, parsed without the general loop (the hot path for uuid keys).
const DASHED_UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/**
 * Canonical form: ints → decimal of the int64 (range-checked; '042', ' 42', '+42', 42::int2 all → '42'),
 * uuid → 32 lower-case hex (any case, with/without dashes/braces accepted as Postgres does), text → as is.
 * `format` 0 is text, 1 binary; `typeOid` is the parameter's type from Parse (0 = unspecified).
 */
export function canonicalKey(type: KeyType, value: string | Buffer, format: 0 | 1, typeOid: number): string {
  switch (type) {
    case 'bigint':
    case 'integer':
      return canonicalInteger(type, value, format, typeOid)
    case 'uuid':
      return canonicalUuid(value, format, typeOid)
    case 'text':
      return canonicalText(value, format, typeOid)
  }
}

/** Parses an integer as int8in does; undefined if it is not one or is outside int64. */
export function parseInt64(text: string): bigint | undefined {
  const n = integerText(text)
  return n === undefined || n < INT64_MIN || n > INT64_MAX ? undefined : n
}

function integerText(text: string): bigint | undefined {
  const m = INT_TEXT.exec(text)
  return m ? BigInt(m[1] === '-' ? '-' + m[2] : m[2]) : undefined
}

/** Parses a uuid as uuid_in does: hex pairs, an optional '-' after every 4 hex digits, optional braces. */
export function parseUuid(text: string): string | undefined {
  if (text.length === 36 && DASHED_UUID.test(text)) {
    return (text.slice(0, 8) + text.slice(9, 13) + text.slice(14, 18) + text.slice(19, 23) + text.slice(24)).toLowerCase()
  }
  let i = 0
  const braces = text[0] === '{'
  if (braces) i++
  let hex = ''
  for (let byte = 0; byte < 16; byte++) {
    const pair = text.slice(i, i + 2)
    if (!HEX.test(pair)) return undefined
    hex += pair
    i += 2
    if (text[i] === '-' && byte % 2 === 1 && byte < 15) i++
  }
  if (braces) {
    if (text[i] !== '}') return undefined
    i++
  }
  return i === text.length ? hex.toLowerCase() : undefined
}

function show(value: string | Buffer): string {
  const text = typeof value === 'string' ? value : value.toString('utf8')
  return text.length > 64 ? text.slice(0, 64) + '…' : text
}

function asText(value: string | Buffer): string {
  return typeof value === 'string' ? value : value.toString('utf8')
}

function canonicalInteger(type: KeyType, value: string | Buffer, format: 0 | 1, typeOid: number): string {
  let n: bigint | undefined
  if (format === 1 && typeof value !== 'string' && !isStringType(typeOid)) {
    n = binaryInteger(type, value, typeOid)
  } else {
    const text = asText(value)
    if (SHORT_CANONICAL_INT.test(text)) return text
    n = typeOid === TypeOid.numeric ? integralNumeric(text) : integerText(text)
    if (n === undefined) {
      throw new KeyEncodingError(`invalid input syntax for sharding key of type ${type}: "${show(value)}"`)
    }
  }
  if (n < INT64_MIN || n > INT64_MAX) {
    throw new KeyEncodingError(`value "${n}" is out of range for sharding key of type ${type}`, '22003')
  }
  return n.toString()
}

function integralNumeric(text: string): bigint | undefined {
  const v = parseNumeric(text)
  return v === undefined ? undefined : numericToBigInt(v)
}

function binaryInteger(type: KeyType, value: Buffer, typeOid: number): bigint {
  if (typeOid === TypeOid.numeric) {
    let n: bigint | undefined
    try {
      n = numericToBigInt(numericFromBinary(value))
    } catch {
      n = undefined
    }
    if (n === undefined) throw new KeyEncodingError(`binary numeric parameter is not an integer: cannot be a ${type} sharding key`)
    return n
  }
  // An unspecified type means the server infers the column's type, so the width tells int2/int4/int8.
  if (typeOid !== 0 && !isIntegerType(typeOid)) {
    throw new KeyEncodingError(`a binary ${typeName(typeOid)} parameter cannot be a ${type} sharding key`, '42804')
  }
  switch (value.length) {
    case 2:
      return BigInt(value.readInt16BE(0))
    case 4:
      return BigInt(value.readInt32BE(0))
    case 8:
      return value.readBigInt64BE(0)
    default:
      throw new KeyEncodingError(`invalid binary integer of ${value.length} bytes for a ${type} sharding key`, '22P03')
  }
}

function canonicalUuid(value: string | Buffer, format: 0 | 1, typeOid: number): string {
  if (format === 1 && typeof value !== 'string' && !isStringType(typeOid)) {
    if (typeOid !== 0 && typeOid !== TypeOid.uuid) {
      throw new KeyEncodingError(`a binary ${typeName(typeOid)} parameter cannot be a uuid sharding key`, '42804')
    }
    if (value.length !== 16) throw new KeyEncodingError(`invalid binary uuid of ${value.length} bytes`, '22P03')
    return value.toString('hex')
  }
  const uuid = parseUuid(asText(value))
  if (uuid === undefined) throw new KeyEncodingError(`invalid input syntax for type uuid: "${show(value)}"`)
  return uuid
}

function canonicalText(value: string | Buffer, format: 0 | 1, typeOid: number): string {
  if (format === 1 && typeof value !== 'string' && typeOid !== 0 && !isStringType(typeOid)) {
    if (!isIntegerType(typeOid)) {
      throw new KeyEncodingError(`a binary ${typeName(typeOid)} parameter cannot be a text sharding key`, '42804')
    }
    return binaryInteger('text', value, typeOid).toString()
  }
  return asText(value)
}
