// Plans a cross-shard read: the query each shard runs and how the proxy merges the answers so that the client
// gets what one Postgres holding every row would answer. Anything it cannot merge exactly is refused with a reason
// naming the construct (a wrong merge is far worse than a refusal).
//
// Shard query rewrites: AVG(x) becomes SUM(x) (keeping the column name) plus a hidden COUNT(x); ORDER BY keys,
// GROUP BY keys and HAVING aggregates missing from the output are appended as hidden columns; LIMIT n OFFSET m
// becomes LIMIT n + m; a grouped or aggregated query loses DISTINCT, HAVING, ORDER BY and LIMIT, which the proxy
// applies after regrouping. `*` stays as written: the merger learns its width from the shards' RowDescription.
//
// Which tables the SELECT reads is recorded, not judged, with its plan (LevelSources): whether a join is co-located or
// a subquery's table is a reference table depends on the shard map, which the Router holds.
import type { FuncCall, Node, ResTarget, SelectStmt, SortBy, TypeCast } from 'libpg-query'
import { relationColumn, type FromSources } from './ast/QueryScopes.js'
import { windowPartitionColumns, windowPartitions } from './ast/WindowPartitions.js'
import { combiningKeys, isStar, levelSources, outputName, rowCombining, tiedSubqueries } from './LevelSources.js'
import { DEVIATIONS, MERGEABLE, ORDERED_SETS, REGRESSIONS, UNMERGEABLE_AGGREGATES } from './MergeableAggregates.js'
import { nullExtendedGroups } from './ast/NullExtendedGroups.js'
import type {
  AggregateKind, ElementOrder, JoinTree, LimitedSubquery, MergedWindow, MergeExpr, OrderKey, OutputColumn, RelationColumn, ScatterPlan, TableRef, ValueRef,
} from './StatementPlan.js'
import { asNode, expressionKey, functionName, stringList, walkAst } from './ast/AstNode.js'
import { scalarTypeName, valueRefOf } from './ast/ValueRefs.js'
import { enclosingParenthesized, firstParenthesized, layoutCall, layoutSelect, withinGroupValue, type SelectLayout, type Span } from './SelectLayout.js'
import { SqlLexer, Tok } from './SqlLexer.js'
import { quoteIdent } from './SqlQuoting.js'
import { decodeBytes, type StatementText } from './StatementText.js'
import { parseSql } from './SqlParser.js'

export type ScatterResult = { scatter: ScatterPlan } | { unmergeable: string }

/** Aggregates only a select-list item of their own merges (the shards' text of string_agg is rewritten). */
const SELECT_LIST_ONLY = new Set<AggregateKind>(['string_agg', ...DEVIATIONS, ...REGRESSIONS, ...ORDERED_SETS])
const INTEGER_TYPES = new Set(['int2', 'int4', 'int8'])
/** The frame options of a window that names no frame (RANGE UNBOUNDED PRECEDING to the current row: all its peers). */
const DEFAULT_FRAME = 1058
/** Window functions the proxy computes itself over the merged groups of an aggregated query. */
const RANKING = new Set<MergedWindow['fn']>(['row_number', 'rank', 'dense_rank'])
/** Aggregates whose DISTINCT values the proxy folds once each when they are not sharding keys. */
const FOLDED_BY_VALUES = new Set<AggregateKind>(['count', 'sum', 'avg'])

/** How the marker of a subquery's share of rows (LimitedSubquery) starts in the shards' text. */
export const SHARE_MARKER = '/*pgshard:share:'
const COMPARISONS = new Set(['=', '<>', '!=', '<', '<=', '>', '>='])

/** Why a statement cannot be merged across shards: thrown while planning, returned as ScatterResult.unmergeable. */
export class Unmergeable extends Error {}

export function refuse(reason: string): never {
  throw new Unmergeable(reason)
}

/** Refuses a FROM level, or one of its subqueries in FROM, that reads what the router cannot judge (a CTE …). */
function refuseOther(from: FromSources): void {
  if (from.other !== undefined) refuse(`${from.other} across shards`)
  for (const d of from.derived) refuseOther(d.from)
}

/** The output column of a merged aggregate (not avg, whose sum and count are the planner's). */
function aggregateColumn(agg: Aggregate): Extract<OutputColumn, { kind: 'aggregate' }> {
  return { kind: 'aggregate', fn: agg.fn, ...(agg.order ? { order: agg.order } : {}) }
}

/**
 * array_agg's (or string_agg's) ORDER BY, which the merge repeats when it orders by the aggregated value itself
 * (`array_agg(x ORDER BY x DESC)`: each shard's array is sorted by its elements), and DISTINCT; other orders,
 * WITHIN GROUP and a delimiter that is not a constant are refused.
 */
function arrayOrder(call: FuncCall, name: 'array_agg' | 'string_agg'): { order?: ElementOrder } {
  if (call.agg_within_group === true) refuse(`${name}(…) WITHIN GROUP`)
  const args = name === 'string_agg' ? 2 : 1
  if (call.args?.length !== args || (name === 'string_agg' && !isConstant(call.args[1]))) refuse(`${name}() with a delimiter that is not a constant`)
  // DISTINCT sorts the values (ascending without ORDER BY): the merge sorts and keeps one of equal values.
  const distinct = call.agg_distinct === true ? ({ distinct: true } as const) : {}
  if (call.agg_order === undefined) return call.agg_distinct === true ? { order: { descending: false, nullsFirst: false, ...distinct } } : {}
  const sort = call.agg_order.length === 1 ? asNode(call.agg_order[0], 'SortBy') : undefined
  if (sort === undefined || sort.useOp !== undefined || expressionKey(sort.node) !== expressionKey(call.args[0])) {
    refuse(`${name}(x ORDER BY …) by other than x itself (each shard\u2019s part would be ordered by values the merge does not see)`)
  }
  return { order: { ...sortDirection(sort), ...distinct } }
}

/** A percentile's fractions given as an array (`ARRAY[0.5, 0.9]`, `'{0.5,0.9}'::float8[]`): answered with an array. */
function fractionArray(n: Node | undefined): boolean {
  return asNode(n, 'A_ArrayExpr') !== undefined || (asNode(n, 'TypeCast')?.typeName?.arrayBounds?.length ?? 0) > 0
}

/** A percentile's fraction, or array of them, made of literals and parameters only. */
function constantFractions(n: Node | undefined): boolean {
  const cast = asNode(n, 'TypeCast')
  if (cast !== undefined) return constantFractions(cast.arg)
  const array = asNode(n, 'A_ArrayExpr')
  return array !== undefined ? (array.elements ?? []).every(constantFractions) : isConstant(n)
}

/** A literal or a parameter, possibly cast: the same on every shard. */
function isConstant(n: Node | undefined): boolean {
  const cast = asNode(n, 'TypeCast')
  if (cast !== undefined) return isConstant(cast.arg)
  return asNode(n, 'A_Const') !== undefined || asNode(n, 'ParamRef') !== undefined
}

/** A cast to smallint, integer or bigint (as Postgres names them, or pg_catalog's). */
function isIntegerCast(cast: TypeCast): boolean {
  if (cast.typeName?.typmods !== undefined || !INTEGER_TYPES.has(scalarTypeName(cast.typeName) ?? '')) return false
  const names = stringList(cast.typeName?.names)
  return names !== null && names.length <= 2 && (names.length < 2 || names[0] === 'pg_catalog')
}

/**
 * The subquery of `SELECT count(*) FROM (SELECT … LIMIT n OFFSET m) sub` (Rails' `limit(n).count`, Django's
 * `qs[m:m + n].count()`), when nothing but its LIMIT and OFFSET combines rows and the outer query does nothing
 * else: each shard can count its first n + m rows and the proxy cap the sum.
 */
function countedLimit(s: SelectStmt): SelectStmt | undefined {
  const inner = countedSubquery(s)
  if (inner === undefined || (inner.limitCount === undefined && inner.limitOffset === undefined)) return undefined
  if (inner.limitOption === 'LIMIT_OPTION_WITH_TIES') return undefined
  return rowCombining({ ...inner, limitCount: undefined, limitOffset: undefined }) === undefined ? inner : undefined
}

/**
 * The subquery of `SELECT count(*) FROM (SELECT …) sub` when the outer query does nothing else: a plain SELECT
 * (no set operation, VALUES, WITH of its own or locking clause).
 */
function countedSubquery(s: SelectStmt): SelectStmt | undefined {
  const targets = s.targetList ?? []
  const call = targets.length === 1 ? asNode(asNode(targets[0], 'ResTarget')?.val, 'FuncCall') : undefined
  if (call?.agg_star !== true || functionName(call.funcname) !== 'count' || call.agg_filter !== undefined || call.over !== undefined) return undefined
  const outer = [s.whereClause, s.groupClause, s.havingClause, s.distinctClause, s.sortClause, s.limitCount, s.limitOffset, s.windowClause]
  if (outer.some((c) => c !== undefined) || s.fromClause?.length !== 1) return undefined
  const sub = asNode(s.fromClause[0], 'RangeSubselect')
  const inner = sub?.lateral === true ? undefined : asNode(sub?.subquery, 'SelectStmt')
  if (inner === undefined || inner.lockingClause !== undefined || inner.withClause !== undefined) return undefined
  if ((inner.op !== undefined && inner.op !== 'SETOP_NONE') || inner.valuesLists !== undefined) return undefined
  return inner
}

/**
 * Plans the scatter of the SELECT `s`, written at bytes [start, end) of `text`. `from` is its FROM level
 * (QueryScopes), `nested` the tables its subqueries read but for those tied to a FROM level (CorrelatedSubqueries).
 */
export function planScatter(
  s: SelectStmt,
  text: StatementText,
  start: number,
  end: number,
  from: FromSources | undefined,
  nested: TableRef[],
): ScatterResult {
  try {
    return { scatter: new ScatterBuilder(s, text, start, end).build(from, nested) }
  } catch (err) {
    if (!(err instanceof Unmergeable)) throw err
    return wholeGroups(s, text, start, end, from, nested, err.message) ?? { unmergeable: err.message }
  }
}

/**
 * A grouped SELECT the merge cannot regroup (an aggregate it does not merge, an ordered one …) planned as each
 * shard computing its groups whole: exact when the groups are by a sharding key, which the router decides
 * (ScatterSources.wholeGroups); the merge then only orders, limits and dedupes rows.
 */
function wholeGroups(s: SelectStmt, text: StatementText, start: number, end: number, from: FromSources | undefined, nested: TableRef[], unmergeable: string): ScatterResult | undefined {
  const keys = from === undefined || s.groupClause === undefined ? undefined : combiningKeys({ ...s, limitCount: undefined, limitOffset: undefined, distinctClause: undefined }, from)
  if (keys === undefined) return undefined
  try {
    const plan = new ScatterBuilder(s, text, start, end, true).build(from, nested)
    return { scatter: { ...plan, sources: { ...plan.sources, wholeGroups: { keys, unmergeable } } } }
  } catch (err) {
    if (err instanceof Unmergeable) return undefined
    throw err
  }
}

/**
 * The merge of an existence test (ExistenceTest): the shards' EXISTS answers ORed (`value`), or the one row of
 * constants that any shard answering it makes (`filter`: the merger keeps one).
 */
export function answeredByAnyShard(plan: ScatterPlan, form: 'value' | 'filter'): ScatterPlan {
  return form === 'value' ? { ...plan, columns: [{ kind: 'aggregate', fn: 'bool_or' }], groupBy: [], existence: form } : { ...plan, existence: form }
}

/** An aggregate call; `coalesced`: the whole item is COALESCE(call, constant); `order`: array_agg(x ORDER BY x)'s. */
type Aggregate = { fn: AggregateKind; call: FuncCall; coalesced?: true; order?: ElementOrder }

interface Edit {
  start: number
  end: number
  text: string
}

interface Hidden {
  text: string
  key: string | null
}

class ScatterBuilder {
  private readonly targets: ResTarget[]
  /** Indexes of the `*` / `t.*` items of the select list. */
  private readonly stars: number[]
  private layout!: SelectLayout
  private readonly columns: OutputColumn[] = []
  private readonly hidden: Hidden[] = []
  private readonly distinctArgs: (RelationColumn | null)[] = []
  /** The columns of count, sum and avg of DISTINCT x, with their calls (foldedByValues). */
  private readonly distinctCalls = new Map<number, FuncCall>()
  /** The columns of ordered-set aggregates, with the text of their ORDER BY value (foldedByValues). */
  private readonly orderedSets = new Map<number, { key: string; text: string }>()
  private from!: FromSources
  private readonly edits: Edit[] = []
  /** GROUP BY names taken as output aliases (aliasGroup). */
  private readonly aliasGroups: string[] = []

  constructor(
    private readonly s: SelectStmt,
    private readonly text: StatementText,
    private readonly start: number,
    private readonly end: number,
    /** Each shard computes its groups whole (wholeGroups): rows are merged as they come, aggregates as values. */
    private readonly groupsWhole = false,
  ) {
    this.targets = (s.targetList ?? []).map((t) => asNode(t, 'ResTarget') ?? {})
    this.stars = this.targets.flatMap((t, i) => (isStar(t.val) ? [i] : []))
  }

  build(from: FromSources | undefined, nested: TableRef[]): ScatterPlan {
    this.refuseShape(from)
    this.from = from!
    const layout = layoutSelect(this.text.bytes, this.start, this.end)
    if (layout === null || layout.targets.length !== this.targets.length) refuse('a SELECT whose text pgshard cannot map')
    if (this.targets.some((target, i) => target.location !== undefined && target.location !== layout.targets[i]!.start)) {
      refuse('a SELECT whose text pgshard cannot map')
    }
    if (layout.groupItems.length !== (this.s.groupClause?.length ?? 0)) refuse('a GROUP BY list pgshard cannot map')
    if (layout.orderItems.length !== (this.s.sortClause?.length ?? 0)) refuse('an ORDER BY list pgshard cannot map')
    this.layout = layout

    // Ranking windows are judged once it is known whether the query aggregates (mergedWindows).
    const ranking = new Map<number, FuncCall>()
    this.targets.forEach((t, i) => {
      const call = rankingWindow(t.val)
      if (call !== undefined) ranking.set(i, call)
    })
    const visible = this.targets.map((t, i) => (ranking.has(i) ? null : (this.coalescedAggregate(t.val) ?? this.classify(t.val))))
    const aggregated =
      !this.groupsWhole &&
      (visible.some((a) => a !== null) ||
        [...ranking.values()].some((call) => callsAggregate(call.over)) ||
        (this.s.groupClause?.length ?? 0) > 0 ||
        this.s.havingClause !== undefined ||
        (this.s.sortClause ?? []).some((o) => this.classify(asNode(o, 'SortBy')?.node) !== null))
    for (let i = 0; i < visible.length; i++) this.columns.push(this.stars.includes(i) ? { kind: 'star' } : { kind: 'value' })
    visible.forEach((agg, i) => {
      if (agg !== null) this.columns[i] = this.visibleAggregate(i, agg)
      if (agg !== null) this.noteDistinct(i, agg)
    })
    const groupBy = aggregated ? this.groupBy() : null
    const orderBy = this.orderBy()
    // Whole groups: each shard's HAVING keeps or drops whole groups.
    const having = this.s.havingClause !== undefined && !this.groupsWhole ? this.mergeExpr(this.s.havingClause) : null
    const totals = aggregated ? new Map<number, Aggregate>() : this.totalWindows()
    if (orderBy.some((k) => totals.has(k.column))) refuse('ORDER BY a window aggregate over all rows (every row has the same value)')
    const rowWindows = aggregated ? undefined : this.rowWindows(ranking, orderBy)
    const merged = new Set([...totals.values()].map((t) => t.call))
    if (rowWindows !== undefined) for (const call of ranking.values()) merged.add(call)
    const windowKeys = windowPartitionColumns(this.s, from, merged)
    const windows = windowKeys !== undefined && aggregated ? this.mergedWindows(ranking, windowKeys.length) : rowWindows
    const limit = limitValue(this.s.limitCount, 'LIMIT')
    const offset = limitValue(this.s.limitOffset, 'OFFSET')
    const distinct = layout.distinct !== null
    if (distinct && !aggregated && this.hidden.length > 0) refuse('SELECT DISTINCT with ORDER BY keys that are not in the select list')
    const distinctOn = (this.s.distinctClause ?? []).filter((d) => Object.keys(d).length > 0).length
    if (distinctOn > 0 && aggregated) refuse('DISTINCT ON with GROUP BY or aggregates')

    if (aggregated) {
      for (const clause of ['having', 'order', 'limit', 'offset', 'fetch'] as const) this.remove(layout.clauses.get(clause))
      if (layout.distinct !== null) this.remove(layout.distinct)
    } else if (offset !== null) this.foldOffset(layout, limit, offset)
    const countCap = this.capCount()
    const countRows = countCap ? undefined : this.countedRows()
    const limited = countCap ? [] : this.limitedSubqueries()
    this.keepRemovedParams()
    const lastTarget = layout.targets[layout.targets.length - 1]!
    if (this.hidden.length > 0) {
      this.edits.push({ start: lastTarget.end, end: lastTarget.end, text: this.hidden.map((h) => ', ' + h.text).join('') })
    }
    this.refuseBetweenStars([...orderBy.map((k) => k.column), ...(groupBy ?? []), ...mergeColumns(having), ...totals.keys()])
    const shardSql = this.rewrite(this.edits, this.columns.length)
    const byDistinctValues = this.distinctCalls.size > 0 || this.orderedSets.size > 0 ? this.foldedByValues() : undefined
    const level = levelSources(from!, [this.s.targetList, this.s.havingClause, this.s.sortClause])
    const nullExtended = aggregated && windows === undefined ? nullExtendedGroups(this.s, from!) : undefined
    return {
      shardSql,
      columns: this.columns,
      visibleColumns: this.targets.length,
      groupBy,
      distinct,
      ...(distinctOn > 0 ? { distinctOn } : {}),
      orderBy,
      limit,
      offset,
      having,
      ...(windows ? { windows } : {}),
      ...(totals.size > 0 ? { totals: [...totals].map(([column, t]) => ({ column, fn: t.fn })) } : {}),
      ...(countCap ? { countCap } : {}),
      ...(byDistinctValues ? { byDistinctValues } : {}),
      ...(limited.length > 0 ? { limited } : {}),
      ...(countRows ? { countRows } : {}),
      // Each shard locks the rows it returns: with LIMIT or OFFSET, its own first rows, more than the merge keeps.
      ...(this.s.lockingClause !== undefined && (limit !== null || offset !== null) ? { lockingLimit: true as const } : {}),
      sources: {
        ...level,
        nested,
        correlated: tiedSubqueries(this.s, from!),
        distinctArgs: this.distinctArgs,
        ...(nullExtended !== undefined ? { nullExtendedGroups: nullExtended } : {}),
        ...(windowKeys !== undefined && windows === undefined ? { windowKeys } : {}),
        ...(this.aliasGroups.length > 0 ? { aliasGroups: this.aliasGroups } : {}),
        // The proxy caps the count, or gives each shard its share of the rows: the subquery's LIMIT combines no
        // rows the shards must see together.
        derived: level.derived.map(({ combines, ...d }, i) => (countCap || limited.some((l) => l.derived === i) || combines === undefined ? d : { ...d, combines })),
      },
    }
  }

  /**
   * The select-list items of a query that does not aggregate that are aggregates over all its rows as windows
   * (`count(*) OVER ()`, cast to an integer type too, `sum(x) OVER ()`, also with FILTER): each shard computes its
   * own, which the merge adds up.
   */
  private totalWindows(): Map<number, Aggregate> {
    const totals = new Map<number, Aggregate>()
    this.targets.forEach((t, i) => {
      const cast = asNode(t.val, 'TypeCast')
      const call = asNode(cast !== undefined ? cast.arg : t.val, 'FuncCall')
      const over = call?.over
      if (call === undefined || over === undefined) return
      // OVER () as written: no partition, order, named window or frame of its own (one frame: all rows).
      if (over.partitionClause !== undefined || over.orderClause !== undefined || over.name !== undefined || over.refname !== undefined || over.frameOptions !== DEFAULT_FRAME) return
      if (call.agg_order !== undefined || call.agg_within_group === true || call.func_variadic === true) return
      const fn = MERGEABLE[functionName(call.funcname)]
      if (fn === undefined || fn === 'avg' || SELECT_LIST_ONLY.has(fn) || (cast !== undefined && (fn !== 'count' || !isIntegerCast(cast)))) return
      totals.set(i, { fn, call })
    })
    return totals
  }

  /**
   * The ranking windows of an aggregated query, which the proxy computes over the merged groups: every window
   * function of the level must be one (`count` of them), in the select list, with an inline OVER whose PARTITION
   * BY and ORDER BY items are select-list expressions, aggregates or columns (hidden columns when not in the list).
   */
  private mergedWindows(ranking: Map<number, FuncCall>, count: number): MergedWindow[] {
    const refused = 'a window function with GROUP BY or aggregates (pgshard computes only row_number(), rank() and dense_rank() in the select list over the merged groups, with OVER (PARTITION BY … ORDER BY …) of select-list expressions, aggregates or columns)'
    if (ranking.size !== count || this.stars.length > 0) refuse(refused)
    return [...ranking].map(([column, call]) => {
      const over = call.over!
      if (over.name !== undefined || over.refname !== undefined) refuse(refused)
      const partition = (over.partitionClause ?? []).map((n) => this.windowColumn(n, refused))
      const order = (over.orderClause ?? []).map((o) => {
        const sort = asNode(o, 'SortBy') ?? {}
        if (sort.useOp !== undefined) refuse(refused)
        return { column: this.windowColumn(sort.node, refused), ...sortDirection(sort) }
      })
      return { column, fn: functionName(call.funcname) as MergedWindow['fn'], partition, order }
    })
  }

  /**
   * row_number(), rank() and dense_rank() over all rows of a query that does not aggregate (a leaderboard: `rank()
   * OVER (ORDER BY score DESC) AS r … ORDER BY r LIMIT 10`), when they are all its windows, share one ORDER BY and
   * no PARTITION BY, and the statement orders first by one of them: each shard's rows then come in window order
   * (its own numbers order them alike), the merge orders by the window's keys (hidden columns when not in the list)
   * and numbers the merged rows before OFFSET (WindowNumbering). `orderBy` becomes the window's keys and the rest of
   * the statement's. Undefined when the query has no such windows.
   */
  private rowWindows(ranking: Map<number, FuncCall>, orderBy: OrderKey[]): MergedWindow[] | undefined {
    const first = orderBy[0]
    if (ranking.size === 0 || first === undefined || !ranking.has(first.column) || first.descending) return undefined
    if (windowPartitions(this.s)?.length !== ranking.size || this.s.distinctClause !== undefined) return undefined
    const calls = [...ranking.values()]
    const order = calls[0]!.over?.orderClause
    const orderKey = (items: Node[] | undefined) => (items ?? []).map((o) => expressionKey(o)).join('\u0000')
    const same = calls.every((c) => c.over?.partitionClause === undefined && c.over?.name === undefined && c.over?.refname === undefined && orderKey(c.over?.orderClause) === orderKey(order))
    if (!same || order === undefined) return undefined
    const refused = 'a window ordered by an item pgshard cannot map'
    const keys = order.map((o) => {
      const sort = asNode(o, 'SortBy') ?? {}
      if (sort.useOp !== undefined) refuse(refused)
      return { column: this.windowColumn(sort.node, refused), ...sortDirection(sort) }
    })
    // The statement's later keys break ties among peers; the window columns among them are the merge's own numbers.
    orderBy.splice(0, orderBy.length, ...keys, ...orderBy.filter((k) => !ranking.has(k.column)))
    return [...ranking].map(([column, call]) => ({ column, fn: functionName(call.funcname) as MergedWindow['fn'], partition: [], order: keys }))
  }

  /**
   * The output column of a window's PARTITION BY or ORDER BY item: a select-list expression, an aggregate, or a
   * column (a hidden one, written as its quoted name).
   */
  private windowColumn(n: Node | undefined, refused: string): number {
    const key = expressionKey(n)
    const same = this.targets.findIndex((t) => expressionKey(t.val) === key)
    if (same >= 0) return same
    if (this.classify(n) !== null) return this.columnFor(n, null)
    const fields = stringList(asNode(n, 'ColumnRef')?.fields)
    if (fields === null || fields.length === 0) refuse(refused)
    return this.addHidden(fields.map(quoteIdent).join('.'), { kind: 'value' }, key)
  }

  /**
   * count(*) of a subquery with LIMIT n OFFSET m: the subquery's OFFSET folded into its LIMIT for the shards,
   * and what the merger caps the sum of their counts with. Undefined for any other query.
   */
  private capCount(): ScatterPlan['countCap'] {
    const inner = countedLimit(this.s)
    const from = this.layout.clauses.get('from')
    if (inner === undefined || from === undefined) return undefined
    const inside = firstParenthesized(this.text.bytes, from.start, from.end)
    const layout = inside && layoutSelect(this.text.bytes, inside.start, inside.end)
    if (!layout) return refuse('a subquery in FROM whose text pgshard cannot map')
    const limit = limitValue(inner.limitCount, 'LIMIT')
    const offset = limitValue(inner.limitOffset, 'OFFSET')
    if (offset !== null) this.foldOffset(layout, limit, offset)
    return { limit, offset }
  }

  /**
   * The subqueries of the FROM level that only their LIMIT and OFFSET make more than each shard's share of their
   * rows (an ORM's first rows with their eager-loaded children): each is planned as a read of its own, and its
   * clause is replaced in the shards' text by a marker, where each shard's share goes (SharedSubqueries).
   */
  private limitedSubqueries(): LimitedSubquery[] {
    const from = this.layout.clauses.get('from')
    // A subquery of a statement with WITH may read its CTEs, which its own text lacks.
    if (from === undefined || this.s.withClause !== undefined) return []
    return this.from.derived.flatMap((d, index): LimitedSubquery[] => {
      const s = d.select
      if (rowCombining(s) !== 'LIMIT or OFFSET' || rowCombining({ ...s, limitCount: undefined, limitOffset: undefined }) !== undefined) return []
      if (s.withClause !== undefined || s.lockingClause !== undefined || s.limitOption === 'LIMIT_OPTION_WITH_TIES') return []
      if ((s.op !== undefined && s.op !== 'SETOP_NONE') || s.valuesLists !== undefined) return []
      const at = asNode(s.targetList?.[0], 'ResTarget')?.location
      const inner = at === undefined ? null : enclosingParenthesized(this.text.bytes, from.start, from.end, at)
      const layout = inner && layoutSelect(this.text.bytes, inner.start, inner.end)
      if (!inner || !layout || layout.targets[0]?.start !== at) return []
      if (this.text.bytes.includes(SHARE_MARKER)) refuse(`a statement that writes ${SHARE_MARKER}, pgshard's own marker`)
      const planned = planScatter(s, this.text, inner.start, inner.end, d.from, [])
      if ('unmergeable' in planned) refuse(`${planned.unmergeable} (in subquery ${d.alias}, whose LIMIT or OFFSET picks rows across shards)`)
      const clauses = (['limit', 'offset', 'fetch'] as const).flatMap((c) => layout.clauses.get(c) ?? [])
      const first = Math.min(...clauses.map((c) => this.remove(c)))
      const clause = this.text.slice(first, Math.max(...clauses.map((c) => c.end)))
      const marker = `${SHARE_MARKER}${index}*/`
      this.edits.push({ start: first, end: first, text: ` ${marker}` })
      return [{ derived: index, marker, clause, plan: planned.scatter }]
    })
  }

  /**
   * `SELECT count(*) FROM (sub) s` whose sub combines rows (GROUP BY, DISTINCT …): sub planned as a read of its
   * own, whose merged rows pgshard counts when the router finds the shards cannot count their parts. Undefined for
   * any other query, or a sub the merge cannot answer.
   */
  private countedRows(): ScatterPlan['countRows'] {
    const inner = countedSubquery(this.s)
    const d = this.from.derived[0]
    const from = this.layout.clauses.get('from')
    // Its text runs alone: a WITH of the statement's would be missing.
    if (inner === undefined || d?.select !== inner || rowCombining(inner) === undefined || from === undefined || this.s.withClause !== undefined) return undefined
    const at = asNode(inner.targetList?.[0], 'ResTarget')?.location
    const span = at === undefined ? null : enclosingParenthesized(this.text.bytes, from.start, from.end, at)
    const planned = span && planScatter(inner, this.text, span.start, span.end, d.from, [])
    if (!planned || !('scatter' in planned)) return undefined
    return { plan: planned.scatter, name: outputName(this.targets[0]!) ?? 'count' }
  }

  /** LIMIT n OFFSET m (or FETCH) of a SELECT laid out as `layout` becomes LIMIT n + m: each shard's first rows. */
  private foldOffset(layout: SelectLayout, limit: ValueRef | null, offset: ValueRef): void {
    const first = Math.min(...(['limit', 'offset', 'fetch'] as const).map((c) => this.remove(layout.clauses.get(c))))
    if (limit !== null) this.edits.push({ start: first, end: first, text: ` LIMIT ${int8(limit)} + ${int8(offset)}` })
  }

  /**
   * count, sum or avg of DISTINCT x: records which table's column x is, for the router to tell whether it is a
   * sharding key; null for an expression, or a column whose table cannot be told.
   */
  private distinctArg(call: FuncCall, name: string): void {
    if (call.args?.length !== 1) refuse(`${name}(DISTINCT …) of several values`)
    const fields = stringList(asNode(call.args[0], 'ColumnRef')?.fields)
    this.distinctArgs.push((fields !== null && fields.length > 0 ? relationColumn(this.from, fields) : undefined) ?? null)
  }

  /** Records aggregate column `column` (and avg's hidden count) for foldedByValues when it takes DISTINCT values. */
  private noteDistinct(column: number, agg: Aggregate): void {
    if (agg.call.agg_distinct !== true || !FOLDED_BY_VALUES.has(agg.fn)) return
    this.distinctCalls.set(column, agg.call)
    const planned = this.columns[column]
    if (planned?.kind === 'aggregate' && planned.countColumn !== undefined) this.distinctCalls.set(planned.countColumn, agg.call)
  }

  /**
   * With several stars, only the columns before the first and after the last have a known place in the shards'
   * rows: refuses a merge that needs one in between.
   */
  private refuseBetweenStars(columns: number[]): void {
    if (this.stars.length < 2) return
    const first = this.stars[0]!
    const last = this.stars.at(-1)!
    const aggregates = this.columns.flatMap((c, i) => (c.kind === 'aggregate' ? [i] : []))
    if ([...columns, ...aggregates].some((c) => c >= first && c <= last)) {
      refuse('a merge by a column between two * in the select list (name the columns)')
    }
  }

  private refuseShape(from: FromSources | undefined): void {
    const s = this.s
    if (s.op !== undefined && s.op !== 'SETOP_NONE') refuse(`a set operation (${s.op.replace('SETOP_', '')}) across shards`)
    if (s.valuesLists !== undefined) refuse('a VALUES list')
    if (s.intoClause !== undefined) refuse('SELECT … INTO')
    if (from === undefined) refuse('a SELECT whose FROM clause pgshard cannot map')
    refuseOther(from)
    const distinctOn = (s.distinctClause ?? []).filter((d) => Object.keys(d).length > 0).length
    if (distinctOn > 0 && (s.sortClause?.length ?? 0) < distinctOn) refuse('DISTINCT ON without ORDER BY starting with its expressions')
    if (s.limitOption === 'LIMIT_OPTION_WITH_TIES') refuse('FETCH FIRST … WITH TIES')
    if (s.groupDistinct === true || (s.groupClause ?? []).some((g) => asNode(g, 'GroupingSet') !== undefined)) {
      refuse('GROUPING SETS, ROLLUP or CUBE')
    }
  }

  /** The mergeable aggregate `n` is, null when `n` uses no aggregate; refuses any other use of aggregates. */
  private classify(n: Node | undefined): Aggregate | null {
    if (this.groupsWhole) return null
    const counted = this.castCount(n)
    if (counted !== null) return counted
    const call = asNode(n, 'FuncCall')
    const name = call !== undefined ? functionName(call.funcname) : ''
    const fn = MERGEABLE[name]
    if (call !== undefined && fn !== undefined && call.over === undefined) {
      // DISTINCT changes nothing for min, max, bool_and and bool_or; count, sum and avg of distinct keys add up
      // across shards, and of other values are folded by value (foldedByValues).
      if (call.agg_distinct === true && FOLDED_BY_VALUES.has(fn)) this.distinctArg(call, name)
      if (call.func_variadic === true) refuse(`${name}(VARIADIC …)`)
      if (call.agg_distinct === true && (DEVIATIONS.has(fn) || REGRESSIONS.has(fn) || fn === 'bit_xor')) refuse(`${name}(DISTINCT …)`)
      if (fn === 'array_agg' || fn === 'string_agg') return { fn, call, ...arrayOrder(call, fn) }
      if (ORDERED_SETS.has(fn)) return this.orderedSetCall(fn, call, name)
      if (call.agg_order !== undefined || call.agg_within_group === true) refuse(`an ordered aggregate ${name}(… ORDER BY …)`)
      return { fn, call }
    }
    walkAst(n, (tag, body) => {
      if (tag === 'SubLink') return false
      if (tag === 'JsonArrayAgg' || tag === 'JsonObjectAgg') refuse('JSON_ARRAYAGG/JSON_OBJECTAGG')
      // A window function is not an aggregate of the merge (windowKeys: the router checks its partitions).
      if (tag !== 'FuncCall' || (body as FuncCall).over !== undefined) return true
      const inner = functionName((body as FuncCall).funcname)
      if (UNMERGEABLE_AGGREGATES.has(inner)) refuse(`the aggregate ${inner}()`)
      if (MERGEABLE[inner] !== undefined && (body as FuncCall).over === undefined) {
        refuse(`an expression over the aggregate ${inner}() (only bare aggregates can be merged)`)
      }
      return true
    })
    return null
  }

  /**
   * `count(…)::int` (or another integer type, the usual way to get a count as a JavaScript number): the shards'
   * casted counts add up to the casted total, and a total out of the type's range is 22003 at the merge, as in
   * Postgres. Other casts of aggregates are refused: the shards' sum(x)::int round before adding, and min/max
   * of a cast need not be the cast of min/max.
   */
  /**
   * A select-list item COALESCE(agg(x), c) (Django's Sum(…, default=0), `coalesce(sum(x), 0)`): c a constant or
   * parameter, agg merged by the proxy (not avg, nor of DISTINCT values). Each shard computes the whole item (its
   * type is Postgres's), and a hidden flag of whether its agg(x) had a value (CoalescedFold).
   */
  private coalescedAggregate(n: Node | undefined): Aggregate | null {
    const args = asNode(n, 'CoalesceExpr')?.args
    if (args?.length !== 2 || !isConstant(args[1])) return null
    const agg = this.classify(args[0])
    if (agg === null || agg.fn === 'avg' || SELECT_LIST_ONLY.has(agg.fn) || agg.call.agg_distinct === true || asNode(args[0], 'FuncCall') !== agg.call) return null
    return { ...agg, coalesced: true }
  }

  private castCount(n: Node | undefined): Aggregate | null {
    const cast = asNode(n, 'TypeCast')
    if (cast === undefined || !isIntegerCast(cast)) return null
    const call = asNode(cast.arg, 'FuncCall')
    if (call === undefined || functionName(call.funcname) !== 'count') return null
    return this.classify(cast.arg)
  }

  private visibleAggregate(i: number, agg: Aggregate): OutputColumn {
    if (agg.coalesced) {
      const call = this.call(agg.call)
      const presentColumn = this.addHidden(`(${this.text.bytes.slice(agg.call.location!, call.end)}) IS NOT NULL`, { kind: 'value' }, null)
      return { ...aggregateColumn(agg), presentColumn }
    }
    if (agg.fn === 'string_agg') return this.stringAgg(i, agg)
    if (DEVIATIONS.has(agg.fn)) return this.deviation(agg)
    if (REGRESSIONS.has(agg.fn)) return this.regression(agg)
    if (ORDERED_SETS.has(agg.fn)) return this.orderedSet(i, agg)
    if (agg.fn !== 'avg') return aggregateColumn(agg)
    const call = this.call(agg.call)
    this.edits.push({ start: call.name.start, end: call.name.end, text: 'sum' })
    // Postgres names the column after the function: keep "avg" for the client.
    if (this.targets[i]!.name === undefined) {
      const at = this.layout.targets[i]!.end
      this.edits.push({ start: at, end: at, text: ' AS avg' })
    }
    return { kind: 'aggregate', fn: 'avg', sumColumn: i, countColumn: this.addCount(call) }
  }

  /**
   * A variance or standard deviation in the select list: each shard computes its own (which gives the column its
   * type and name) and, hidden, the parts the merge folds (DeviationParts).
   */
  private deviation(agg: Aggregate): OutputColumn {
    const call = this.call(agg.call)
    const bytes = this.text.bytes
    const x = `(${bytes.slice(call.args.start, call.args.end)})`
    const filter = call.filter !== null ? ' ' + bytes.slice(call.filter.start, call.filter.end) : ''
    const hidden = (text: string) => this.addHidden(`${text}${filter}`, { kind: 'value' }, null)
    const deviation = {
      count: this.addCount(call),
      sum: hidden(`sum(${x}::numeric)`),
      squares: hidden(`sum(${x}::numeric * ${x}::numeric)`),
      mean: hidden(`avg(${x})`),
      variance: hidden(`var_pop(${x})`),
    }
    return { kind: 'aggregate', fn: agg.fn, deviation }
  }

  /**
   * corr(y, x), covar_*(y, x) or regr_*(y, x) in the select list: each shard computes its own (which gives the
   * column its type and name) and, hidden, the parts the merge combines (RegressionParts).
   */
  private regression(agg: Aggregate): OutputColumn {
    const call = this.call(agg.call)
    const bytes = this.text.bytes
    const args = bytes.slice(call.args.start, call.args.end)
    const filter = call.filter !== null ? ' ' + bytes.slice(call.filter.start, call.filter.end) : ''
    const hidden = (fn: string) => this.addHidden(`${fn}(${args})${filter}`, { kind: 'value' }, null)
    const regression = { count: hidden('regr_count'), avgx: hidden('regr_avgx'), avgy: hidden('regr_avgy'), sxx: hidden('regr_sxx'), syy: hidden('regr_syy'), sxy: hidden('regr_sxy') }
    return { kind: 'aggregate', fn: agg.fn, regression }
  }

  /**
   * percentile_cont, percentile_disc or mode … WITHIN GROUP (ORDER BY x) in the select list: each shard computes
   * its own (which gives the column its type and name) and, hidden, count(x) and the fraction; foldedByValues
   * makes the shards group by x as well, so that the merge sees how many rows hold each value (OrderedSetFold).
   */
  private orderedSet(column: number, agg: Aggregate): OutputColumn {
    const call = this.call(agg.call)
    const sort = asNode(agg.call.agg_order?.[0], 'SortBy')!
    const trailingWords = (sort.sortby_dir === 'SORTBY_ASC' || sort.sortby_dir === 'SORTBY_DESC' ? 1 : 0) + (sort.sortby_nulls === 'SORTBY_NULLS_FIRST' || sort.sortby_nulls === 'SORTBY_NULLS_LAST' ? 2 : 0)
    const value = call.within === null ? null : withinGroupValue(this.text.bytes, call.within, trailingWords)
    if (value === null) refuse(`a ${agg.fn}() call pgshard cannot map`)
    const bytes = this.text.bytes
    const filter = call.filter !== null ? ' ' + bytes.slice(call.filter.start, call.filter.end) : ''
    const count = this.addHidden(`count(${value})${filter}`, { kind: 'value' }, null)
    const fractions = fractionArray(agg.call.args?.[0])
    const fraction = agg.fn === 'mode' ? undefined : this.addHidden(`(${bytes.slice(call.args.start, call.args.end)})::float8${fractions ? '[]' : ''}`, { kind: 'value' }, null)
    this.orderedSets.set(column, { key: expressionKey(sort.node), text: value })
    const { descending, collation } = sortDirection(sort)
    const parts = { count, ...(fraction !== undefined ? { fraction } : {}), ...(fractions ? { fractions: true as const } : {}), descending, ...(collation !== undefined ? { collation } : {}) }
    return { kind: 'aggregate', fn: agg.fn, orderedSet: parts }
  }

  /**
   * An ordered-set aggregate call the merge can fold: one ORDER BY value, and for a percentile a fraction, or an
   * array of them, of constants. Its value is folded by the proxy whatever the sharding key.
   */
  private orderedSetCall(fn: AggregateKind, call: FuncCall, name: string): Aggregate {
    const sort = call.agg_order?.length === 1 ? asNode(call.agg_order[0], 'SortBy') : undefined
    if (call.agg_within_group !== true || sort === undefined) refuse(`${name}() without WITHIN GROUP (ORDER BY one value)`)
    if (sort.useOp !== undefined) refuse(`${name}() WITHIN GROUP (ORDER BY … USING)`)
    const fraction = call.args?.[0]
    if (fn === 'mode' ? call.args !== undefined : call.args?.length !== 1 || !constantFractions(fraction)) refuse(`${name}() of a fraction that is not a constant`)
    this.distinctArgs.push(null)
    return { fn, call }
  }

  /**
   * string_agg(x, d [ORDER BY x]) in the select list: the shards run array_agg(x [ORDER BY x]) (a string cannot be
   * cut back into its values), named as Postgres names the item, and the merge joins the elements with d.
   */
  private stringAgg(i: number, agg: Aggregate): OutputColumn {
    const call = this.call(agg.call)
    const delimiter = valueRefOf(agg.call.args![1])
    if (delimiter === null) refuse('string_agg() with a delimiter pgshard cannot read')
    const lexer = new SqlLexer(this.text.bytes, call.args.start, call.args.end)
    let depth = 0
    let comma = -1
    let last = -1
    for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
      if (k === Tok.LParen) depth++
      else if (k === Tok.RParen) depth--
      if (depth === 0 && comma >= 0 && lexer.isWord('order')) break
      if (depth === 0 && k === Tok.Comma && comma < 0) comma = lexer.start
      else if (comma >= 0) last = lexer.end
    }
    if (comma < 0 || last < 0) refuse('a string_agg() call pgshard cannot map')
    this.edits.push({ start: call.name.start, end: call.name.end, text: 'array_agg' }, { start: comma, end: last, text: '' })
    if (this.targets[i]!.name === undefined) {
      const at = this.layout.targets[i]!.end
      this.edits.push({ start: at, end: at, text: ' AS string_agg' })
    }
    return { ...aggregateColumn(agg), delimiter }
  }

  private call(c: FuncCall): NonNullable<ReturnType<typeof layoutCall>> {
    const layout = c.location !== undefined ? layoutCall(this.text.bytes, c.location, this.end) : null
    if (layout === null) refuse('an aggregate call pgshard cannot map')
    return layout
  }

  private addCount(call: NonNullable<ReturnType<typeof layoutCall>>): number {
    const bytes = this.text.bytes
    const filter = call.filter !== null ? ' ' + bytes.slice(call.filter.start, call.filter.end) : ''
    return this.addHidden(`count(${bytes.slice(call.args.start, call.args.end)})${filter}`, { kind: 'aggregate', fn: 'count' }, null)
  }

  private addHidden(text: string, column: OutputColumn, key: string | null): number {
    if (key !== null) {
      const known = this.hidden.findIndex((h) => h.key === key)
      if (known >= 0) return this.targets.length + known
    }
    this.hidden.push({ text, key })
    this.columns.push(column)
    return this.columns.length - 1
  }

  /** The output column of an expression the proxy needs (ORDER BY / GROUP BY / HAVING), appended if missing. */
  private columnFor(n: Node | undefined, span: Span | null): number {
    const key = expressionKey(n)
    const same = this.targets.findIndex((t) => expressionKey(t.val) === key)
    if (same >= 0) return same
    const agg = this.classify(n)
    if (agg !== null) {
      if (SELECT_LIST_ONLY.has(agg.fn)) refuse(`${agg.fn}() other than as a select-list item of its own`)
      const call = this.call(agg.call)
      const callText = this.text.bytes.slice(agg.call.location!, call.end)
      if (agg.fn !== 'avg') {
        const column = this.addHidden(callText, aggregateColumn(agg), key)
        this.noteDistinct(column, agg)
        return column
      }
      const known = this.hidden.findIndex((h) => h.key === key)
      if (known >= 0) return this.targets.length + known
      const nameStart = call.name.start - agg.call.location!
      const nameEnd = call.name.end - agg.call.location!
      const sumText = callText.slice(0, nameStart) + 'sum' + callText.slice(nameEnd)
      const sumColumn = this.addHidden(sumText, { kind: 'aggregate', fn: 'avg' }, key)
      this.columns[sumColumn] = { kind: 'aggregate', fn: 'avg', sumColumn, countColumn: this.addCount(call) }
      this.noteDistinct(sumColumn, agg)
      return sumColumn
    }
    if (span === null) refuse('an expression pgshard cannot map')
    return this.addHidden(this.text.bytes.slice(span.start, span.end), { kind: 'value' }, key)
  }

  private groupBy(): number[] {
    return (this.s.groupClause ?? []).map((g, i) => {
      const position = positionOf(g)
      if (position !== null) return this.position(position, 'GROUP BY')
      const key = expressionKey(g)
      const same = this.targets.findIndex((t) => expressionKey(t.val) === key)
      if (same >= 0) return same
      const name = bareName(g)
      const aliased = name !== null ? this.targets.flatMap((t, i) => (t.name === name ? [i] : [])) : []
      return aliased.length > 0 ? this.aliasGroup(name!, aliased) : this.columnFor(g, this.layout.groupItems[i]!)
    })
  }

  /**
   * `GROUP BY name` where `name` is also an output alias: Postgres takes a column of FROM by that name first, the
   * alias only when there is none. Which one the shards group by, only the catalog tells: the plan takes the alias
   * and records the name, for the router to check that no table of FROM has such a column.
   */
  private aliasGroup(name: string, aliased: number[]): number {
    if (aliased.length > 1) refuse(`GROUP BY ${name}, which names several output columns`)
    const from = this.from
    // With one table in FROM, a select-list item `t.name` shows the column exists: the input column wins.
    const qualified = (t: ResTarget) => {
      const fields = stringList(asNode(t.val, 'ColumnRef')?.fields)
      return fields !== null && fields.length >= 2 && fields.at(-1) === name
    }
    const column = 'relation' in from.join ? this.targets.findIndex(qualified) : -1
    if (column >= 0) return column
    if (!onlyTables(from.join) || from.laterals.length > 0 || renamesColumns(this.s.fromClause)) {
      refuse(`GROUP BY ${name}, which is both an output alias and maybe a column of a subquery or function in FROM`)
    }
    this.aliasGroups.push(name)
    return aliased[0]!
  }

  private orderBy(): OrderKey[] {
    return (this.s.sortClause ?? []).map((o, i) => {
      const sort = asNode(o, 'SortBy') ?? {}
      if (sort.useOp !== undefined) refuse('ORDER BY … USING')
      return { column: this.orderColumn(sort.node, this.layout.orderItems[i]!.expr), ...sortDirection(sort) }
    })
  }

  private orderColumn(n: Node | undefined, span: Span): number {
    const position = positionOf(n)
    if (position !== null) return this.position(position, 'ORDER BY')
    // ORDER BY name: an output column name wins over an input column (SQL92 rule).
    const name = bareName(n)
    if (name !== null) {
      const named = this.targets.flatMap((t, i) => (outputName(t) === name ? [i] : []))
      if (named.length > 1) refuse(`ORDER BY ${name}, which names several output columns`)
      if (named.length === 1) return named[0]!
      // With one relation in FROM, the bare name is its column: the same as a qualified reference to it.
      const qualified = 'join' in this.from.join || 'function' in this.from.join ? -1 : this.targets.findIndex((t) => {
        const fields = stringList(asNode(t.val, 'ColumnRef')?.fields)
        return fields !== null && fields.length >= 2 && fields.at(-1) === name
      })
      if (qualified >= 0) return qualified
    }
    return this.columnFor(n, span)
  }

  /** The column of `ORDER BY n` / `GROUP BY n`: a position counts the columns a `*` stands for. */
  private position(n: number, clause: string): number {
    const star = this.stars[0]
    if (star !== undefined && n - 1 >= star) refuse(`${clause} position ${n} at or after a * in the select list (name the column)`)
    if (n < 1 || n > this.targets.length) refuse(`${clause} position ${n}`)
    return n - 1
  }

  private mergeExpr(n: Node): MergeExpr {
    const bool = asNode(n, 'BoolExpr')
    if (bool !== undefined) {
      const args = (bool.args ?? []).map((a) => this.mergeExpr(a))
      if (bool.boolop === 'AND_EXPR') return { op: 'and', args }
      if (bool.boolop === 'OR_EXPR') return { op: 'or', args }
      return { op: 'not', arg: args[0]! }
    }
    const nullTest = asNode(n, 'NullTest')
    if (nullTest !== undefined) {
      return { op: 'is_null', arg: this.mergeOperand(nullTest.arg), negated: nullTest.nulltesttype === 'IS_NOT_NULL' }
    }
    const expr = asNode(n, 'A_Expr')
    const op = stringList(expr?.name)?.join('.')
    if (expr?.kind === 'AEXPR_OP' && op !== undefined && COMPARISONS.has(op) && expr.lexpr !== undefined) {
      const cmp = (op === '!=' ? '<>' : op) as '=' | '<>' | '<' | '<=' | '>' | '>='
      return { op: 'compare', cmp, left: this.mergeOperand(expr.lexpr), right: this.mergeOperand(expr.rexpr) }
    }
    return refuse('a HAVING condition pgshard cannot evaluate after merging (use comparisons of aggregates and constants)')
  }

  private mergeOperand(n: Node | undefined): MergeExpr {
    const value = valueRefOf(n)
    if (value !== null) {
      if ('null' in value) return { op: 'const', value: null }
      if ('literal' in value) return { op: 'const', value: value.literal }
      if (value.negate !== true) return { op: 'param', param: value.param }
    }
    const key = expressionKey(n)
    if (this.classify(n) !== null || this.targets.some((t) => expressionKey(t.val) === key)) return { op: 'column', column: this.columnFor(n, null) }
    const groupIndex = (this.s.groupClause ?? []).findIndex((g) => expressionKey(g) === key)
    if (groupIndex >= 0) return { op: 'column', column: this.columnFor(n, this.layout.groupItems[groupIndex]!) }
    return refuse('a HAVING condition pgshard cannot evaluate after merging (use comparisons of aggregates and constants)')
  }

  /** Removes a span with the blanks before it; returns where the removal starts (Infinity for none). */
  private remove(span: Span | undefined): number {
    if (span === undefined) return Infinity
    let start = span.start
    // Not past a line break: it may end a `--` comment.
    while (start > this.start && (this.text.bytes[start - 1] === ' ' || this.text.bytes[start - 1] === '\t')) start--
    this.edits.push({ start, end: span.end, text: '' })
    return start
  }

  /**
   * A parameter that only appeared in removed text (HAVING, ORDER BY, LIMIT) is kept as a hidden column, so the
   * shard query takes the same Bind values as the client's statement.
   */
  private keepRemovedParams(): void {
    const removed = new Map<number, boolean>()
    for (const e of this.edits) {
      if (e.text !== '') continue
      const lexer = new SqlLexer(this.text.bytes, e.start, e.end)
      let prevLimit = false
      for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
        if (k === Tok.Param) removed.set(Number(this.text.bytes.slice(lexer.start + 1, lexer.end)), prevLimit)
        prevLimit = lexer.isWord('limit') || lexer.isWord('offset') || lexer.isWord('first') || lexer.isWord('next')
      }
    }
    if (removed.size === 0) return
    const kept = new Set<number>()
    const lexer = new SqlLexer(this.applyEdits() + this.hidden.map((h) => ', ' + h.text).join(''))
    for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
      if (k === Tok.Param) kept.add(Number(lexer.text.slice(lexer.start + 1, lexer.end)))
    }
    for (const [param, inLimit] of [...removed].sort((a, b) => a[0] - b[0])) {
      if (!kept.has(param)) this.addHidden(inLimit ? `($${param})::int8` : `($${param})::text`, { kind: 'value' }, null)
    }
  }

  private applyEdits(edits: readonly Edit[] = this.edits): string {
    const bytes = this.text.bytes
    edits = [...edits].sort((a, b) => a.start - b.start || a.end - b.end)
    let out = ''
    let at = this.start
    for (const e of edits) {
      out += bytes.slice(at, e.start) + e.text
      at = Math.max(at, e.end)
    }
    return out + bytes.slice(at, this.end)
  }

  /**
   * The plan for count, sum and avg of DISTINCT x of columns that are not sharding keys, and for ordered-set
   * aggregates: each x becomes a hidden column and a GROUP BY item of the shards' query, so that each shard
   * answers a row per value and the proxy folds each value once (DistinctValueFold), or counts its rows
   * (OrderedSetFold). Undefined when the text cannot be rewritten so.
   */
  private foldedByValues(): ScatterPlan['byDistinctValues'] {
    const columns = [...this.columns]
    const values = new Map<string, number>()
    const texts: string[] = []
    const valueColumn = (key: string, text: string | null): number | undefined => {
      let at = values.get(key)
      if (at === undefined) {
        if (text === null) return undefined
        at = columns.push({ kind: 'value' }) - 1
        values.set(key, at)
        texts.push(text)
      }
      return at
    }
    for (const [column, call] of this.distinctCalls) {
      const at = valueColumn(expressionKey(call.args?.[0]), this.distinctArgument(call))
      const planned = columns[column]
      if (at === undefined || planned?.kind !== 'aggregate') return undefined
      columns[column] = { ...planned, distinctColumn: at }
    }
    for (const [column, { key, text }] of this.orderedSets) {
      const at = valueColumn(key, text)
      const planned = columns[column]
      if (at === undefined || planned?.kind !== 'aggregate' || planned.orderedSet === undefined) return undefined
      columns[column] = { ...planned, orderedSet: { ...planned.orderedSet, value: at } }
    }
    const group = this.layout.clauses.get('group')
    const after = group ?? this.layout.clauses.get('where') ?? this.layout.clauses.get('from')
    if (after === undefined) return undefined
    const lastTarget = this.layout.targets[this.layout.targets.length - 1]!
    const edits: Edit[] = [
      ...this.edits,
      { start: lastTarget.end, end: lastTarget.end, text: texts.map((t) => ', ' + t).join('') },
      { start: after.end, end: after.end, text: (group ? ', ' : ' GROUP BY ') + texts.join(', ') },
    ]
    try {
      return { shardSql: this.rewrite(edits, columns.length), columns }
    } catch (err) {
      if (err instanceof Unmergeable) return undefined
      throw err
    }
  }

  /** The text of count(DISTINCT x)'s (or sum's, avg's) x as written (bytes, as the other edits), null if it cannot be found. */
  private distinctArgument(call: FuncCall): string | null {
    const layout = call.location !== undefined ? layoutCall(this.text.bytes, call.location, this.end) : null
    if (layout === null) return null
    const lexer = new SqlLexer(this.text.bytes, layout.args.start, layout.args.end)
    if (lexer.nextSignificant() !== Tok.Ident || !lexer.isWord('distinct')) return null
    const text = this.text.bytes.slice(lexer.end, layout.args.end).trim()
    return text === '' ? null : text
  }

  /** The shards' text: the statement with `edits` applied, checked to parse as one SELECT of `width` columns. */
  private rewrite(edits: readonly Edit[], width: number): string {
    if (edits.length === 0) return this.text.slice(this.start, this.end)
    const sql = decodeBytes(this.applyEdits(edits), false)
    if (rewrittenSelect(sql)?.targetList?.length !== width) refuse('a SELECT pgshard could not rewrite for the shards')
    return sql
  }
}

/**
 * The one SELECT a text rewritten for the shards parses as, undefined when it does not: every rewrite is checked by
 * the real parser, so that a shard never runs a text pgshard did not mean.
 */
export function rewrittenSelect(sql: string): SelectStmt | undefined {
  try {
    const stmts = parseSql(sql).stmts
    return stmts?.length === 1 ? asNode(stmts[0]?.stmt, 'SelectStmt') : undefined
  } catch {
    return undefined
  }
}

/**
 * The direction of an ORDER BY item (NULLs sort as if larger than any value unless it says otherwise), and the
 * collation its COLLATE clause names, if any.
 */
export function sortDirection(sort: SortBy): Pick<OrderKey, 'descending' | 'nullsFirst' | 'collation'> {
  const descending = sort.sortby_dir === 'SORTBY_DESC'
  const nullsFirst = sort.sortby_nulls === 'SORTBY_NULLS_FIRST' ? true : sort.sortby_nulls === 'SORTBY_NULLS_LAST' ? false : descending
  const collation = stringList(asNode(sort.node, 'CollateClause')?.collname)?.at(-1)
  return collation === undefined ? { descending, nullsFirst } : { descending, nullsFirst, collation }
}

/** `row_number()`, `rank()` or `dense_rank()` with an OVER clause (the proxy may compute it: mergedWindows). */
function rankingWindow(n: Node | undefined): FuncCall | undefined {
  const call = asNode(n, 'FuncCall')
  if (call?.over === undefined || (call.args?.length ?? 0) > 0 || call.agg_filter !== undefined) return undefined
  return RANKING.has(functionName(call.funcname) as MergedWindow['fn']) ? call : undefined
}

/** Whether an aggregate is called in `n` (outside subqueries and window functions' own calls). */
function callsAggregate(n: unknown): boolean {
  let found = false
  walkAst(n, (tag, body) => {
    if (tag === 'SubLink') return false
    if (tag === 'FuncCall' && (body as FuncCall).over === undefined) {
      const name = functionName((body as FuncCall).funcname)
      if (MERGEABLE[name] !== undefined || UNMERGEABLE_AGGREGATES.has(name)) found = true
    }
    return !found
  })
  return found
}

/** A LIMIT or OFFSET value the merge can read: a constant or a parameter (null for none, ALL or NULL). */
export function limitValue(n: Node | undefined, clause: string): ValueRef | null {
  if (n === undefined) return null
  const value = valueRefOf(n)
  if (value === null || ('param' in value && value.negate === true)) refuse(`a ${clause} expression`)
  return 'null' in value ? null : value
}

export function int8(v: ValueRef): string {
  if ('param' in v) return `($${v.param})::int8`
  return 'literal' in v ? `(${v.literal})::int8` : 'NULL'
}

/** The integer of `ORDER BY 2` / `GROUP BY 2`. */
function positionOf(n: Node | undefined): number | null {
  const c = asNode(n, 'A_Const')
  if (c === undefined || c.ival === undefined) return null
  return c.ival.ival ?? 0
}

/** The output columns a HAVING condition reads. */
function mergeColumns(e: MergeExpr | null): number[] {
  if (e === null) return []
  switch (e.op) {
    case 'column':
      return [e.column]
    case 'compare':
      return [...mergeColumns(e.left), ...mergeColumns(e.right)]
    case 'and':
    case 'or':
      return e.args.flatMap(mergeColumns)
    case 'not':
    case 'is_null':
      return mergeColumns(e.arg)
    default:
      return []
  }
}

/** Whether a FROM level joins tables only (no subquery or function: their columns are not in the catalog). */
function onlyTables(join: JoinTree): boolean {
  return 'relation' in join || ('join' in join && onlyTables(join.left) && onlyTables(join.right))
}

/** Whether a FROM clause gives its tables or joins column names of its own (`t AS x(a, b)`). */
function renamesColumns(from: Node[] | undefined): boolean {
  let renames = false
  walkAst(from, (tag, body) => {
    if ((tag === 'RangeVar' || tag === 'JoinExpr') && (body as { alias?: { colnames?: unknown[] } }).alias?.colnames !== undefined) renames = true
    return !renames
  })
  return renames
}

function bareName(n: Node | undefined): string | null {
  const fields = stringList(asNode(n, 'ColumnRef')?.fields)
  return fields !== null && fields.length === 1 ? fields[0]! : null
}
