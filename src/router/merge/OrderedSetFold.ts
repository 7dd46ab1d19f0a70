// percentile_cont, percentile_disc and mode across shards. Each shard groups its rows by the aggregate's ORDER BY
// value x as well and answers, per value, count(x) (the FILTER applied) and the fraction; the proxy adds up the
// counts of each value, orders the values as the ORDER BY does, and reads the answer off them as Postgres reads it
// off its sorted rows: percentile_disc the first value at or past the fraction of the rows, percentile_cont the two
// values around it interpolated (in float8, or as intervals), mode the most frequent (the first in the order among equally frequent).
// An array of fractions is answered with the array of their answers.
import type { OrderedSetKind, OrderedSetParts, OrderKey } from '../StatementPlan.js'
import type { AggregateFold } from './AggregateFold.js'
import { decodeFloat8Array, encodeArray } from './ArrayEncoding.js'
import type { ColumnInfo } from './ColumnInfo.js'
import type { DistinctValueBudget } from './DistinctValueFold.js'
import { multiplyInterval, readInterval, writeInterval } from './IntervalValue.js'
import { MergeError } from './MergeError.js'
import { numericToText } from './NumericValue.js'
import { compareRowKeys } from './RowOrder.js'
import { canOrderColumn, decodeColumn, decodeValue, encodeValue, equalityKey, unsupported, type SqlValue } from './SqlValue.js'
import { isIntegerType, TypeOid } from './TypeOid.js'

type Row = (Buffer | null)[]

const FLOAT8_ARRAY = 1022
const INTERVAL_ARRAY = 1187

interface Counted {
  value: SqlValue
  raw: Buffer
  rows: bigint
}

export class OrderedSetFold implements AggregateFold {
  private readonly counted = new Map<string, Counted>()
  /** The fractions the shards answered (null: NULL), undefined before the first row. */
  private fractions: (number | null)[] | null | undefined
  private readonly count: ColumnInfo
  private readonly fractionFormat: 0 | 1
  private readonly order: OrderKey[]

  /** `out`: the aggregate's own column, as the shards describe it (Postgres's result type). */
  constructor(
    private readonly fn: OrderedSetKind,
    private readonly out: ColumnInfo,
    columns: ColumnInfo[],
    private readonly parts: OrderedSetParts & { value: number },
    private readonly budget: DistinctValueBudget,
    /** x's column as it orders (the collation a COLLATE clause names). */
    private readonly value: ColumnInfo,
  ) {
    this.count = columns[parts.count]!
    this.fractionFormat = parts.fraction === undefined ? 0 : columns[parts.fraction]!.format
    this.order = [{ column: 0, descending: parts.descending, nullsFirst: false }]
    if (!isIntegerType(this.count.typeOid)) throw new MergeError(`${fn}: unexpected types of its hidden columns`, 'XX000')
    if (!canOrderColumn(value)) throw unsupported(value.typeOid, `take ${fn}() of`)
    if (out.format !== value.format) throw new MergeError(`${fn}: the shards described its column unlike its ORDER BY value`, 'XX000')
    // One fraction: the answer's type is float8 or interval (percentile_cont) or x's; an array: an array of those.
    const contType = value.typeOid === TypeOid.interval ? (parts.fractions ? INTERVAL_ARRAY : TypeOid.interval) : parts.fractions ? FLOAT8_ARRAY : TypeOid.float8
    if (fn === 'percentile_cont' && out.typeOid !== contType) throw unsupported(out.typeOid, 'take percentile_cont() of')
    if (fn !== 'percentile_cont' && !parts.fractions && out.typeOid !== value.typeOid) {
      throw new MergeError(`${fn}: the shards described its column unlike its ORDER BY value`, 'XX000')
    }
  }

  add(row: Row): void {
    if (this.fractions === undefined && this.parts.fraction !== undefined) this.fractions = this.readFractions(row[this.parts.fraction] ?? null)
    const raw = row[this.parts.value]
    const n = row[this.parts.count]
    if (raw === null || raw === undefined || n === null || n === undefined) return
    const rows = decodeValue(n, this.count.typeOid, this.count.format)
    if (rows.kind !== 'int' || rows.value === 0n) return
    const value = decodeColumn(raw, this.value)
    const key = equalityKey(value)
    const known = this.counted.get(key)
    if (known !== undefined) {
      known.rows += rows.value
      return
    }
    this.budget.take()
    this.counted.set(key, { value, raw, rows: rows.value })
  }

  result(): Buffer | null {
    if (this.counted.size === 0 || this.fractions === null) return null
    const values = [...this.counted.values()].sort((a, b) => compareRowKeys(this.order, [a.value], [b.value]))
    if (this.fn === 'mode') {
      let mode = values[0]!
      for (const v of values) if (v.rows > mode.rows) mode = v
      return mode.raw
    }
    const total = values.reduce((sum, v) => sum + v.rows, 0n)
    const answers = this.fractions!.map((f) => (f === null ? null : this.percentile(values, total, f)))
    if (!this.parts.fractions) return answers[0]!
    const element = this.fn === 'percentile_cont' && this.value.typeOid !== TypeOid.interval ? TypeOid.float8 : this.value.typeOid
    return encodeArray(answers, element, this.out.format)
  }

  /** The answer for fraction `f`, as one value of the answer's element type. */
  private percentile(values: Counted[], total: bigint, f: number): Buffer {
    // Postgres's own check, should no shard have had a row to check it on.
    if (!(f >= 0 && f <= 1)) throw new MergeError(`percentile value ${f} is not between 0 and 1`, '22003')
    /** The value at 0-based position `i` of the ordered rows. */
    const at = (i: number): Counted => {
      let seen = 0n
      for (const v of values) {
        seen += v.rows
        if (BigInt(i) < seen) return v
      }
      return values[values.length - 1]!
    }
    if (this.fn === 'percentile_disc') return at(Math.max(Math.ceil(f * Number(total)), 1) - 1).raw
    const position = f * Number(total - 1n)
    const first = Math.floor(position)
    const second = Math.ceil(position)
    if (this.value.typeOid === TypeOid.interval) return this.intervalBetween(at(first).raw, at(second).raw, first === second ? 0 : position - first)
    const low = this.asFloat8(at(first).value)
    const value = first === second ? low : low + (position - first) * (this.asFloat8(at(second).value) - low)
    return encodeValue({ kind: 'float', value }, TypeOid.float8, this.out.format)
  }

  /**
   * `low` + (`high` − `low`) × `pct` of two interval values, as Postgres's interval_lerp computes it (interval_mi,
   * interval_mul, interval_pl), printed in the session's IntervalStyle (or the values').
   */
  private intervalBetween(low: Buffer, high: Buffer, pct: number): Buffer {
    const lo = readInterval(low, this.value.format)
    if (pct === 0) return low
    const hi = readInterval(high, this.value.format)
    const step = multiplyInterval({ months: hi.months - lo.months, days: hi.days - lo.days, usecs: hi.usecs - lo.usecs }, pct)
    const value = { months: step.months + lo.months, days: step.days + lo.days, usecs: step.usecs + lo.usecs }
    return writeInterval(value, this.value.format, this.value.intervalStyle ?? lo.style ?? 'postgres')
  }

  private readFractions(raw: Buffer | null): (number | null)[] | null {
    if (raw === null) return null
    if (this.parts.fractions) return decodeFloat8Array(raw, this.fractionFormat)
    const f = decodeValue(raw, TypeOid.float8, this.fractionFormat)
    return [f.kind === 'float' ? f.value : NaN]
  }

  /** x as float8, as Postgres casts it for percentile_cont. */
  private asFloat8(v: SqlValue): number {
    if (v.kind === 'int') return Number(v.value)
    if (v.kind === 'float') return this.value.typeOid === TypeOid.float4 ? Math.fround(v.value) : v.value
    if (v.kind === 'numeric') return Number(numericToText(v.value))
    throw unsupported(this.value.typeOid, 'take percentile_cont() of')
  }
}
