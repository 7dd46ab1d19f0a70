// sum(interval) and avg(interval) across shards: Postgres adds intervals field by field (months, days,
// microseconds, none carried into another), so the shards' sums add up the same way; avg divides that total by the
// count as Postgres 15's interval_div does (fractions of a month cascade into days as 30 days, of a day into
// microseconds; interval_mul the same, for percentile_cont's interpolation). The answer is printed in the session's IntervalStyle (the shards' when it is not known), or sent
// in binary.
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { formatInterval } from './IntervalFormat.js'
import { parseInterval, type IntervalParts, type IntervalStyle } from './IntervalText.js'
import { MergeError } from './MergeError.js'
import { decodeValue } from './SqlValue.js'

type Row = (Buffer | null)[]

const INT32 = 2n ** 31n
const INT64 = 2n ** 63n
const SECS_PER_DAY = 86_400

export class IntervalSumFold implements AggregateFold {
  private sum: IntervalParts | undefined
  private style: IntervalStyle
  /**
   * Whether the style is known: the session's, or shown by a value (a time of 10 hours or more alone prints alike
   * in two styles).
   */
  private styleShown: boolean

  constructor(
    private readonly col: ColumnInfo,
    private readonly index: number,
  ) {
    this.style = col.intervalStyle ?? 'postgres'
    this.styleShown = col.intervalStyle !== undefined
  }

  add(row: Row): void {
    const raw = row[this.index]
    if (raw === null || raw === undefined) return
    const parts = readInterval(raw, this.col.format)
    if (!this.styleShown && parts.style !== undefined) {
      this.style = parts.style
      this.styleShown = parts.shown
    }
    const sum = this.sum
    this.sum = sum === undefined ? parts : { months: sum.months + parts.months, days: sum.days + parts.days, usecs: sum.usecs + parts.usecs }
  }

  result(): Buffer | null {
    return this.sum === undefined ? null : this.encode(this.sum)
  }

  /** The shards' total, undefined over no value. */
  total(): IntervalParts | undefined {
    return this.sum
  }

  /** An interval in the column's format: its IntervalStyle, or binary. */
  encode(parts: IntervalParts): Buffer {
    return writeInterval(parts, this.col.format, this.style)
  }
}

/**
 * A shard's interval value; in text, with the style it shows (`shown`: false for a time alone of 10 hours or
 * more, which two styles print alike).
 */
export function readInterval(raw: Buffer, format: 0 | 1): IntervalParts & { style?: IntervalStyle; shown: boolean } {
  if (format === 1) {
    if (raw.length !== 16) throw new MergeError('invalid binary value of interval from a shard', '22P03')
    return { usecs: raw.readBigInt64BE(0), days: BigInt(raw.readInt32BE(8)), months: BigInt(raw.readInt32BE(12)), shown: true }
  }
  const text = raw.toString('utf8')
  const parts = parseInterval(text)
  if (parts === undefined) throw new MergeError(`invalid input syntax for type interval: "${text.slice(0, 64)}"`, '22P02')
  return { ...parts, shown: !/^-?[1-9]\d+:\d{2}:\d{2}(\.\d+)?$/.test(text.trim()) }
}

/** An interval the merge computed, in `format`: printed in `style`, or binary; 22008 beyond its range. */
export function writeInterval(parts: IntervalParts, format: 0 | 1, style: IntervalStyle): Buffer {
  if (!within(parts.months, INT32) || !within(parts.days, INT32) || !within(parts.usecs, INT64)) throw new MergeError('interval out of range', '22008')
  if (format === 0) return Buffer.from(formatInterval(parts, style))
  const out = Buffer.alloc(16)
  out.writeBigInt64BE(parts.usecs, 0)
  out.writeInt32BE(Number(parts.days), 8)
  out.writeInt32BE(Number(parts.months), 12)
  return out
}

/** avg(interval): the shards' sums (IntervalSumFold) over the sum of their counts. */
export class IntervalAvgFold implements AggregateFold {
  private readonly sum: IntervalSumFold
  private count = 0n

  constructor(
    sumCol: ColumnInfo & { index: number },
    private readonly countCol: ColumnInfo & { index: number },
  ) {
    this.sum = new IntervalSumFold(sumCol, sumCol.index)
  }

  add(row: Row): void {
    this.sum.add(row)
    const count = row[this.countCol.index]
    if (count === null || count === undefined) return
    const c = decodeValue(count, this.countCol.typeOid, this.countCol.format)
    if (c.kind === 'int') this.count += c.value
  }

  result(): Buffer | null {
    const total = this.sum.total()
    return total === undefined || this.count === 0n ? null : this.sum.encode(divideInterval(total, Number(this.count)))
  }
}

/** Postgres 15's interval_div, step for step in float8 as it computes. */
export function divideInterval(span: IntervalParts, factor: number): IntervalParts {
  return scaled(span, (n) => n / factor)
}

/** Postgres 15's interval_mul, the same steps with a product; 22008 when a field's product leaves its range. */
export function multiplyInterval(span: IntervalParts, factor: number): IntervalParts {
  const months = Number(span.months) * factor
  const days = Number(span.days) * factor
  if (!(Math.abs(months) <= 2 ** 31) || !(Math.abs(days) <= 2 ** 31)) throw new MergeError('interval out of range', '22008')
  return scaled(span, (n) => n * factor)
}

/**
 * Each field scaled: the whole months and days kept, the fraction of a month cascaded into days of 30 and the
 * fraction of a day into seconds, each rounded to microseconds (TSROUND), as interval_mul and interval_div do.
 */
function scaled(span: IntervalParts, by: (n: number) => number): IntervalParts {
  const months = by(Number(span.months))
  const days = by(Number(span.days))
  const month = Math.trunc(months)
  let day = Math.trunc(days)
  const monthRemainderDays = tsRound((months - month) * 30)
  let secRemainder = tsRound((days - day + monthRemainderDays - Math.trunc(monthRemainderDays)) * SECS_PER_DAY)
  // 24:00:00 from rounding, or more from the cascade of months and days.
  if (Math.abs(secRemainder) >= SECS_PER_DAY) {
    day += Math.trunc(secRemainder / SECS_PER_DAY)
    secRemainder -= Math.trunc(secRemainder / SECS_PER_DAY) * SECS_PER_DAY
  }
  day += Math.trunc(monthRemainderDays)
  const usecs = rint(by(Number(span.usecs)) + secRemainder * 1_000_000)
  return { months: BigInt(month), days: BigInt(day), usecs: BigInt(usecs) }
}

/** C's rint: to the nearest integer, halves to even. */
function rint(x: number): number {
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x)
}

/** Rounded to microseconds, as TSROUND does. */
function tsRound(x: number): number {
  return rint(x * 1_000_000) / 1_000_000
}

function within(n: bigint, limit: bigint): boolean {
  return n >= -limit && n < limit
}
