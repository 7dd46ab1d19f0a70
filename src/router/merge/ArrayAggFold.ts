// array_agg(x) over the shards' partial arrays (a group's array of each shard): without ORDER BY, Postgres leaves
// the order of the elements to the plan, so the shards' arrays put one after another are an answer; with
// ORDER BY x (the aggregated value itself), or DISTINCT, each shard's array is sorted and the merge sorts their
// elements again (keeping one of equal ones for DISTINCT).
// Arrays come in Postgres's text form (`{a,"b c",NULL}`, sub-arrays `{{1,2},{3,4}}`) or its binary form (header,
// dimensions, elements): elements are moved as written, never re-encoded.
import type { ElementOrder } from '../StatementPlan.js'
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { textElements, unquoted } from './ArrayEncoding.js'
import { MergeError } from './MergeError.js'
import { compareRowKeys } from './RowOrder.js'
import { canOrder, decodeValue, unsupported, type SqlValue } from './SqlValue.js'
import { TypeOid } from './TypeOid.js'

type Row = (Buffer | null)[]

/** The element type of the built-in array types whose elements the merge can order. */
const ELEMENT_OF = new Map<number, number>([
  [1000, TypeOid.bool], [1001, TypeOid.bytea], [1003, TypeOid.name], [1005, TypeOid.int2], [1007, TypeOid.int4],
  [1009, TypeOid.text], [1014, TypeOid.bpchar], [1015, TypeOid.varchar], [1016, TypeOid.int8], [1021, TypeOid.float4],
  [1022, TypeOid.float8], [1028, TypeOid.oid], [1115, TypeOid.timestamp], [1182, TypeOid.date], [1185, TypeOid.timestamptz],
  [1231, TypeOid.numeric], [2951, TypeOid.uuid], [1183, TypeOid.time], [1270, TypeOid.timetz], [1187, TypeOid.interval],
])
/** box[] separates its elements with `;`: its text form is not split here. */
const BOX_ARRAY = 1020

/** One element as the array held it: its text (quoted or not) or its binary bytes; null for NULL. */
export interface Element {
  raw: Buffer | null
  /** Decoded for ordering (ordered merges only). */
  key?: SqlValue | null
}

/** Binary arrays: the header fields an array_agg result must agree on across shards. */
interface BinaryShape {
  elementOid: number
  /** Sizes of the dimensions after the first (sub-arrays of array_agg over arrays). */
  inner: number[]
}

export class ArrayAggFold implements AggregateFold {
  private readonly elements: Element[][] = []
  private shape: BinaryShape | undefined
  private readonly elementOid: number | undefined

  constructor(
    private readonly col: ColumnInfo,
    private readonly index: number,
    private readonly order: ElementOrder | undefined,
  ) {
    if (col.format === 0 && col.typeOid === BOX_ARRAY) throw unsupported(col.typeOid, 'put together arrays of')
    this.elementOid = ELEMENT_OF.get(col.typeOid)
    if (order !== undefined && (this.elementOid === undefined || !canOrder(this.elementOid))) throw unsupported(col.typeOid, 'order the elements of')
  }

  add(row: Row): void {
    const raw = row[this.index]
    if (raw === null || raw === undefined) return
    const elements = this.col.format === 1 ? this.binaryElements(raw) : textElements(raw).map((e): Element => ({ raw: e }))
    if (this.order !== undefined) {
      for (const e of elements) {
        if (e.raw !== null && this.col.format === 0 && e.raw[0] === 0x7b) throw unsupported(this.col.typeOid, 'order the sub-arrays of')
        e.key = e.raw === null ? null : decodeValue(this.col.format === 0 ? unquoted(e.raw) : e.raw, this.elementOid!, this.col.format, this.col.collation)
      }
    }
    this.elements.push(elements)
  }

  result(): Buffer | null {
    const all = this.merged()
    if (all === null) return null
    return this.col.format === 1 ? this.binaryArray(all) : textArray(all)
  }

  /**
   * The elements of the merged array, in its order, each as its array held it (text: quoted as written, see
   * `unquoted`); null over no rows.
   */
  merged(): Element[] | null {
    if (this.elements.length === 0) return null
    const all = this.elements.flat()
    if (this.order === undefined) return all
    const keys = [{ column: 0, ...this.order }]
    // Stable: peers keep the shards' order.
    const sorted = all.map((e, i) => ({ e, i })).sort((a, b) => compareRowKeys(keys, [a.e.key!], [b.e.key!]) || a.i - b.i).map((x) => x.e)
    // DISTINCT: one of equal values (each shard kept one of its own; another shard may hold the same).
    return this.order.distinct ? sorted.filter((e, i) => i === 0 || compareRowKeys(keys, [sorted[i - 1]!.key!], [e.key!]) !== 0) : sorted
  }

  private binaryElements(buf: Buffer): Element[] {
    const bad = () => new MergeError(`invalid binary array from a shard in column ${this.index + 1}`, '22P03')
    if (buf.length < 12) throw bad()
    const dims = buf.readInt32BE(0)
    if (dims === 0) return []
    if (dims < 1 || dims > 6 || buf.length < 12 + dims * 8) throw bad()
    const shape: BinaryShape = { elementOid: buf.readUInt32BE(8), inner: [] }
    let count = buf.readInt32BE(12)
    for (let d = 1; d < dims; d++) {
      shape.inner.push(buf.readInt32BE(12 + d * 8))
      count *= shape.inner[d - 1]!
    }
    if (this.shape === undefined) this.shape = shape
    else if (this.shape.elementOid !== shape.elementOid || this.shape.inner.join() !== shape.inner.join()) {
      throw new MergeError('cannot accumulate arrays of different dimensionality', '2202E')
    }
    const out: Element[] = []
    let pos = 12 + dims * 8
    for (let n = 0; n < count; n++) {
      if (pos + 4 > buf.length) throw bad()
      const len = buf.readInt32BE(pos)
      pos += 4
      if (len < 0) {
        out.push({ raw: null })
        continue
      }
      if (pos + len > buf.length) throw bad()
      out.push({ raw: buf.subarray(pos, pos + len) })
      pos += len
    }
    return out
  }

  private binaryArray(all: Element[]): Buffer {
    const shape = this.shape
    // Only arrays without elements came (array_agg makes none; a FILTER could): an empty array.
    if (shape === undefined) return Buffer.alloc(12)
    const inner = shape.inner.reduce((a, b) => a * b, 1)
    const dims = 1 + shape.inner.length
    const header = Buffer.alloc(12 + dims * 8)
    header.writeInt32BE(dims, 0)
    header.writeInt32BE(all.some((e) => e.raw === null) ? 1 : 0, 4)
    header.writeUInt32BE(shape.elementOid, 8)
    header.writeInt32BE(all.length / inner, 12)
    header.writeInt32BE(1, 16)
    shape.inner.forEach((size, d) => {
      header.writeInt32BE(size, 20 + d * 8)
      header.writeInt32BE(1, 24 + d * 8)
    })
    const parts: Buffer[] = [header]
    for (const e of all) {
      const len = Buffer.alloc(4)
      len.writeInt32BE(e.raw === null ? -1 : e.raw.length)
      parts.push(len)
      if (e.raw !== null) parts.push(e.raw)
    }
    return Buffer.concat(parts)
  }
}

function textArray(all: Element[]): Buffer {
  return Buffer.concat([Buffer.from('{'), ...all.flatMap((e, i) => [...(i > 0 ? [Buffer.from(',')] : []), e.raw ?? Buffer.from('NULL')]), Buffer.from('}')])
}
