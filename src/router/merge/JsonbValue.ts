// jsonb values read from a shard's output, compared and grouped as Postgres's jsonb btree operators do
// (compareJsonbContainers): by kind null < string < number < boolean < array < object, arrays by length then
// element by element, objects by their number of pairs then key, value, key … in stored order (the output's
// order); a top-level scalar is a one-element array that sorts below a real one, so an empty top-level array
// sorts below every scalar. Strings, keys too, compare by the database's collation, as text does in the merge;
// numbers by value (1.0 = 1).
import { MergeError } from './MergeError.js'
import { compareNumeric, numericEqualityKey, parseNumeric, type NumericValue } from './NumericValue.js'
import type { TextCollation } from './TextCollation.js'

export type JsonbNode =
  | { kind: 'null' }
  | { kind: 'string'; value: Buffer }
  | { kind: 'number'; value: NumericValue }
  | { kind: 'bool'; value: boolean }
  | { kind: 'array'; items: JsonbNode[] }
  | { kind: 'object'; pairs: [Buffer, JsonbNode][] }

/** Postgres's order of kinds where two values' kinds differ (its JsonbValue type numbers). */
const KIND_RANK: Record<JsonbNode['kind'], number> = { null: 0, string: 1, number: 2, bool: 3, array: 16, object: 17 }

/** Reads jsonb's text output (binary format: its version byte, then that text). */
export function parseJsonb(text: string): JsonbNode {
  const reader = new JsonbReader(text)
  const node = reader.value()
  reader.end()
  return node
}

/** Postgres's jsonb comparison of two top-level values, strings by `collation`. */
export function compareJsonb(a: JsonbNode, b: JsonbNode, collation: TextCollation): number {
  if (a.kind === 'object' || b.kind === 'object') return a.kind === b.kind ? compareNodes(a, b, collation) : a.kind === 'object' ? 1 : -1
  // Both arrays, a scalar being a one-element "raw scalar" array: length first, then raw scalar below array.
  const lengthA = a.kind === 'array' ? a.items.length : 1
  const lengthB = b.kind === 'array' ? b.items.length : 1
  if (lengthA !== lengthB) return lengthA > lengthB ? 1 : -1
  if ((a.kind === 'array') !== (b.kind === 'array')) return a.kind === 'array' ? 1 : -1
  return compareNodes(a, b, collation)
}

function compareNodes(a: JsonbNode, b: JsonbNode, collation: TextCollation): number {
  if (a.kind !== b.kind) return KIND_RANK[a.kind] > KIND_RANK[b.kind] ? 1 : -1
  switch (a.kind) {
    case 'null':
      return 0
    case 'string':
      return collation.compare(a.value, (b as typeof a).value)
    case 'number':
      return compareNumeric(a.value, (b as typeof a).value)
    case 'bool':
      return Number(a.value) - Number((b as typeof a).value)
    case 'array': {
      const other = (b as typeof a).items
      if (a.items.length !== other.length) return a.items.length > other.length ? 1 : -1
      for (let i = 0; i < a.items.length; i++) {
        const c = compareNodes(a.items[i]!, other[i]!, collation)
        if (c !== 0) return c
      }
      return 0
    }
    case 'object': {
      const other = (b as typeof a).pairs
      if (a.pairs.length !== other.length) return a.pairs.length > other.length ? 1 : -1
      for (let i = 0; i < a.pairs.length; i++) {
        const key = collation.compare(a.pairs[i]![0], other[i]![0])
        if (key !== 0) return key
        const value = compareNodes(a.pairs[i]![1], other[i]![1], collation)
        if (value !== 0) return value
      }
      return 0
    }
  }
}

/** A string equal for jsonb values that compare equal (GROUP BY, DISTINCT). */
export function jsonbEqualityKey(node: JsonbNode, top = true): string {
  switch (node.kind) {
    case 'null':
      return 'n'
    case 'string':
      return `s${node.value.length}:${node.value.toString('latin1')}`
    case 'number':
      return `d${numericEqualityKey(node.value)};`
    case 'bool':
      return node.value ? 't' : 'f'
    case 'array':
      return `${top ? 'A' : ''}[${node.items.length}:${node.items.map((n) => jsonbEqualityKey(n, false)).join('')}]`
    case 'object':
      return `{${node.pairs.length}:${node.pairs.map(([k, v]) => `${k.length}:${k.toString('latin1')}${jsonbEqualityKey(v, false)}`).join('')}}`
  }
}

const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }

/** A reader of one JSON text, numbers kept exact. */
class JsonbReader {
  private at = 0

  constructor(private readonly text: string) {}

  value(): JsonbNode {
    this.space()
    const c = this.text[this.at]
    if (c === '{') return this.object()
    if (c === '[') return this.array()
    if (c === '"') return { kind: 'string', value: Buffer.from(this.string(), 'utf8') }
    if (this.word('null')) return { kind: 'null' }
    if (this.word('true')) return { kind: 'bool', value: true }
    if (this.word('false')) return { kind: 'bool', value: false }
    NUMBER.lastIndex = this.at
    const number = NUMBER.exec(this.text)
    const value = number === null ? undefined : parseNumeric(number[0])
    if (number === null || value === undefined) throw this.invalid()
    this.at += number[0].length
    return { kind: 'number', value }
  }

  end(): void {
    this.space()
    if (this.at !== this.text.length) throw this.invalid()
  }

  private object(): JsonbNode {
    this.at++
    const pairs: [Buffer, JsonbNode][] = []
    this.space()
    if (this.text[this.at] === '}') {
      this.at++
      return { kind: 'object', pairs }
    }
    for (;;) {
      this.space()
      if (this.text[this.at] !== '"') throw this.invalid()
      const key = Buffer.from(this.string(), 'utf8')
      this.expect(':')
      pairs.push([key, this.value()])
      if (this.next(',', '}') === '}') return { kind: 'object', pairs }
    }
  }

  private array(): JsonbNode {
    this.at++
    const items: JsonbNode[] = []
    this.space()
    if (this.text[this.at] === ']') {
      this.at++
      return { kind: 'array', items }
    }
    for (;;) {
      items.push(this.value())
      if (this.next(',', ']') === ']') return { kind: 'array', items }
    }
  }

  private string(): string {
    let out = ''
    let from = ++this.at
    for (;;) {
      const c = this.text[this.at]
      if (c === undefined) throw this.invalid()
      if (c === '"') {
        out += this.text.slice(from, this.at++)
        return out
      }
      if (c !== '\\') {
        this.at++
        continue
      }
      out += this.text.slice(from, this.at)
      const e = this.text[this.at + 1]
      if (e === 'u') {
        const hex = this.text.slice(this.at + 2, this.at + 6)
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw this.invalid()
        out += String.fromCharCode(parseInt(hex, 16))
        this.at += 6
      } else {
        const plain = e === undefined ? undefined : ESCAPES[e]
        if (plain === undefined) throw this.invalid()
        out += plain
        this.at += 2
      }
      from = this.at
    }
  }

  private word(w: string): boolean {
    if (!this.text.startsWith(w, this.at)) return false
    this.at += w.length
    return true
  }

  private expect(c: string): void {
    this.space()
    if (this.text[this.at] !== c) throw this.invalid()
    this.at++
  }

  private next(more: string, close: string): string {
    this.space()
    const c = this.text[this.at]
    if (c !== more && c !== close) throw this.invalid()
    this.at++
    return c
  }

  private space(): void {
    while (this.at < this.text.length && ' \t\n\r'.includes(this.text[this.at]!)) this.at++
  }

  private invalid(): MergeError {
    return new MergeError(`invalid input syntax for type jsonb from a shard near position ${this.at}`, '22P02')
  }
}
