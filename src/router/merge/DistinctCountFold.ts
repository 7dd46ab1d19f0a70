// count(DISTINCT x) of a column that is not a sharding key: the same value may be on several shards, so the
// shards' counts do not add up. Each shard groups its rows by x as well and answers a row per value, with its own
// count(DISTINCT x) of that row's group (1, or 0 when a FILTER left no row or x is NULL); the proxy counts the
// values it saw with a count above 0, once each.
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { MergeError } from './MergeError.js'
import { canOrderColumn, decodeColumn, decodeValue, encodeValue, equalityKey, unsupported } from './SqlValue.js'
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
        `count(DISTINCT …) across shards saw more than ${this.limit} distinct values, which pgshard holds in memory to count; count them where the key is pinned, or in the application`,
        '54000',
      )
    }
  }
}

export class DistinctCountFold implements AggregateFold {
  private readonly seen = new Set<string>()
  private readonly count: ColumnInfo
  private readonly value: ColumnInfo

  constructor(
    columns: ColumnInfo[],
    private readonly countIndex: number,
    private readonly valueIndex: number,
    private readonly budget: DistinctValueBudget,
  ) {
    this.count = columns[countIndex]!
    this.value = columns[valueIndex]!
    if (!isIntegerType(this.count.typeOid)) throw unsupported(this.count.typeOid, 'add up counts of')
    if (!canOrderColumn(this.value)) throw unsupported(this.value.typeOid, 'count distinct')
  }

  add(row: Row): void {
    const counted = row[this.countIndex]
    const raw = row[this.valueIndex]
    if (counted === null || counted === undefined || raw === null || raw === undefined) return
    const n = decodeValue(counted, this.count.typeOid, this.count.format)
    if (n.kind !== 'int' || n.value === 0n) return
    const key = equalityKey(decodeColumn(raw, this.value))
    if (this.seen.has(key)) return
    this.budget.take()
    this.seen.add(key)
  }

  result(): Buffer | null {
    return encodeValue({ kind: 'int', value: BigInt(this.seen.size) }, this.count.typeOid, this.count.format)
  }
}
