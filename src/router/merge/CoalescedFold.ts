// COALESCE(agg(x), c) over the shards' partial results: each shard computes it, with a hidden flag telling whether
// its agg(x) had a value. The merge folds the values of the shards that had one; when none had, it answers c as a
// shard computed it (the same on every shard, typed by Postgres as the whole expression).
import type { AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { MergeError } from './MergeError.js'
import { TypeOid } from './TypeOid.js'

type Row = (Buffer | null)[]

export class CoalescedFold implements AggregateFold {
  private any = false
  private fallback: Buffer | null = null
  private readonly binary: boolean

  constructor(
    private readonly inner: AggregateFold,
    private readonly column: number,
    private readonly present: number,
    columns: ColumnInfo[],
  ) {
    const flag = columns[present]
    if (flag?.typeOid !== TypeOid.bool) throw new MergeError(`the shards described the hidden column ${present + 1} of COALESCE as other than a boolean`, 'XX000')
    this.binary = flag.format === 1
  }

  add(row: Row): void {
    const flag = row[this.present]
    const present = flag !== null && flag !== undefined && flag.length > 0 && flag[0] === (this.binary ? 1 : 0x74)
    if (present) {
      this.inner.add(row)
      this.any = true
    } else if (this.fallback === null) {
      this.fallback = row[this.column] ?? null
    }
  }

  result(): Buffer | null {
    return this.any ? this.inner.result() : this.fallback
  }
}
