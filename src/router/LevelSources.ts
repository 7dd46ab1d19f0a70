// What each FROM level of a read across shards reads, recorded for the router to judge with the shard map
// (ScatterSources): its tables, joins and column equalities, its subqueries in FROM (their outputs through which a
// sharding key passes, what combines their rows), set operations in FROM, and tied subqueries. Recorded, not
// judged: whether a join is co-located or a table a reference table depends on the map (ScatterSourcesCheck).
import type { FuncCall, Node, ResTarget, SelectStmt } from 'libpg-query'
import { asNode, functionName, stringList, walkAst } from './ast/AstNode.js'
import { correlatedSubqueries } from './ast/CorrelatedSubqueries.js'
import { levelColumn, type FromSources } from './ast/QueryScopes.js'
import { windowPartitionColumns } from './ast/WindowPartitions.js'
import { MERGEABLE, UNMERGEABLE_AGGREGATES } from './MergeableAggregates.js'
import type { DerivedSources, LevelColumn, ScatterSources } from './StatementPlan.js'

/**
 * What a FROM level reads (its tables, joins, subqueries in FROM) and the functions it calls in `merged`, the
 * parts whose results the proxy merges (for a subquery in FROM: its select list).
 */
export function levelSources(from: FromSources, merged: unknown[]): Omit<ScatterSources, 'nested' | 'correlated' | 'distinctArgs'> {
  const calls = new Set<string>()
  walkAst(merged, (tag, body) => {
    if (tag === 'SubLink') return false
    // A window function computes over its partition's rows, which the router makes sure one shard holds.
    if (tag === 'FuncCall' && (body as FuncCall).over === undefined) {
      const name = functionName((body as FuncCall).funcname)
      if (MERGEABLE[name] === undefined) calls.add(name)
    }
    return true
  })
  return {
    relations: from.relations.map((r) => r.table),
    join: from.join,
    equalities: from.equalities,
    calls: [...calls],
    derived: from.derived.map(derivedSources),
  }
}

/** A subquery in FROM (or a SELECT of a set operation) described as a level of its own. */
export function derivedSources({ select: s, from, alias, colnames }: FromSources['derived'][number]): DerivedSources {
  if (from.union === true) return unionSources(s, from, alias, colnames)
  const sources: DerivedSources = {
    ...levelSources(from, [s.targetList]),
    nested: [],
    correlated: tiedSubqueries(s, from),
    distinctArgs: [],
    alias,
    ...passedColumns(s, from, colnames),
  }
  const combines = rowCombining(s)
  if (combines !== undefined) {
    sources.combines = combines
    const keys = combiningKeys(s, from)
    if (keys !== undefined) sources.groupKeys = keys
  }
  return sources
}

/**
 * A set operation in FROM (UNION, INTERSECT, EXCEPT): its SELECTs are levels of their own. But for UNION ALL, it
 * combines rows (equal rows on two shards would both be kept, a row's match may be on another shard), as do its
 * LIMIT and OFFSET; the router finds whether a column that holds the sharding key in every SELECT makes the
 * shards' answers add up (keyedBy).
 */
function unionSources(s: SelectStmt, from: FromSources, alias: string, colnames: string[] | undefined): DerivedSources {
  const keyedBy = setOperationNeedingKey(s, false)
  const sources: DerivedSources = {
    relations: [],
    join: from.join,
    equalities: [],
    calls: [],
    derived: from.derived.map((b) => derivedSources({ ...b, alias: `${b.alias} of subquery ${alias}` })),
    nested: [],
    correlated: [],
    distinctArgs: [],
    alias,
    outputs: [],
    stars: [],
    derivedStars: [],
    union: true,
    unionColumns: unionColumns(from.derived.map((b) => b.select), colnames),
    ...(keyedBy !== undefined ? { keyedBy } : {}),
  }
  if (s.limitCount !== undefined || s.limitOffset !== undefined) sources.combines = 'LIMIT or OFFSET'
  return sources
}

/**
 * The set operation of the tree `s` whose answer over all rows is the shards' answers put together only when equal
 * rows are on one shard: INTERSECT or EXCEPT anywhere (a row's match may be on another shard), or a UNION whose
 * duplicates nothing removes later (in FROM, any UNION; in the statement, the merge removes those under a
 * top UNION). Undefined for UNION ALL all the way down.
 */
export function setOperationNeedingKey(s: SelectStmt, top: boolean): string | undefined {
  const walk = (n: SelectStmt, deduplicated: boolean): string | undefined => {
    if (n.op === undefined || n.op === 'SETOP_NONE') return undefined
    const name = n.op.replace('SETOP_', '')
    if (n.op !== 'SETOP_UNION') return name
    if (n.all !== true && !deduplicated) return 'UNION'
    return walk(n.larg ?? {}, deduplicated) ?? walk(n.rarg ?? {}, deduplicated)
  }
  return walk(s, top && s.op === 'SETOP_UNION' && s.all !== true)
}

/**
 * The output columns of a set operation over SELECTs `branches`: each by its name (an alias list's, or the first
 * SELECT's), and the name of the column each SELECT passes on in its place (null for an expression). None behind a `*`.
 */
export function unionColumns(branches: SelectStmt[], colnames: string[] | undefined): { name: string; branches: (string | null)[] }[] {
  const targets = branches.map((b) => (b.targetList ?? []).map((t) => asNode(t, 'ResTarget') ?? {}))
  if (targets.some((list) => list.some((t) => isStar(t.val)))) return []
  const passedName = (t: ResTarget | undefined): string | null => {
    const names = stringList(asNode(t?.val, 'ColumnRef')?.fields)
    return names === null || names.length === 0 ? null : (t?.name ?? names.at(-1)!)
  }
  return targets[0]!.map((t, i) => ({ name: colnames?.[i] ?? outputName(t) ?? '?column?', branches: targets.map((list) => passedName(list[i])) }))
}

/**
 * The output columns of a subquery in FROM that are columns of its FROM level as they are, named as the level
 * around it sees them (an alias list `AS x(a, b)` renames them by position), and its stars.
 */
export function passedColumns(s: SelectStmt, from: FromSources, colnames: string[] | undefined): Pick<DerivedSources, 'outputs' | 'stars' | 'derivedStars'> {
  const outputs: DerivedSources['outputs'] = []
  const stars: number[] = []
  const derivedStars: number[] = []
  const targets = s.targetList ?? []
  // Behind a star, positions depend on the tables' columns.
  if (colnames !== undefined && targets.some((t) => isStar(asNode(t, 'ResTarget')?.val))) return { outputs, stars, derivedStars }
  for (const [i, target] of targets.entries()) {
    const t = asNode(target, 'ResTarget')
    const fields = asNode(t?.val, 'ColumnRef')?.fields ?? []
    const names = stringList(fields)
    if (names !== null && names.length > 0) {
      const column = levelColumn(from, names)
      if (column !== undefined) outputs.push({ name: colnames?.[i] ?? t?.name ?? names.at(-1)!, column })
    } else if (asNode(fields.at(-1), 'A_Star') !== undefined) {
      const qualifier = stringList(fields.slice(0, -1))
      if (qualifier === null || qualifier.length === 0) {
        stars.push(...from.relations.map((_, i) => i))
        derivedStars.push(...from.derived.map((_, i) => i))
        continue
      }
      const star = levelColumn(from, [...qualifier, '*'])
      if (star !== undefined && 'relation' in star) stars.push(star.relation)
      else if (star !== undefined) derivedStars.push(star.derived)
    }
  }
  return { outputs, stars, derivedStars }
}

export function tiedSubqueries(s: SelectStmt, from: FromSources): ScatterSources['correlated'] {
  return correlatedSubqueries(s, from).map(({ tables, ties }) => ({ tables, ties }))
}

/**
 * The columns by whose equal values a subquery in FROM combines rows, when only GROUP BY (with its aggregates and
 * HAVING), a plain DISTINCT or window functions combine them: one list for the grouping, one per window function.
 * The router lets it scatter when each list holds a sharding key (every row of a group or partition is then on
 * one shard). Undefined when something else combines rows, or a list would be empty.
 */
export function combiningKeys(s: SelectStmt, from: FromSources): LevelColumn[][] | undefined {
  if (s.limitCount !== undefined || s.limitOffset !== undefined || s.groupDistinct === true) return undefined
  const targets = (s.targetList ?? []).map((t) => asNode(t, 'ResTarget')?.val)
  const column = (n: Node | undefined): LevelColumn | undefined => {
    const position = asNode(n, 'A_Const')?.ival
    if (position !== undefined) return column(targets[(position.ival ?? 0) - 1])
    const fields = stringList(asNode(n, 'ColumnRef')?.fields)
    return fields === null || fields.length === 0 ? undefined : levelColumn(from, fields)
  }
  const plainDistinct = s.distinctClause?.every((d) => Object.keys(d).length === 0) === true
  // DISTINCT ON, and aggregates over all rows, combine rows by no column.
  if (s.distinctClause !== undefined && !plainDistinct) return undefined
  if (s.groupClause === undefined && (s.havingClause !== undefined || combiningCalls(s.targetList).aggregate !== undefined)) return undefined
  const items = s.groupClause ?? (plainDistinct ? targets : undefined)
  if (items?.some((g) => asNode(g, 'GroupingSet') !== undefined)) return undefined
  const lists = [...(items !== undefined ? [items.flatMap((g) => column(g) ?? [])] : []), ...(windowPartitionColumns(s, from) ?? [])]
  return lists.length > 0 && lists.every((l) => l.length > 0) ? lists : undefined
}

/** The construct of a subquery in FROM that makes one of its rows depend on several rows it reads, if any. */
export function rowCombining(s: SelectStmt): string | undefined {
  if (s.groupClause !== undefined || s.groupDistinct === true) return 'GROUP BY'
  if (s.havingClause !== undefined) return 'HAVING'
  if (s.distinctClause !== undefined) return 'DISTINCT'
  if (s.limitCount !== undefined || s.limitOffset !== undefined) return 'LIMIT or OFFSET'
  const calls = combiningCalls(s.targetList)
  return calls.aggregate ?? (s.windowClause !== undefined || calls.window ? 'a window function' : undefined)
}

/** The first aggregate a select list calls (as an aggregate, not a window function), and whether it calls a window function. */
function combiningCalls(targets: Node[] | undefined): { aggregate?: string; window: boolean } {
  const found: { aggregate?: string; window: boolean } = { window: false }
  walkAst(targets, (tag, body) => {
    if (tag === 'SubLink' || found.aggregate !== undefined) return false
    if (tag === 'JsonArrayAgg' || tag === 'JsonObjectAgg') found.aggregate = 'an aggregate'
    if (tag !== 'FuncCall') return true
    const call = body as FuncCall
    const name = functionName(call.funcname)
    if (call.over !== undefined) found.window = true
    else if (MERGEABLE[name] !== undefined || UNMERGEABLE_AGGREGATES.has(name) || call.agg_star === true) found.aggregate = `the aggregate ${name}()`
    return true
  })
  return found
}

export function isStar(n: Node | undefined): boolean {
  return (asNode(n, 'ColumnRef')?.fields ?? []).some((f) => asNode(f, 'A_Star') !== undefined)
}

/** The column name Postgres gives a select-list item, as far as ORDER BY name can refer to it. */
export function outputName(t: ResTarget): string | undefined {
  if (t.name !== undefined) return t.name
  let n = t.val
  for (let cast = asNode(n, 'TypeCast'); cast !== undefined; cast = asNode(n, 'TypeCast')) n = cast.arg
  const fields = stringList(asNode(n, 'ColumnRef')?.fields)
  if (fields !== null && fields.length > 0) return fields[fields.length - 1]
  const call = asNode(n, 'FuncCall')
  return call !== undefined ? functionName(call.funcname) : undefined
}
