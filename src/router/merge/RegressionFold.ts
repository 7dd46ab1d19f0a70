// corr, covar_pop, covar_samp and the regr_* aggregates across shards, from each shard's part (RegressionParts):
// its count of pairs, means of x and y and sums of squared and crossed deviations, combined as Postgres's parallel
// aggregation combines its workers' states (float8_regr_combine), then finished as its final functions do. The
// arithmetic is float8 as Postgres's; the last digits may differ from one server summing in another order.
import type { RegressionKind, RegressionParts } from '../StatementPlan.js'
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { MergeError } from './MergeError.js'
import { numericToText } from './NumericValue.js'
import { decodeValue, encodeValue } from './SqlValue.js'
import { TypeOid, isIntegerType } from './TypeOid.js'

type Row = (Buffer | null)[]

/** Postgres's transition state of these aggregates: N, Sx, Sxx, Sy, Syy, Sxy. */
interface State {
  n: number
  sx: number
  sxx: number
  sy: number
  syy: number
  sxy: number
}

export class RegressionFold implements AggregateFold {
  private state: State = { n: 0, sx: 0, sxx: 0, sy: 0, syy: 0, sxy: 0 }

  private constructor(
    private readonly kind: RegressionKind,
    private readonly output: ColumnInfo,
    private readonly columns: ColumnInfo[],
    private readonly parts: RegressionParts,
  ) {}

  /** The fold of column `output` from its hidden parts among `columns`. */
  static of(kind: RegressionKind, output: ColumnInfo, columns: ColumnInfo[], parts: RegressionParts): RegressionFold {
    for (const i of Object.values(parts)) if (columns[i] === undefined) throw new MergeError(`${kind}: the shards returned no hidden column ${i + 1}`, 'XX000')
    if (!isIntegerType(columns[parts.count]!.typeOid)) throw new MergeError(`${kind}: unexpected types of its hidden columns`, 'XX000')
    return new RegressionFold(kind, output, columns, parts)
  }

  add(row: Row): void {
    const n = this.number(row, this.parts.count)
    if (n === null || n === 0) return
    const part: State = {
      n,
      sx: this.number(row, this.parts.avgx)! * n,
      sxx: this.number(row, this.parts.sxx)!,
      sy: this.number(row, this.parts.avgy)! * n,
      syy: this.number(row, this.parts.syy)!,
      sxy: this.number(row, this.parts.sxy)!,
    }
    this.state = combine(this.state, part)
  }

  result(): Buffer | null {
    const value = finish(this.kind, this.state)
    if (value === null) return null
    if (this.kind === 'regr_count') return encodeValue({ kind: 'int', value: BigInt(value) }, this.output.typeOid, this.output.format)
    return encodeValue({ kind: 'float', value }, TypeOid.float8, this.output.format)
  }

  private number(row: Row, index: number): number | null {
    const raw = row[index]
    if (raw === null || raw === undefined) return null
    const col = this.columns[index]!
    const v = decodeValue(raw, col.typeOid, col.format)
    if (v.kind === 'int') return Number(v.value)
    if (v.kind === 'float') return v.value
    if (v.kind === 'numeric') return Number(numericToText(v.value))
    throw new MergeError(`${this.kind}: unexpected types of its hidden columns`, 'XX000')
  }
}

/** Two states as one (Chan et al.'s formulas, as float8_regr_combine applies them). */
function combine(a: State, b: State): State {
  if (a.n === 0) return b
  if (b.n === 0) return a
  const n = a.n + b.n
  const dx = a.sx / a.n - b.sx / b.n
  const dy = a.sy / a.n - b.sy / b.n
  const weight = (a.n * b.n) / n
  return {
    n,
    sx: a.sx + b.sx,
    sxx: a.sxx + b.sxx + weight * dx * dx,
    sy: a.sy + b.sy,
    syy: a.syy + b.syy + weight * dy * dy,
    sxy: a.sxy + b.sxy + weight * dx * dy,
  }
}

/** The aggregate's value from the combined state, null where Postgres's final function gives NULL. */
function finish(kind: RegressionKind, s: State): number | null {
  if (kind === 'regr_count') return s.n
  if (s.n < 1) return null
  switch (kind) {
    case 'regr_avgx':
      return s.sx / s.n
    case 'regr_avgy':
      return s.sy / s.n
    // Roundoff must not make a sum of squares negative.
    case 'regr_sxx':
      return Math.max(s.sxx, 0)
    case 'regr_syy':
      return Math.max(s.syy, 0)
    case 'regr_sxy':
      return s.sxy
    case 'covar_pop':
      return s.sxy / s.n
    case 'covar_samp':
      return s.n < 2 ? null : s.sxy / (s.n - 1)
    case 'corr':
      return s.sxx === 0 || s.syy === 0 ? null : s.sxy / Math.sqrt(s.sxx * s.syy)
    case 'regr_r2':
      if (s.sxx === 0) return null
      return s.syy === 0 ? 1 : (s.sxy * s.sxy) / (s.sxx * s.syy)
    case 'regr_slope':
      return s.sxx === 0 ? null : s.sxy / s.sxx
    case 'regr_intercept':
      return s.sxx === 0 ? null : (s.sy - (s.sx * s.sxy) / s.sxx) / s.n
  }
}
