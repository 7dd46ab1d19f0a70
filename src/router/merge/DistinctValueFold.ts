// count, sum or avg of DISTINCT x where x is not a sharding key: the same value may be on several shards, so the
// shards' partial results do not add up. Each shard groups its rows by x as well and answers a row per value, with
// its own aggregate of that row's group (count 1 and sum x, or count 0 and sum NULL when a FILTER left no row or x
// is NULL); the proxy folds the row of each value it sees with a non-empty group, once per value.
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { MergeError } from './MergeError.js'
import { canOrderColumn, decodeColumn, decodeValue, equalityKey, unsupported } from './SqlValue.js'
import { isIntegerType } from './TypeOid.js'

type Row = (Buffer | null)[]

/** Distinct values one merge may hold, over all its groups: the proxy's memory stays bounded. */
const MAX_DISTINCT_VALUES = 1_000_000

/** The distinct values the folds of one merge may still hold. */
export class DistinctValueBudget {
  private left: number

  constructor(private readonly limit = MAX_DISTINCT_VALUES) {
    this.left = limit
  }

  take(): void {
    if (--this.left < 0) {
      throw new MergeError(
        `an aggregate of DISTINCT values (or percentile_cont, percentile_disc, mode) across shards saw more than ${this.limit} distinct values, which pgshard holds in memory to fold each once; pin the key to one shard, or aggregate in the application`,
        '54000',
      )
    }
  }
}

export class DistinctValueFold implements AggregateFold {
  private readonly seen = new Set<string>()
  private readonly present: ColumnInfo & { index: number; isCount: boolean }
  private readonly value: ColumnInfo

  /**
   * `inner` folds the rows of distinct values; `present` is the shard column that tells a value's group was not
   * empty: a count (above 0) or a sum (not NULL).
   */
  constructor(
    private readonly inner: AggregateFold,
    columns: ColumnInfo[],
    present: { index: number; isCount: boolean },
    private readonly valueIndex: number,
    private readonly budget: DistinctValueBudget,
  ) {
    this.present = { ...columns[present.index]!, ...present }
    this.value = columns[valueIndex]!
    if (this.present.isCount && !isIntegerType(this.present.typeOid)) throw unsupported(this.present.typeOid, 'add up counts of')
    if (!canOrderColumn(this.value)) throw unsupported(this.value.typeOid, 'aggregate DISTINCT')
  }

  add(row: Row): void {
    const present = row[this.present.index]
    const raw = row[this.valueIndex]
    if (present === null || present === undefined || raw === null || raw === undefined) return
    if (this.present.isCount) {
      const n = decodeValue(present, this.present.typeOid, this.present.format)
      if (n.kind !== 'int' || n.value === 0n) return
    }
    const key = equalityKey(decodeColumn(raw, this.value))
    if (this.seen.has(key)) return
    this.budget.take()
    this.seen.add(key)
    this.inner.add(row)
  }

  result(): Buffer | null {
    return this.inner.result()
  }
}
