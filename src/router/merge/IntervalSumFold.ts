// sum(interval) across shards: Postgres adds intervals field by field (months, days, microseconds, none carried
// into another), so the shards' sums add up the same way; the total is printed in the IntervalStyle the shards
// printed theirs in (IntervalFormat), or sent in binary.
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { formatInterval } from './IntervalFormat.js'
import { parseInterval, type IntervalParts, type IntervalStyle } from './IntervalText.js'
import { MergeError } from './MergeError.js'

type Row = (Buffer | null)[]

const INT32 = 2n ** 31n
const INT64 = 2n ** 63n

export class IntervalSumFold implements AggregateFold {
  private sum: IntervalParts | undefined
  private style: IntervalStyle = 'postgres'
  /** Whether the style is known from a value that shows it (a time of 10 hours or more alone looks alike in two). */
  private styleShown = false

  constructor(
    private readonly col: ColumnInfo,
    private readonly index: number,
  ) {}

  add(row: Row): void {
    const raw = row[this.index]
    if (raw === null || raw === undefined) return
    const parts = this.col.format === 1 ? binaryParts(raw) : this.textParts(raw.toString('utf8'))
    const sum = this.sum
    this.sum = sum === undefined ? parts : { months: sum.months + parts.months, days: sum.days + parts.days, usecs: sum.usecs + parts.usecs }
  }

  result(): Buffer | null {
    const sum = this.sum
    if (sum === undefined) return null
    if (!within(sum.months, INT32) || !within(sum.days, INT32) || !within(sum.usecs, INT64)) throw new MergeError('interval out of range', '22008')
    if (this.col.format === 0) return Buffer.from(formatInterval(sum, this.style))
    const out = Buffer.alloc(16)
    out.writeBigInt64BE(sum.usecs, 0)
    out.writeInt32BE(Number(sum.days), 8)
    out.writeInt32BE(Number(sum.months), 12)
    return out
  }

  private textParts(text: string): IntervalParts {
    const parts = parseInterval(text)
    if (parts === undefined) throw new MergeError(`invalid input syntax for type interval: "${text.slice(0, 64)}"`, '22P02')
    const shown = !/^-?[1-9]\d+:\d{2}:\d{2}(\.\d+)?$/.test(text.trim())
    if (!this.styleShown) {
      this.style = parts.style
      this.styleShown = shown
    }
    return parts
  }
}

function binaryParts(raw: Buffer): IntervalParts {
  if (raw.length !== 16) throw new MergeError('invalid binary value of interval from a shard', '22P03')
  return { usecs: raw.readBigInt64BE(0), days: BigInt(raw.readInt32BE(8)), months: BigInt(raw.readInt32BE(12)) }
}

function within(n: bigint, limit: bigint): boolean {
  return n >= -limit && n < limit
}
