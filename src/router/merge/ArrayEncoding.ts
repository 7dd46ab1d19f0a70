// Arrays in Postgres's text form: split into their top-level items as written, an item's quotes taken off, and
// one-dimensional arrays the merge makes of values it holds (percentile_cont(ARRAY[…]), percentile_disc(ARRAY[…]))
// written with each element quoted as array_out quotes it, or in the binary form (header, one dimension with lower
// bound 1, elements); and the float8 arrays of fractions the shards answer.
import { MergeError } from './MergeError.js'
import { decodeValue } from './SqlValue.js'
import { TypeOid } from './TypeOid.js'

/** Bytes after which array_out puts an element in double quotes: `"`, `\`, braces, the comma, white space. */
const QUOTED = new Set([0x22, 0x5c, 0x7b, 0x7d, 0x2c, 0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d])

/** The array of `elements` (each in its type's text or binary form as `format` says; null for NULL). */
export function encodeArray(elements: readonly (Buffer | null)[], elementOid: number, format: 0 | 1): Buffer {
  if (format === 0) return Buffer.concat([Buffer.from('{'), ...elements.flatMap((e, i) => [...(i > 0 ? [Buffer.from(',')] : []), e === null ? Buffer.from('NULL') : quoteElement(e)]), Buffer.from('}')])
  if (elements.length === 0) {
    const empty = Buffer.alloc(12)
    empty.writeUInt32BE(elementOid, 8)
    return empty
  }
  const header = Buffer.alloc(20)
  header.writeInt32BE(1, 0)
  header.writeInt32BE(elements.some((e) => e === null) ? 1 : 0, 4)
  header.writeUInt32BE(elementOid, 8)
  header.writeInt32BE(elements.length, 12)
  header.writeInt32BE(1, 16)
  const parts: Buffer[] = [header]
  for (const e of elements) {
    const len = Buffer.alloc(4)
    len.writeInt32BE(e === null ? -1 : e.length)
    parts.push(len)
    if (e !== null) parts.push(e)
  }
  return Buffer.concat(parts)
}

function quoteElement(text: Buffer): Buffer {
  const quote = text.length === 0 || text.some((c) => QUOTED.has(c)) || (text.length === 4 && text.toString('latin1').toUpperCase() === 'NULL')
  if (!quote) return text
  const out: number[] = [0x22]
  for (const c of text) {
    if (c === 0x22 || c === 0x5c) out.push(0x5c)
    out.push(c)
  }
  out.push(0x22)
  return Buffer.from(out)
}

/** The top-level items of an array's text form `{…}`, as written (a sub-array `{…}` is one item); null for NULL. */
export function textElements(buf: Buffer): (Buffer | null)[] {
  const bad = () => new MergeError('invalid array text from a shard', '22P02')
  const start = buf.indexOf(0x7b)
  if (start < 0 || buf[buf.length - 1] !== 0x7d) throw bad()
  const out: (Buffer | null)[] = []
  let depth = 0
  let quoted = false
  let from = start + 1
  for (let i = start + 1; i < buf.length - 1; i++) {
    const c = buf[i]
    if (quoted) {
      if (c === 0x5c) i++
      else if (c === 0x22) quoted = false
    } else if (c === 0x22) quoted = true
    else if (c === 0x7b) depth++
    else if (c === 0x7d) depth--
    else if (c === 0x2c && depth === 0) {
      out.push(item(buf.subarray(from, i)))
      from = i + 1
    }
  }
  if (from < buf.length - 1) out.push(item(buf.subarray(from, buf.length - 1)))
  return out
}

function item(raw: Buffer): Buffer | null {
  return raw.length === 4 && raw.toString('latin1').toUpperCase() === 'NULL' ? null : raw
}

/** An element's text without its quotes and backslashes. */
export function unquoted(raw: Buffer): Buffer {
  if (raw[0] !== 0x22) return raw
  const out: number[] = []
  for (let i = 1; i < raw.length - 1; i++) out.push(raw[i] === 0x5c ? raw[++i]! : raw[i]!)
  return Buffer.from(out)
}

/** The elements of a one-dimensional float8[] (null for NULL); a shard's text or binary form. */
export function decodeFloat8Array(raw: Buffer, format: 0 | 1): (number | null)[] {
  const many = () => new MergeError('an array of fractions of more than one dimension across shards', '0A000', 'ask for each fraction in a call of its own')
  const element = (bytes: Buffer): number => {
    const v = decodeValue(bytes, TypeOid.float8, format)
    return v.kind === 'float' ? v.value : NaN
  }
  if (format === 0) {
    return textElements(raw).map((e) => {
      if (e?.[0] === 0x7b) throw many()
      return e === null ? null : element(unquoted(e))
    })
  }
  const bad = () => new MergeError('invalid binary array from a shard', '22P03')
  if (raw.length < 12) throw bad()
  const dims = raw.readInt32BE(0)
  if (dims === 0) return []
  if (dims !== 1) throw many()
  if (raw.length < 20) throw bad()
  const out: (number | null)[] = []
  let pos = 20
  for (let n = raw.readInt32BE(12); n > 0; n--) {
    if (pos + 4 > raw.length) throw bad()
    const len = raw.readInt32BE(pos)
    pos += 4
    if (len > 0 && pos + len > raw.length) throw bad()
    out.push(len < 0 ? null : element(raw.subarray(pos, pos + len)))
    pos += Math.max(len, 0)
  }
  return out
}
