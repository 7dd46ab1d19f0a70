import type { BoundParam } from './Route.js'

/**
 * The elements of an array value as the router needs them (each a value of its own, text or binary with its
 * type), from Postgres's text form (`{1,2}`, `{"a b",NULL}`, `[0:1]={…}`, nested braces flattened) or its binary
 * form (what pgx sends). Null when it is not an array pgshard can read: the caller then pins nothing.
 */
export function arrayElements(bound: BoundParam): BoundParam[] | null {
  if (bound.value === null) return []
  if (bound.format === 1) return typeof bound.value === 'string' ? null : binaryElements(bound.value)
  return textElements(typeof bound.value === 'string' ? bound.value : bound.value.toString('utf8'))
}

function textElements(text: string): BoundParam[] | null {
  let i = text.indexOf('{')
  // Dimension decoration (`[1:3]=`) may come first; anything else before the brace is not an array.
  if (i < 0 || (i > 0 && !/^\s*(\[-?\d+:-?\d+\])+\s*=\s*$/.test(text.slice(0, i)))) return null
  const out: BoundParam[] = []
  while (i < text.length) {
    const c = text[i]
    if (c === '{' || c === '}' || c === ',' || c === ' ' || c === '\t' || c === '\n') {
      i++
      continue
    }
    let value = ''
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) value += text[i] === '\\' ? text[++i] : text[i]
      if (i >= text.length) return null
      i++
      out.push({ value, format: 0, typeOid: 0 })
      continue
    }
    while (i < text.length && !'{},'.includes(text[i]!)) {
      if (text[i] === '\\') i++
      value += text[i++] ?? ''
    }
    value = value.trim()
    out.push({ value: value.toUpperCase() === 'NULL' ? null : value, format: 0, typeOid: 0 })
  }
  return out
}

function binaryElements(buf: Buffer): BoundParam[] | null {
  if (buf.length < 12) return null
  const dims = buf.readInt32BE(0)
  const elementOid = buf.readUInt32BE(8)
  if (dims < 0 || dims > 6 || buf.length < 12 + dims * 8) return null
  let count = dims === 0 ? 0 : 1
  for (let d = 0; d < dims; d++) count *= buf.readInt32BE(12 + d * 8)
  let pos = 12 + dims * 8
  const out: BoundParam[] = []
  for (let n = 0; n < count; n++) {
    if (pos + 4 > buf.length) return null
    const len = buf.readInt32BE(pos)
    pos += 4
    if (len < 0) {
      out.push({ value: null, format: 1, typeOid: elementOid })
      continue
    }
    if (pos + len > buf.length) return null
    out.push({ value: buf.subarray(pos, pos + len), format: 1, typeOid: elementOid })
    pos += len
  }
  return out
}
