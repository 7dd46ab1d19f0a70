// Folds one aggregate column over the partial results of every shard: count adds counts, sum adds sums
// (exactly for integers and numeric, intervals field by field: IntervalSumFold, which also averages them),
// min/max keep the extreme, bool_and/bool_or combine, avg divides the merged sum by the merged count, array_agg
// puts the arrays together (ArrayAggFold), string_agg joins their elements (StringAggFold). NULL partials (a shard
// with no non-NULL input) are skipped; over no input at all the result is NULL, except count's 0.
import type { AggregateKind, DeviationParts, ElementOrder, RegressionParts } from '../StatementPlan.js'
import { ArrayAggFold } from './ArrayAggFold.js'
import { DeviationFold } from './DeviationFold.js'
import { IntervalAvgFold, IntervalSumFold } from './IntervalSumFold.js'
import { RegressionFold } from './RegressionFold.js'
import { StringAggFold } from './StringAggFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { MergeError } from './MergeError.js'
import { addNumeric, divideNumeric, numericFromBigInt, type NumericValue } from './NumericValue.js'
import { canOrderColumn, compareValues, decodeColumn, decodeValue, encodeValue, unsupported, type SqlValue } from './SqlValue.js'
import { TypeOid, isIntegerType } from './TypeOid.js'

type Row = (Buffer | null)[]

export interface AggregateFold {
  add(row: Row): void
  /** The merged value, encoded for the output column. */
  result(): Buffer | null
}

const SUMMABLE = new Set<number>([TypeOid.int2, TypeOid.int4, TypeOid.int8, TypeOid.numeric, TypeOid.float4, TypeOid.float8])

function isFloat(oid: number): boolean {
  return oid === TypeOid.float4 || oid === TypeOid.float8
}

/** The type avg() returns for a merged sum of this type: float8 for floats, interval for intervals, numeric for the rest. */
export function avgResultType(sumOid: number): number {
  return isFloat(sumOid) ? TypeOid.float8 : sumOid === TypeOid.interval ? TypeOid.interval : TypeOid.numeric
}

/** Checks the shard columns' types and builds the fold for aggregate column `index`. */
export function createFold(
  fn: AggregateKind,
  index: number,
  columns: ColumnInfo[],
  sumColumn?: number,
  countColumn?: number,
  order?: ElementOrder,
  /** string_agg's delimiter, as a value of its result type (null: none). */
  delimiter: Buffer | null = null,
  deviation?: DeviationParts,
  regression?: RegressionParts,
): AggregateFold {
  const col = columns[index]
  switch (fn) {
    case 'corr':
    case 'covar_pop':
    case 'covar_samp':
    case 'regr_avgx':
    case 'regr_avgy':
    case 'regr_count':
    case 'regr_intercept':
    case 'regr_r2':
    case 'regr_slope':
    case 'regr_sxx':
    case 'regr_sxy':
    case 'regr_syy':
      if (regression === undefined) throw new MergeError(`${fn} column ${index + 1} has no hidden parts`, 'XX000')
      return RegressionFold.of(fn, col, columns, regression)
    case 'bit_and':
    case 'bit_or':
    case 'bit_xor':
      if (!isIntegerType(col.typeOid)) throw unsupported(col.typeOid, `take ${fn}() of`)
      return new BitFold(col, index, fn)
    case 'var_samp':
    case 'var_pop':
    case 'stddev_samp':
    case 'stddev_pop':
      if (deviation === undefined) throw new MergeError(`${fn} column ${index + 1} has no hidden parts`, 'XX000')
      return DeviationFold.of(fn, col, columns, deviation)
    case 'array_agg':
      return new ArrayAggFold(col, index, order)
    case 'string_agg':
      return new StringAggFold(col, index, order, delimiter)
    case 'count':
      if (!isIntegerType(col.typeOid)) throw unsupported(col.typeOid, 'add up counts of')
      return new SumFold(col, index, true)
    case 'sum':
      if (col.typeOid === TypeOid.interval) return new IntervalSumFold(col, index)
      if (!SUMMABLE.has(col.typeOid)) throw unsupported(col.typeOid, 'add up sums of')
      return new SumFold(col, index, false)
    case 'min':
    case 'max':
      if (!canOrderColumn(col)) throw unsupported(col.typeOid, `take ${fn}() of`)
      return new ExtremeFold(col, index, fn === 'max')
    case 'bool_and':
    case 'bool_or':
      if (col.typeOid !== TypeOid.bool) throw unsupported(col.typeOid, `take ${fn}() of`)
      return new BoolFold(col, index, fn === 'bool_and')
    case 'percentile_cont':
    case 'percentile_disc':
    case 'mode':
      throw new MergeError(`${fn} column ${index + 1} has no hidden parts`, 'XX000')
    case 'avg': {
      const sum = sumColumn === undefined ? undefined : columns[sumColumn]
      const count = countColumn === undefined ? undefined : columns[countColumn]
      if (!sum || !count) throw new MergeError(`avg column ${index + 1} has no hidden sum and count columns`, 'XX000')
      if (sum.typeOid === TypeOid.interval && isIntegerType(count.typeOid)) return new IntervalAvgFold({ ...sum, index: sumColumn! }, { ...count, index: countColumn! })
      if (!SUMMABLE.has(sum.typeOid)) throw unsupported(sum.typeOid, 'average')
      if (!isIntegerType(count.typeOid)) throw unsupported(count.typeOid, 'add up counts of')
      return new AvgFold(
        { ...sum, index: sumColumn! },
        { ...count, index: countColumn! },
        { name: col.name, typeOid: avgResultType(sum.typeOid), format: col.format },
      )
    }
  }
}

/** Adds integers exactly (as int8), numerics exactly, floats in their own precision. */
class Sum {
  private int: bigint | undefined
  private numeric: NumericValue | undefined
  private float: number | undefined

  constructor(private readonly oid: number) {}

  add(v: SqlValue): void {
    if (v.kind === 'int') this.int = (this.int ?? 0n) + v.value
    else if (v.kind === 'numeric') this.numeric = this.numeric ? addNumeric(this.numeric, v.value) : v.value
    else if (v.kind === 'float') {
      const total = (this.float ?? 0) + v.value
      this.float = this.oid === TypeOid.float4 ? Math.fround(total) : total
    }
  }

  value(): SqlValue | undefined {
    if (this.float !== undefined) return { kind: 'float', value: this.float }
    if (this.numeric !== undefined) {
      return { kind: 'numeric', value: this.int === undefined ? this.numeric : addNumeric(this.numeric, numericFromBigInt(this.int)) }
    }
    return this.int === undefined ? undefined : { kind: 'int', value: this.int }
  }
}

class SumFold implements AggregateFold {
  private readonly sum: Sum

  constructor(
    private readonly col: ColumnInfo,
    private readonly index: number,
    private readonly isCount: boolean,
  ) {
    this.sum = new Sum(col.typeOid)
  }

  add(row: Row): void {
    const raw = row[this.index]
    if (raw !== null && raw !== undefined) this.sum.add(decodeValue(raw, this.col.typeOid, this.col.format))
  }

  result(): Buffer | null {
    const v = this.sum.value() ?? (this.isCount ? { kind: 'int' as const, value: 0n } : undefined)
    return v === undefined ? null : encodeValue(v, this.col.typeOid, this.col.format)
  }
}

class ExtremeFold implements AggregateFold {
  private best: { raw: Buffer; value: SqlValue } | undefined

  constructor(
    private readonly col: ColumnInfo,
    private readonly index: number,
    private readonly max: boolean,
  ) {}

  add(row: Row): void {
    const raw = row[this.index]
    if (raw === null || raw === undefined) return
    const value = decodeColumn(raw, this.col)
    const c = this.best === undefined ? 0 : compareValues(value, this.best.value)
    if (this.best === undefined || (this.max ? c > 0 : c < 0)) this.best = { raw, value }
  }

  result(): Buffer | null {
    return this.best?.raw ?? null
  }
}

class BoolFold implements AggregateFold {
  private value: boolean | undefined

  constructor(
    private readonly col: ColumnInfo,
    private readonly index: number,
    private readonly and: boolean,
  ) {}

  add(row: Row): void {
    const raw = row[this.index]
    if (raw === null || raw === undefined) return
    const v = decodeValue(raw, this.col.typeOid, this.col.format)
    const b = v.kind === 'bool' && v.value
    this.value = this.value === undefined ? b : this.and ? this.value && b : this.value || b
  }

  result(): Buffer | null {
    return this.value === undefined ? null : encodeValue({ kind: 'bool', value: this.value }, TypeOid.bool, this.col.format)
  }
}

/** bit_and, bit_or and bit_xor of integers: the shards' results combined by the same operation. */
class BitFold implements AggregateFold {
  private value: bigint | undefined

  constructor(
    private readonly col: ColumnInfo,
    private readonly index: number,
    private readonly fn: 'bit_and' | 'bit_or' | 'bit_xor',
  ) {}

  add(row: Row): void {
    const raw = row[this.index]
    if (raw === null || raw === undefined) return
    const v = decodeValue(raw, this.col.typeOid, this.col.format)
    if (v.kind !== 'int') return
    const x = v.value
    this.value = this.value === undefined ? x : this.fn === 'bit_and' ? this.value & x : this.fn === 'bit_or' ? this.value | x : this.value ^ x
  }

  result(): Buffer | null {
    return this.value === undefined ? null : encodeValue({ kind: 'int', value: this.value }, this.col.typeOid, this.col.format)
  }
}

class AvgFold implements AggregateFold {
  private readonly sum: Sum
  private count = 0n

  constructor(
    private readonly sumCol: ColumnInfo & { index: number },
    private readonly countCol: ColumnInfo & { index: number },
    private readonly output: ColumnInfo,
  ) {
    this.sum = new Sum(isFloat(sumCol.typeOid) ? TypeOid.float8 : sumCol.typeOid)
  }

  add(row: Row): void {
    const count = row[this.countCol.index]
    const sum = row[this.sumCol.index]
    if (count !== null && count !== undefined) {
      const c = decodeValue(count, this.countCol.typeOid, this.countCol.format)
      if (c.kind === 'int') this.count += c.value
    }
    if (sum !== null && sum !== undefined) this.sum.add(decodeValue(sum, this.sumCol.typeOid, this.sumCol.format))
  }

  result(): Buffer | null {
    const total = this.sum.value()
    if (this.count === 0n || total === undefined) return null
    if (total.kind === 'float') {
      return encodeValue({ kind: 'float', value: total.value / Number(this.count) }, this.output.typeOid, this.output.format)
    }
    if (total.kind !== 'int' && total.kind !== 'numeric') return null
    const numerator = total.kind === 'int' ? numericFromBigInt(total.value) : total.value
    const quotient = divideNumeric(numerator, numericFromBigInt(this.count))
    return encodeValue({ kind: 'numeric', value: quotient }, this.output.typeOid, this.output.format)
  }
}
