// string_agg(x, d) over the shards' partial results: each shard runs array_agg(x) in its place (a string cannot be
// cut back into its values, which an ORDER BY x must merge), and the merge joins the non-NULL elements of the
// merged array (ArrayAggFold) with the delimiter: text as it is (bpchar without its trailing spaces, as its cast to
// text drops them), bytea from its hex form. NULL when no value was not NULL.
import type { ElementOrder } from '../StatementPlan.js'
import { ArrayAggFold } from './ArrayAggFold.js'
import { unquoted } from './ArrayEncoding.js'
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { unsupported } from './SqlValue.js'
import { TypeOid } from './TypeOid.js'

type Row = (Buffer | null)[]

const TEXT_ARRAY = 1009
const VARCHAR_ARRAY = 1015
const BPCHAR_ARRAY = 1014
const BYTEA_ARRAY = 1001

/** The type string_agg answers for the array type the shards' array_agg gave: bytea for bytea, else text. */
export function stringAggResultType(arrayOid: number): number {
  return arrayOid === BYTEA_ARRAY ? TypeOid.bytea : TypeOid.text
}

export class StringAggFold implements AggregateFold {
  private readonly array: ArrayAggFold

  constructor(
    private readonly col: ColumnInfo,
    index: number,
    order: ElementOrder | undefined,
    /** The delimiter as a value of the result's type (text's UTF-8, bytea's bytes); null for NULL (none). */
    private readonly delimiter: Buffer | null,
  ) {
    if (![TEXT_ARRAY, VARCHAR_ARRAY, BPCHAR_ARRAY, BYTEA_ARRAY].includes(col.typeOid)) throw unsupported(col.typeOid, 'join')
    this.array = new ArrayAggFold(col, index, order)
  }

  add(row: Row): void {
    this.array.add(row)
  }

  result(): Buffer | null {
    const values = (this.array.merged() ?? []).flatMap((e) => (e.raw === null ? [] : [this.value(e.raw)]))
    if (values.length === 0) return null
    const parts = values.flatMap((v, i) => (i > 0 && this.delimiter !== null ? [this.delimiter, v] : [v]))
    const joined = Buffer.concat(parts)
    // bytea in text form: its hex.
    return this.col.typeOid === BYTEA_ARRAY && this.col.format === 0 ? Buffer.from(`\\x${joined.toString('hex')}`) : joined
  }

  /** An element's value: text's bytes, bytea's bytes. */
  private value(raw: Buffer): Buffer {
    const text = this.col.format === 0 ? unquoted(raw) : raw
    if (this.col.typeOid === BYTEA_ARRAY) return this.col.format === 0 ? Buffer.from(text.toString('latin1').slice(2), 'hex') : text
    if (this.col.typeOid !== BPCHAR_ARRAY) return text
    let end = text.length
    while (end > 0 && text[end - 1] === 0x20) end--
    return text.subarray(0, end)
  }
}
