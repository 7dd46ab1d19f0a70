// Merges the results of one scattered SELECT into the answer one Postgres would give over the union of the
// shards' rows. Pure logic: the engine pushes each shard's raw column values and takes ready rows.
//
// Order of operations, as in Postgres: aggregation (GROUP BY, or one group for plain aggregates), HAVING,
// DISTINCT on the visible columns, ORDER BY, OFFSET, LIMIT.
// - Without aggregation rows stream: unordered rows are ready at once; ordered rows are k-way merged from the
//   shards' sorted streams, a row being emitted only when every unfinished shard has a row waiting (ties go
//   to the lower shard index).
// - With aggregation nothing is ready until every shard has ended.
// - Text compares by bytes, i.e. the "C" collation: ordered merges of text are right only when the shards
//   sort with C too (database collation C, or COLLATE "C" in the query).
// - Dates and timestamps in text format must use DateStyle ISO; floats are printed as with
//   extra_float_digits > 0 (the default).
import type { BoundParam } from '../Route.js'
import type { OrderedSetKind, OrderKey, ScatterPlan, ValueRef } from '../StatementPlan.js'
import { avgResultType, createFold, type AggregateFold } from './AggregateFold.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { CoalescedFold } from './CoalescedFold.js'
import { DistinctValueBudget, DistinctValueFold } from './DistinctValueFold.js'
import { HavingFilter } from './HavingFilter.js'
import { MergeError } from './MergeError.js'
import { OrderedSetFold } from './OrderedSetFold.js'
import { compareRowKeys } from './RowOrder.js'
import { canOrderColumn, decodeColumn, decodeValue, encodeValue, equalityKey, unsupported, type SqlValue } from './SqlValue.js'
import { expandStars } from './StarExpansion.js'
import { BYTE_ORDER, namedCollation } from './TextCollation.js'
import { isIntegerType, TypeOid } from './TypeOid.js'
import { stringAggResultType } from './StringAggFold.js'
import { numberRows, RowNumbering } from './WindowNumbering.js'

export type { ColumnInfo } from './ColumnInfo.js'
export { MergeError } from './MergeError.js'

type Row = (Buffer | null)[]

/** A shard's part of a merged answer (ResultMerger.rowShares). */
export interface RowShare {
  skipped: number
  kept: number
}

interface Keyed {
  row: Row
  keys: (SqlValue | null)[]
}

interface Group {
  first: Row
  folds: AggregateFold[]
}

// A consumed queue prefix longer than this is cut off, so a long-running merge does not keep it.
const QUEUE_COMPACT_AT = 1024

export class ResultMerger {
  /** The plan with its `*` items resolved against the shards' columns. */
  private readonly plan: ScatterPlan
  private readonly output: ColumnInfo[]
  private readonly aggregates: { column: number; fold: () => AggregateFold }[]
  private readonly aggregating: boolean
  private readonly having: HavingFilter | undefined
  private readonly groups = new Map<string, Group>()
  private readonly queues: Keyed[][]
  private readonly heads: number[]
  private readonly ended: boolean[]
  private endedCount = 0
  private ready: Row[] = []
  private readonly seen: Set<string> | undefined
  /** DISTINCT ON: the key of the last row kept (rows of one key come together in the ordered merge). */
  private lastDistinctOn: string | undefined
  private toSkip: number
  private remaining: number
  /** count(*) of a subquery with LIMIT and OFFSET: the sum of the shards' counts is capped by them. */
  private readonly countCap: { limit: number; offset: number } | undefined
  private limitReached = false
  /** Per shard, how many of its rows OFFSET skipped and how many the answer kept (rows not aggregated). */
  private readonly shares: RowShare[]
  /**
   * Window totals (plan.totals): each shard's first row, which carries its totals (null: it ended without rows),
   * the merged totals once every shard's is known, and the rows waiting for them.
   */
  private readonly totalRows: (Row | null | undefined)[]
  /** Ranking windows over the rows of a query that does not aggregate: numbered as the ordered merge emits rows. */
  private readonly rowNumbers: RowNumbering | undefined
  private totalValues: Map<number, Buffer | null> | undefined
  private awaitingTotals: [Row, number][] = []
  /** The column of each ORDER BY key, with the collation its COLLATE clause names, if any. */
  private readonly orderColumns: ColumnInfo[]

  constructor(
    planned: ScatterPlan,
    private readonly columns: ColumnInfo[],
    private readonly shardCount: number,
    param: (n: number) => BoundParam | undefined,
  ) {
    const plan = expandStars(planned, columns.length)
    this.plan = plan
    if (columns.length !== plan.columns.length) {
      throw new MergeError(`the shards returned ${columns.length} columns; the scatter plan expects ${plan.columns.length}`, 'XX000')
    }
    if (!Number.isInteger(shardCount) || shardCount < 1) throw new MergeError(`invalid shard count ${shardCount}`, 'XX000')
    this.output = columns.map((c, i) => {
      const oc = plan.columns[i]
      if (oc.kind === 'aggregate' && oc.fn === 'string_agg') return { ...c, typeOid: stringAggResultType(c.typeOid) }
      const sum = oc.kind === 'aggregate' && oc.fn === 'avg' && oc.sumColumn !== undefined ? columns[oc.sumColumn] : undefined
      return sum ? { ...c, typeOid: avgResultType(sum.typeOid) } : c
    })
    const distinctValues = new DistinctValueBudget()
    this.aggregates = plan.columns.flatMap((oc, column) => {
      if (oc.kind !== 'aggregate') return []
      const delimiter = oc.delimiter === undefined ? null : delimiterValue(oc.delimiter, columns[column]!, param)
      const set = oc.orderedSet
      if (set !== undefined) {
        const value = set.value
        if (value === undefined || columns[value] === undefined) throw new MergeError(`${oc.fn} column ${column + 1} has no hidden value column`, 'XX000')
        const ordered = orderedAs({ column: value, descending: set.descending, nullsFirst: false, ...(set.collation !== undefined ? { collation: set.collation } : {}) }, columns[value]!)
        return [{ column, fold: () => new OrderedSetFold(oc.fn as OrderedSetKind, columns[column]!, columns, { ...set, value }, distinctValues, ordered) }]
      }
      const bare = (): AggregateFold => createFold(oc.fn, column, columns, oc.sumColumn, oc.countColumn, oc.order, delimiter, oc.deviation, oc.regression)
      const flag = oc.presentColumn
      const fold = flag === undefined ? bare : (): AggregateFold => new CoalescedFold(bare(), column, flag, columns)
      if (oc.distinctColumn === undefined) return [{ column, fold }]
      const distinctColumn = oc.distinctColumn
      // A value's group is empty when its count is 0 (count, and avg's hidden count) or its sum NULL.
      const present = oc.fn === 'sum' ? { index: column, isCount: false } : { index: oc.countColumn ?? column, isCount: true }
      return [{ column, fold: () => new DistinctValueFold(fold(), columns, present, distinctColumn, distinctValues) }]
    })
    for (const a of this.aggregates) a.fold()
    this.aggregating = plan.groupBy !== null || this.aggregates.length > 0 || plan.having !== null
    for (const k of plan.orderBy) this.requireOrdered(k.column, 'order')
    this.orderColumns = plan.orderBy.map((k) => orderedAs(k, this.output[k.column]!))
    for (const c of plan.groupBy ?? []) this.requireOrdered(c, 'group')
    if (plan.distinct) for (let c = 0; c < plan.visibleColumns; c++) this.requireOrdered(c, 'deduplicate (DISTINCT)')
    for (const w of plan.windows ?? []) {
      if (!isIntegerType(this.output[w.column]?.typeOid ?? 0)) throw new MergeError(`the shards described window column ${w.column + 1} as other than an integer`, 'XX000')
      for (const c of w.partition) this.requireOrdered(c, 'partition a window by')
      for (const k of w.order) this.requireOrdered(k.column, 'order a window by')
    }
    this.having = plan.having ? new HavingFilter(plan.having, this.output, param) : undefined
    this.seen = plan.distinct ? new Set() : undefined
    this.toSkip = count(plan.offset, 'OFFSET', param) ?? 0
    // An existence test's outer query makes at most one row, which every shard holding a match answers.
    this.remaining = Math.min(count(plan.limit, 'LIMIT', param) ?? Infinity, plan.existence === 'filter' ? 1 : Infinity)
    this.limitReached = this.remaining === 0
    const cap = plan.countCap
    if (cap) this.countCap = { limit: count(cap.limit, 'LIMIT', param) ?? Infinity, offset: count(cap.offset, 'OFFSET', param) ?? 0 }
    this.queues = Array.from({ length: shardCount }, () => [])
    this.heads = new Array<number>(shardCount).fill(0)
    this.ended = new Array<boolean>(shardCount).fill(false)
    this.shares = Array.from({ length: shardCount }, () => ({ skipped: 0, kept: 0 }))
    this.totalRows = new Array<Row | null | undefined>(shardCount).fill(undefined)
    this.rowNumbers = !this.aggregating && plan.windows !== undefined ? new RowNumbering(plan.windows, this.output) : undefined
    if (plan.totals === undefined) this.totalValues = new Map()
    else if (this.aggregating) throw new MergeError('window totals in a query that aggregates', 'XX000')
  }

  /**
   * Each shard's part of the answer so far, when its rows are not aggregated: the rows OFFSET skipped come first
   * in the shard's own order, then those kept (its rows are taken in that order).
   */
  rowShares(): readonly RowShare[] {
    return this.shares
  }

  /** Client-facing column info (hidden columns removed; avg columns get numeric/float8 type). */
  outputColumns(): ColumnInfo[] {
    return this.output.slice(0, this.plan.visibleColumns)
  }

  /** No row will be ready beyond those take() returns: the LIMIT is reached or every shard has ended. */
  get done(): boolean {
    return this.limitReached || this.endedCount === this.shardCount
  }

  /**
   * The shards whose next rows the merge needs before it can give more: for an ordered merge those that have
   * none queued and have not ended, otherwise every shard that has not ended. None once done.
   */
  waitingOn(): number[] {
    if (this.done) return []
    const ordered = !this.aggregating && this.plan.orderBy.length > 0
    return this.ended.flatMap((ended, s) => (!ended && (!ordered || this.buffered(s) === 0) ? [s] : []))
  }

  /** Rows held for a shard while the ordered merge waits for the others (for backpressure). */
  buffered(shard: number): number {
    return this.queues[shard] ? this.queues[shard].length - this.heads[shard] : 0
  }

  /** Raw column values of one row, as the server sent them. */
  push(shard: number, row: Row): void {
    this.checkShard(shard)
    if (this.ended[shard]) throw new MergeError(`shard ${shard} sent a row after the end of its result`, 'XX000')
    if (row.length !== this.columns.length) {
      throw new MergeError(`shard ${shard} sent a row of ${row.length} columns; ${this.columns.length} were described`, '08P01')
    }
    if (this.limitReached) return
    if (this.totalValues === undefined && this.totalRows[shard] === undefined) {
      this.totalRows[shard] = row
      this.mergeTotals()
    }
    if (this.aggregating) this.accumulate(row)
    else if (this.plan.orderBy.length === 0) this.emit(row, shard)
    else {
      this.queues[shard].push({ row, keys: this.orderKeys(row) })
      this.drain()
    }
  }

  end(shard: number): void {
    this.checkShard(shard)
    if (this.ended[shard]) return
    this.ended[shard] = true
    this.endedCount++
    if (this.limitReached) return
    if (this.totalValues === undefined && this.totalRows[shard] === undefined) {
      this.totalRows[shard] = null
      this.mergeTotals()
    }
    if (this.aggregating) {
      if (this.endedCount === this.shardCount) this.finishGroups()
    } else if (this.plan.orderBy.length > 0) this.drain()
  }

  /** Rows ready for the client, visible columns only, in final order. */
  take(): Row[] {
    const rows = this.ready
    this.ready = []
    return rows
  }

  private checkShard(shard: number): void {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.shardCount) {
      throw new MergeError(`no shard ${shard} in this merge of ${this.shardCount}`, 'XX000')
    }
  }

  private requireOrdered(column: number, what: string): void {
    const col = this.output[column]
    if (!col) throw new MergeError(`the scatter plan refers to column ${column + 1}, which the shards do not return`, 'XX000')
    if (!canOrderColumn(col)) throw unsupported(col.typeOid, what)
  }

  private decode(row: Row, column: number): SqlValue | null {
    const raw = row[column]
    const col = this.output[column]
    return raw === null ? null : decodeColumn(raw, col)
  }

  private orderKeys(row: Row): (SqlValue | null)[] {
    return this.plan.orderBy.map((k, i) => {
      const raw = row[k.column]
      return raw === null ? null : decodeColumn(raw, this.orderColumns[i]!)
    })
  }

  private compareKeyed(a: Keyed, b: Keyed): number {
    return compareRowKeys(this.plan.orderBy, a.keys, b.keys)
  }

  private drain(): void {
    while (!this.limitReached) {
      let best = -1
      for (let s = 0; s < this.shardCount; s++) {
        if (this.heads[s] >= this.queues[s].length) {
          if (!this.ended[s]) return
          continue
        }
        if (best < 0 || this.compareKeyed(this.queues[s][this.heads[s]], this.queues[best][this.heads[best]]) < 0) best = s
      }
      if (best < 0) return
      const queue = this.queues[best]
      const item = queue[this.heads[best]++]
      if (this.heads[best] >= QUEUE_COMPACT_AT && this.heads[best] * 2 >= queue.length) {
        queue.splice(0, this.heads[best])
        this.heads[best] = 0
      }
      this.emit(item.row, best)
    }
  }

  /**
   * Once every shard's totals are known (its first row came, or it ended without one): their merge, and the rows
   * that waited for it.
   */
  private mergeTotals(): void {
    if (this.totalValues !== undefined || this.totalRows.includes(undefined)) return
    const values = new Map<number, Buffer | null>()
    for (const { column, fn } of this.plan.totals ?? []) {
      const fold = createFold(fn, column, this.columns)
      for (const row of this.totalRows) if (row) fold.add(row)
      values.set(column, fold.result())
    }
    this.totalValues = values
    const waiting = this.awaitingTotals
    this.awaitingTotals = []
    for (const [row, shard] of waiting) if (!this.limitReached) this.emit(row, shard)
  }

  /** `shard`: where the row came from (-1: a merged group). */
  private emit(row: Row, shard: number): void {
    if (this.totalValues === undefined) {
      this.awaitingTotals.push([row, shard])
      return
    }
    if (this.totalValues.size > 0) {
      row = row.slice()
      for (const [column, value] of this.totalValues) row[column] = value
    }
    if (this.rowNumbers !== undefined) row = this.rowNumbers.number(row, (r, column) => this.decode(r, column))
    const on = this.plan.distinctOn ?? 0
    if (on > 0) {
      const key = JSON.stringify(this.plan.orderBy.slice(0, on).map((k) => this.equality(row, k.column)))
      if (key === this.lastDistinctOn) return
      this.lastDistinctOn = key
    }
    if (this.seen) {
      const key = JSON.stringify(row.slice(0, this.plan.visibleColumns).map((_, c) => this.equality(row, c)))
      if (this.seen.has(key)) return
      this.seen.add(key)
    }
    if (this.toSkip > 0) {
      this.toSkip--
      if (shard >= 0) this.shares[shard]!.skipped++
      return
    }
    if (shard >= 0) this.shares[shard]!.kept++
    this.ready.push(row.length === this.plan.visibleColumns ? row : row.slice(0, this.plan.visibleColumns))
    if (--this.remaining <= 0) {
      this.limitReached = true
      for (let s = 0; s < this.shardCount; s++) {
        this.queues[s] = []
        this.heads[s] = 0
      }
    }
  }

  private equality(row: Row, column: number): string | null {
    const v = this.decode(row, column)
    return v === null ? null : equalityKey(v)
  }

  private accumulate(row: Row): void {
    const key = this.plan.groupBy === null ? '' : JSON.stringify(this.plan.groupBy.map((c) => this.equality(row, c)))
    let group = this.groups.get(key)
    if (!group) {
      // Copied: a row's buffers may be slices of a large network read that a long-lived group would pin.
      group = { first: row.map((b) => (b === null ? null : Buffer.from(b))), folds: this.aggregates.map((a) => a.fold()) }
      this.groups.set(key, group)
    }
    for (const fold of group.folds) fold.add(row)
  }

  /** The count of the rows LIMIT n OFFSET m leaves of `total`: min(n + m, total) − m, at least 0. */
  private capped(total: Buffer, cap: { limit: number; offset: number }): Buffer {
    const { typeOid, format } = this.output[0]!
    const sum = decodeValue(total, typeOid, format)
    if (sum.kind !== 'int') throw new MergeError('the shards counted rows as a non-integer', 'XX000')
    const kept = Math.max(0, Math.min(cap.limit + cap.offset, Number(sum.value)) - cap.offset)
    return encodeValue({ kind: 'int', value: BigInt(kept) }, typeOid, format)
  }

  private finishGroups(): void {
    if (this.groups.size === 0 && (this.plan.groupBy?.length ?? 0) === 0) {
      // Aggregates without GROUP BY answer one row even over no rows (count 0, the others NULL); the shards
      // answer none when they group by values the proxy folds (DistinctValueFold).
      this.groups.set('', { first: this.columns.map(() => null), folds: this.aggregates.map((a) => a.fold()) })
    }
    let rows: Row[] = []
    for (const group of this.groups.values()) {
      const row = group.first.slice()
      this.aggregates.forEach((a, i) => (row[a.column] = group.folds[i].result()))
      if (this.countCap) row[0] = this.capped(row[0]!, this.countCap)
      rows.push(row)
    }
    this.groups.clear()
    if (this.having) rows = rows.filter((row) => this.having!.keeps(row))
    for (const w of this.plan.windows ?? []) numberRows(rows, w, this.output[w.column]!, (row, column) => this.decode(row, column))
    if (this.plan.orderBy.length > 0) {
      rows = rows
        .map((row) => ({ row, keys: this.orderKeys(row) }))
        .sort((a, b) => this.compareKeyed(a, b))
        .map((k) => k.row)
    }
    for (const row of rows) {
      if (this.limitReached) break
      this.emit(row, -1)
    }
  }
}

/** A LIMIT or OFFSET value; undefined for none (absent, ALL or NULL). */
function count(ref: ValueRef | null, what: 'LIMIT' | 'OFFSET', param: (n: number) => BoundParam | undefined): number | undefined {
  if (ref === null || 'null' in ref) return undefined
  let n: number
  if ('literal' in ref) n = numberText(ref.literal)
  else {
    const p = param(ref.param)
    if (p === undefined) throw new MergeError(`no value is bound to parameter $${ref.param}`, '08P01')
    if (p.value === null) return undefined
    if (typeof p.value !== 'string' && p.format === 1) {
      const v = p.value
      n = v.length === 8 ? Number(v.readBigInt64BE(0)) : v.length === 4 ? v.readInt32BE(0) : v.length === 2 ? v.readInt16BE(0) : NaN
    } else n = numberText(p.value.toString())
    if ('negate' in ref && ref.negate) n = -n
  }
  if (!Number.isFinite(n)) throw new MergeError(`invalid ${what} value`, '22P02')
  if (n < 0) throw new MergeError(`${what} must not be negative`, what === 'LIMIT' ? '2201W' : '2201X')
  return Math.round(n)
}

/** string_agg's delimiter as bytes of its result: text's UTF-8, bytea's (written `\x…` in text); null for NULL. */
function delimiterValue(ref: ValueRef, col: ColumnInfo, param: (n: number) => BoundParam | undefined): Buffer | null {
  let value: Buffer | string | null
  let binary = false
  if ('null' in ref) value = null
  else if ('literal' in ref) value = ref.literal
  else {
    const p = param(ref.param)
    if (p === undefined) throw new MergeError(`no value is bound to parameter $${ref.param}`, '08P01')
    value = p.value
    binary = p.format === 1
  }
  if (value === null) return null
  if (binary || stringAggResultType(col.typeOid) !== TypeOid.bytea) return typeof value === 'string' ? Buffer.from(value, 'utf8') : value
  const text = value.toString()
  if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex')
  if (!text.includes('\\')) return Buffer.from(text, 'utf8')
  throw new MergeError('a bytea delimiter of string_agg in escape form (write it as \\x…)', '0A000')
}

function numberText(text: string): number {
  return text.trim() === '' ? NaN : Number(text)
}

/** An ORDER BY key's column as it orders: by the collation a COLLATE clause names, else the column's own. */
function orderedAs(key: OrderKey, col: ColumnInfo): ColumnInfo {
  if (key.collation === undefined) return col
  const collation = namedCollation(key.collation, col.collation ?? BYTE_ORDER)
  if (collation === undefined) {
    throw new MergeError(
      `cannot order by collation "${key.collation}" when merging results from several shards`,
      '0A000',
      'order by C, POSIX, "default", an ICU collation (und-x-icu, de-DE-x-icu …) or a libc locale (en_US …), or pin the key to one shard',
    )
  }
  return { ...col, collation }
}
