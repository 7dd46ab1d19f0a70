// sum(interval) and avg(interval) across shards: Postgres adds intervals field by field (months, days,
// microseconds, none carried into another), so the shards' sums add up the same way; avg divides that total by the
// count as Postgres 15's interval_div does (IntervalValue). The answer is printed in the session's IntervalStyle
// (the shards' when it is not known), or sent in binary.
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import type { IntervalParts, IntervalStyle } from './IntervalText.js'
import { divideInterval, readInterval, writeInterval } from './IntervalValue.js'
import { decodeValue } from './SqlValue.js'

type Row = (Buffer | null)[]

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
