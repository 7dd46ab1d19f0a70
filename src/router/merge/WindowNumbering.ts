// row_number(), rank() and dense_rank() computed by the proxy: over the merged groups of an aggregated query (the
// shards numbered only their own partial groups), partition by partition, in window order; or over the rows of a
// query that does not aggregate as the ordered merge emits them in window order (one order, no partitions).
import type { MergedWindow } from '../StatementPlan.js'
import { compareRowKeys } from './RowOrder.js'
import { encodeValue, equalityKey, type SqlValue } from './SqlValue.js'
import type { ColumnInfo } from './ColumnInfo.js'

type Row = (Buffer | null)[]

/** Writes window `w`'s numbers into `rows`; `decode` reads a row's value of a column. */
export function numberRows(rows: Row[], w: MergedWindow, output: ColumnInfo, decode: (row: Row, column: number) => SqlValue | null): void {
  const partitions = new Map<string, { row: Row; keys: (SqlValue | null)[] }[]>()
  for (const row of rows) {
    const key = w.partition.map((c) => {
      const v = decode(row, c)
      return v === null ? 'N' : 'V' + equalityKey(v)
    }).join('\u0000')
    let part = partitions.get(key)
    if (part === undefined) partitions.set(key, (part = []))
    part.push({ row, keys: w.order.map((k) => decode(row, k.column)) })
  }
  for (const part of partitions.values()) {
    part.sort((a, b) => compareRowKeys(w.order, a.keys, b.keys))
    let rank = 0
    let dense = 0
    part.forEach((entry, i) => {
      // Rows equal in every ORDER BY key are peers: they share rank() and dense_rank().
      if (i === 0 || compareRowKeys(w.order, part[i - 1]!.keys, entry.keys) !== 0) {
        rank = i + 1
        dense++
      }
      const n = w.fn === 'row_number' ? i + 1 : w.fn === 'rank' ? rank : dense
      entry.row[w.column] = encodeValue({ kind: 'int', value: BigInt(n) }, output.typeOid, output.format)
    })
  }
}

/** Numbers rows that come in the windows' order (all share one ORDER BY, no PARTITION BY), one after another. */
export class RowNumbering {
  private count = 0
  private rank = 0
  private dense = 0
  private last: (SqlValue | null)[] | undefined

  constructor(
    private readonly windows: readonly MergedWindow[],
    private readonly output: readonly ColumnInfo[],
  ) {}

  /** The row with its window columns numbered (a copy: the row may be a shard's). */
  number(row: Row, decode: (row: Row, column: number) => SqlValue | null): Row {
    const order = this.windows[0]!.order
    const keys = order.map((k) => decode(row, k.column))
    this.count++
    // Rows equal in every ORDER BY key are peers: they share rank() and dense_rank().
    if (this.last === undefined || compareRowKeys(order, this.last, keys) !== 0) {
      this.rank = this.count
      this.dense++
      this.last = keys
    }
    const out = row.slice()
    for (const w of this.windows) {
      const n = w.fn === 'row_number' ? this.count : w.fn === 'rank' ? this.rank : this.dense
      const col = this.output[w.column]!
      out[w.column] = encodeValue({ kind: 'int', value: BigInt(n) }, col.typeOid, col.format)
    }
    return out
  }
}
