// Variance and standard deviation across shards, from each shard's part (DeviationParts). For numeric and integer
// values: the counts, sums and sums of squares add up exactly, and the result is computed as Postgres computes it
// (NumericDeviation). For float values: each shard's count, mean and variance are combined as Postgres's parallel
// aggregation combines its workers' (so the last digits may differ from one server summing in another order).
import type { DeviationParts } from '../StatementPlan.js'
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { MergeError } from './MergeError.js'
import { numericDeviation, type DeviationKind } from './NumericDeviation.js'
import { addNumeric, numericFromBigInt, numericToText, type NumericValue } from './NumericValue.js'
import { decodeValue, encodeValue, type SqlValue } from './SqlValue.js'
import { TypeOid, isIntegerType } from './TypeOid.js'

type Row = (Buffer | null)[]
type Column = ColumnInfo & { index: number }

export class DeviationFold implements AggregateFold {
  private n = 0n
  private sum: NumericValue = numericFromBigInt(0n)
  private squares: NumericValue = numericFromBigInt(0n)
  /** Float values: the running count, mean and sum of squared deviations (Sxx). */
  private floats = { n: 0, mean: 0, sxx: 0 }

  private constructor(
    private readonly kind: DeviationKind,
    private readonly output: ColumnInfo,
    private readonly parts: Record<keyof DeviationParts, Column>,
  ) {}

  /** The fold of deviation column `output` from its hidden parts among `columns`. */
  static of(kind: DeviationKind, output: ColumnInfo, columns: ColumnInfo[], at: DeviationParts): DeviationFold {
    const column = (i: number): Column => {
      const c = columns[i]
      if (c === undefined) throw new MergeError(`${kind}: the shards returned no hidden column ${i + 1}`, 'XX000')
      return { ...c, index: i }
    }
    const parts = { count: column(at.count), sum: column(at.sum), squares: column(at.squares), mean: column(at.mean), variance: column(at.variance) }
    if (!isIntegerType(parts.count.typeOid) || parts.sum.typeOid !== TypeOid.numeric || parts.squares.typeOid !== TypeOid.numeric) {
      throw new MergeError(`${kind}: unexpected types of its hidden columns`, 'XX000')
    }
    return new DeviationFold(kind, output, parts)
  }

  add(row: Row): void {
    const count = this.value(row, this.parts.count)
    if (count?.kind !== 'int' || count.value === 0n) return
    this.n += count.value
    this.sum = addNumeric(this.sum, this.numeric(row, this.parts.sum))
    this.squares = addNumeric(this.squares, this.numeric(row, this.parts.squares))
    if (this.output.typeOid === TypeOid.numeric) return
    // Chan et al.'s combination, as float8_combine does it.
    const n = Number(count.value)
    const mean = this.float(row, this.parts.mean)
    const sxx = this.float(row, this.parts.variance) * n
    const f = this.floats
    if (f.n === 0) {
      this.floats = { n, mean, sxx }
      return
    }
    const total = f.n + n
    const delta = mean - f.mean
    this.floats = { n: total, mean: f.mean + (delta * n) / total, sxx: f.sxx + sxx + (delta * delta * f.n * n) / total }
  }

  result(): Buffer | null {
    if (this.output.typeOid === TypeOid.numeric) {
      const value = numericDeviation(this.kind, this.n, this.sum, this.squares)
      return value === null ? null : encodeValue({ kind: 'numeric', value }, TypeOid.numeric, this.output.format)
    }
    const { n, sxx } = this.floats
    const sample = this.kind === 'var_samp' || this.kind === 'stddev_samp'
    if (n === 0 || (sample && n <= 1)) return null
    const variance = Number.isNaN(sxx) ? NaN : Math.max(sxx, 0) / (sample ? n - 1 : n)
    const value = this.kind === 'var_samp' || this.kind === 'var_pop' ? variance : Math.sqrt(variance)
    return encodeValue({ kind: 'float', value }, this.output.typeOid, this.output.format)
  }

  private value(row: Row, column: Column): SqlValue | undefined {
    const raw = row[column.index]
    return raw === null || raw === undefined ? undefined : decodeValue(raw, column.typeOid, column.format)
  }

  private numeric(row: Row, column: Column): NumericValue {
    const v = this.value(row, column)
    return v?.kind === 'numeric' ? v.value : numericFromBigInt(0n)
  }

  private float(row: Row, column: Column): number {
    const v = this.value(row, column)
    if (v?.kind === 'float') return v.value
    return v?.kind === 'numeric' ? Number(numericToText(v.value)) : 0
  }
}
