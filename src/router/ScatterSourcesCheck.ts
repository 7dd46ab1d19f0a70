// Whether the shards' answers to a read scattered over every shard add up to the whole answer: each FROM level's
// sharded tables, and subqueries in FROM over them, joined on their keys (of one key type; a subquery's is a key
// column it outputs as it is), outer joins that keep only rows holding a sharded row,
// subqueries over sharded tables tied on co-located keys, windows and groups of subqueries in FROM on a key, no
// aggregate or unknown function the merge cannot combine, and GROUP BY aliases that are not also columns.
// Refuses (Refusal, 0A000) what would give a part of the answer, naming what to write instead.
import type { FunctionVolatility } from './FunctionVolatility.js'
import { FEATURE_NOT_SUPPORTED, Refusal, tableLabel } from './Refusal.js'
import { keyFamily, type ShardedTable, type ShardMap } from './ShardMap.js'
import type { TableColumns } from './TableColumns.js'
import type { NullExtendedGroups } from './ast/NullExtendedGroups.js'
import type { DerivedSources, JoinTree, LevelColumn, ScatterPlan, ScatterSources, TableRef } from './StatementPlan.js'

export class ScatterSourcesCheck {
  constructor(
    private readonly map: ShardMap,
    private readonly volatility: FunctionVolatility,
    private readonly columns: TableColumns,
  ) {}

  /**
   * Refuses a scatter whose shards' answers would not add up to the whole answer; the plan to run, which counts
   * distinct values in the proxy when a count, sum or avg of DISTINCT x is not of a sharding key.
   */
  check(plan: ScatterPlan, searchPath: string[]): ScatterPlan {
    const sources = plan.sources
    for (const ref of sources.nested) {
      const table = this.map.shardedTable(ref, searchPath)
      if (table) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `a subquery over sharded table ${tableLabel(ref)} in a read across shards: each shard would see only its own rows of ${tableLabel(ref)}`,
          `pin the key to one shard, or join ${tableLabel(ref)} on its sharding key ${table.key} instead`,
        )
      }
    }
    // A set operation's SELECTs are answered by every shard on its own: each must be that shard's share of its rows.
    if (sources.union === true) {
      if (sources.keyedBy !== undefined) {
        this.checkKeyedSetOperation(sources, searchPath, 'the statement')
        return plan
      }
      for (const branch of sources.derived) {
        // A SELECT over no sharded table gives every shard the same rows: a UNION's merge keeps one of each.
        if (!this.checkLevel(branch, searchPath, true) && !plan.distinct) {
          throw new Refusal(
            FEATURE_NOT_SUPPORTED,
            `a UNION ALL across shards whose ${branch.alias} reads no sharded table: every shard would return its rows`,
            'use UNION (which removes the duplicates), or run that SELECT on its own',
          )
        }
      }
      return plan
    }
    // count(*) of a subquery whose groups (or distinct rows) are not each on one shard: pgshard counts the rows of
    // the subquery read across shards on its own.
    if (plan.countRows !== undefined) {
      if (this.combinesAcrossShards(sources.derived[0]!, searchPath)) return { ...plan, countRows: { ...plan.countRows, plan: this.check(plan.countRows.plan, searchPath) } }
      const { countRows: _, ...shardsCount } = plan
      plan = shardsCount
    }
    // Groups computed whole by each shard: right only when all of a group's rows are on one shard.
    const whole = sources.wholeGroups
    if (whole !== undefined && !this.keyInEach(whole.keys, sources, searchPath)) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `a read across shards grouped by what is not a sharding key, which pgshard cannot merge: ${whole.unmergeable}`,
        'group by the sharding key (each group is then on one shard), pin the key to one shard, or use /* pgshard: shard=NAME */',
      )
    }
    for (const name of sources.aliasGroups ?? []) this.checkAliasGroup(name, sources.relations)
    // An existence test's own level reads no sharded table: only its subquery's table is on every shard.
    if (plan.existence === undefined) this.checkLevel(sources, searchPath, false)
    if (sources.windowKeys !== undefined && !this.keyInEach(sources.windowKeys, sources, searchPath)) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        'a window function in a read across shards whose windows are not all partitioned by a sharding key: each shard would compute it over its own rows only',
        'PARTITION BY the sharding key (of a table not on the outer side of a join) in every window, so that each partition is on one shard; or pin the key to one shard',
      )
    }
    if (plan.limited !== undefined) plan = { ...plan, limited: plan.limited.map((l) => ({ ...l, spread: this.spread(sources.derived[l.derived]!, searchPath) })) }
    const byValues = sources.distinctArgs.some((c) => c === null || this.map.shardedTable(sources.relations[c.relation]!, searchPath)?.key !== c.column)
    if (!byValues) return plan
    if (plan.byDistinctValues === undefined) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        'an aggregate of DISTINCT values (count, sum, avg) or an ordered-set aggregate (percentile_cont, percentile_disc, mode) in a read across shards that pgshard cannot rewrite to fold the values itself',
        'aggregate a plain column (count(DISTINCT t.col), … WITHIN GROUP (ORDER BY t.col)), pin the key to one shard, or aggregate the values in the application',
      )
    }
    return { ...plan, ...plan.byDistinctValues }
  }

  /** Whether a FROM level's rows are spread over the shards: it reads a sharded table, itself or in a subquery in FROM. */
  private spread(level: ScatterSources, searchPath: string[]): boolean {
    return level.relations.some((ref) => this.map.shardedTable(ref, searchPath) !== undefined) || level.derived.some((d) => this.spread(d, searchPath))
  }

  /** `GROUP BY name`, planned as the output alias `name`: Postgres groups by a column of that name if FROM has one. */
  private checkAliasGroup(name: string, relations: TableRef[]): void {
    for (const ref of relations) {
      const has = this.columns.hasColumn(ref, name)
      if (has === false) continue
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        has
          ? `GROUP BY ${name} in a read across shards: ${tableLabel(ref)} has a column ${name}, which Postgres groups by, not the output column of that name`
          : `GROUP BY ${name} in a read across shards: it is an output alias, unless ${tableLabel(ref)} has a column of that name, and pgshard has not read ${tableLabel(ref)}'s columns since it was made or changed`,
        has
          ? `write the grouped expression, or its position (GROUP BY 1), if you meant the output column; qualify the column with its table or alias if you meant it`
          : 'RELOAD (or SIGHUP) makes pgshard read the catalogs again (DDL through pgshard has them read within 30 s); or group by the expression or its position',
        has === undefined,
      )
    }
  }

  /**
   * A subquery over a sharded table tied to a relation of the FROM level: exact on each shard only when a tie
   * joins the two tables' sharding keys (co-located: of one key type), so that every row it reads for an outer
   * row is on that row's shard; tables it joins with that one must be reference tables (every shard has their
   * rows). A subquery over reference tables only reads the same rows everywhere.
   */
  private checkCorrelated(c: Correlated, sources: { relations: TableRef[] }, searchPath: string[]): void {
    const sharded = this.shardedOf(c.tables, searchPath)
    if (sharded.length === 0 || this.colocatedTie(c, sources, searchPath) !== undefined) return
    const refused = (detail: string) =>
      new Refusal(
        FEATURE_NOT_SUPPORTED,
        `a subquery over sharded table ${detail}: each shard would see only its own rows of it`,
        'tie the subquery on the sharding keys (its table\u2019s key = the outer table\u2019s key), join only reference tables with it, pin the key to one shard, or join the table on its sharding key instead',
      )
    if (sharded.length > 1) throw refused(`${sharded.map((i) => tableLabel(c.tables[i]!)).join(', ')} in a read across shards, which joins several sharded tables`)
    const inner = c.tables[sharded[0]!]!
    const table = this.map.shardedTable(inner, searchPath)!
    const tie = c.ties.find((t) => t.table === sharded[0])
    if (tie === undefined) throw refused(`${tableLabel(inner)} in a read across shards, tied to the outer query by a reference table only`)
    const outer = this.map.shardedTable(sources.relations[tie.outer.relation]!, searchPath)
    const why = outer?.key === tie.outer.column && table.key === tie.innerColumn ? `sharding keys of different types (${outer.keyType}, ${table.keyType}), not placed alike` : 'which are not both sharding keys'
    throw refused(`${tableLabel(inner)} in a read across shards, tied to ${tableLabel(sources.relations[tie.outer.relation]!)}.${tie.outer.column} by ${tableLabel(inner)}.${tie.innerColumn}, ${why}`)
  }

  /**
   * The outer relation a subquery is tied to on co-located sharding keys, when it reads one sharded table (and
   * reference tables); its index in `tables` too.
   */
  colocatedTie(c: Correlated, sources: { relations: TableRef[] }, searchPath: string[]): { outer: number; table: number } | undefined {
    const sharded = this.shardedOf(c.tables, searchPath)
    if (sharded.length !== 1) return undefined
    const inner = this.map.shardedTable(c.tables[sharded[0]!]!, searchPath)!
    const tie = c.ties.find(({ outer, table: i, innerColumn }) => {
      const table = this.map.shardedTable(sources.relations[outer.relation]!, searchPath)
      return i === sharded[0] && table !== undefined && this.map.colocatedBy(table, outer.column, inner, innerColumn)
    })
    return tie === undefined ? undefined : { outer: tie.outer.relation, table: tie.table }
  }

  /** The indexes of the sharded tables among `tables`. */
  private shardedOf(tables: TableRef[], searchPath: string[]): number[] {
    return tables.flatMap((t, i) => (this.map.shardedTable(t, searchPath) === undefined ? [] : [i]))
  }

  /**
   * Refuses a FROM level (the statement's, or a subquery in FROM) whose rows on each shard are not that shard's
   * share of its rows; answers whether its rows are spread over the shards (it reads a sharded table).
   */
  private checkLevel(sources: ScatterSources | DerivedSources, searchPath: string[], derived: boolean): boolean {
    if (derived && sources.union === true) return this.checkUnion(sources as DerivedSources, searchPath)
    const derivedSpread = sources.derived.map((d) => this.checkLevel(d, searchPath, true))
    const sharded = sources.relations.map((ref) => this.map.shardedTable(ref, searchPath))
    this.checkColocated(sources, sharded, derivedSpread, searchPath)
    const spread = sharded.some((t) => t !== undefined) || derivedSpread.some((s) => s)
    // Its subqueries elsewhere (WHERE, the select list) may read sharded tables even when its FROM does not.
    for (const c of sources.correlated) this.checkCorrelated(c, sources, searchPath)
    // A subquery over reference tables only gives every shard the same rows, whatever it computes.
    if (derived && !spread) return false
    const uncovered = uncoveredJoin(sources.join, (leaf) => ('relation' in leaf ? sharded[leaf.relation] !== undefined : derivedSpread[leaf.derived]!))
    // Its kept rows come from every shard, which the merge regroups: exact for aggregates that ignore them.
    const regrouped = !derived && uncovered !== undefined && 'relation' in uncovered && regroupsKeptRows((sources as ScatterSources).nullExtendedGroups, sharded)
    if (uncovered !== undefined && !regrouped) {
      const what =
        'relation' in uncovered ? `reference table ${tableLabel(sources.relations[uncovered.relation]!)}` : 'derived' in uncovered ? 'a subquery over no sharded table' : `${uncovered.function}()`
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `an outer join across shards that keeps rows of ${what} without a row of a sharded table: every shard would return them`,
        'make the sharded table the preserved side (FROM sharded LEFT JOIN reference …), use an inner join, or group it and aggregate only columns of the sharded table, with aggregates that skip NULLs (count(t.id), not count(*)), filtering and grouping by the reference table\u2019s',
      )
    }
    // Grouped by a sharding key, each shard computes its groups whole, with any aggregate.
    const combines = 'combines' in sources && sources.combines !== undefined
    const keyed = combines && !this.combinesAcrossShards(sources as DerivedSources, searchPath)
    if (combines && !keyed) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${sources.combines} in a subquery in FROM over sharded tables, in a read across shards: each shard would apply it to its own rows only`,
        'pin the key to one shard, or apply it in the outer query',
      )
    }
    // Groups each shard computes whole (the statement's, checked in check()) may use any aggregate too.
    if (!keyed && sources.wholeGroups === undefined) this.checkCalls(sources.calls)
    return spread
  }

  /**
   * Whether a subquery in FROM combines rows that may be on several shards. Grouped (or made DISTINCT, or its
   * windows partitioned) by a sharding key, every group's rows are on one shard: each shard computes its groups
   * whole, with any aggregate.
   */
  private combinesAcrossShards(d: DerivedSources, searchPath: string[]): boolean {
    return d.combines !== undefined && !(d.groupKeys !== undefined && this.keyInEach(d.groupKeys, d, searchPath))
  }

  /**
   * Refuses a set operation in FROM whose rows on each shard are not that shard's share of its rows: a SELECT over
   * no sharded table among SELECTs over sharded ones (every shard would return its rows), INTERSECT, EXCEPT or UNION
   * whose equal rows may be on two shards (no column holds the sharding key in every SELECT), LIMIT or OFFSET.
   * Answers whether its rows are spread.
   */
  private checkUnion(d: DerivedSources, searchPath: string[]): boolean {
    const spread = this.checkSetBranches(d, searchPath)
    if (!spread) return false
    if (d.keyedBy !== undefined) this.checkKeyedSetOperation(d, searchPath, `subquery ${d.alias}`)
    if (d.combines !== undefined) {
      throw new Refusal(FEATURE_NOT_SUPPORTED, `${d.combines} of a set operation in subquery ${d.alias}, in a read across shards: each shard would apply it to its own rows only`, 'pin the key to one shard, or apply it in the outer query')
    }
    return true
  }

  /**
   * Checks each SELECT of a set operation as a level; answers whether its rows are spread over the shards, and
   * refuses a SELECT over no sharded table among SELECTs over sharded ones (every shard would return its rows).
   */
  private checkSetBranches(sources: ScatterSources, searchPath: string[]): boolean {
    const spread = sources.derived.map((branch) => this.checkLevel(branch, searchPath, true))
    const alone = spread.indexOf(false)
    if (alone >= 0 && spread.some(Boolean)) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${sources.derived[alone]!.alias}, which reads no sharded table, in a read across shards: every shard would return its rows`,
        'read it in a query of its own, or pin the key to one shard',
      )
    }
    return alone < 0
  }

  /** Refuses INTERSECT, EXCEPT or a UNION left to the shards whose equal rows may be on two shards (no column holds the key in every SELECT). */
  private checkKeyedSetOperation(sources: ScatterSources, searchPath: string[], where: string): void {
    if (!this.checkSetBranches(sources, searchPath) || this.unionKeyOutputs(sources, searchPath) === undefined) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${sources.keyedBy} in ${where} across shards, whose SELECTs do not all output their sharding key in one column: equal rows may be on two shards`,
        sources.keyedBy === 'UNION' ? 'output the sharding key in the same column of every SELECT, use UNION ALL, or pin the key to one shard' : 'output the sharding key in the same column of every SELECT, or pin the key to one shard',
      )
    }
  }

  /**
   * Whether each list holds the sharding key of a relation that no outer join pads with NULLs: the rows with one
   * value of it are then on one shard (a padded key is NULL on every shard).
   */
  private keyInEach(lists: LevelColumn[][], sources: ScatterSources, searchPath: string[]): boolean {
    const padded = paddedLeaves(sources.join)
    const isKey = (k: LevelColumn) => !padded.has(leafOf(k)) && this.keyTypeOf(k, sources, searchPath) !== undefined
    return lists.every((columns) => columns.some(isKey))
  }

  /**
   * The key type when column `c` of a FROM level holds its rows' sharding key: a sharded table's key, or an output
   * column of a subquery in FROM that passes one on.
   */
  private keyTypeOf(c: LevelColumn, level: ScatterSources, searchPath: string[]): ShardedTable['keyType'] | undefined {
    if ('relation' in c) {
      const table = this.map.shardedTable(level.relations[c.relation]!, searchPath)
      return table?.key === c.column ? table.keyType : undefined
    }
    const inner = this.keyOutputs(level.derived[c.derived]!, searchPath)
    return inner?.names.includes(c.column) === true ? inner.type : undefined
  }

  /**
   * The names under which a subquery in FROM outputs the sharding key of its rows (`SELECT t.id AS uid`, `*`),
   * and its type. Its rows with a key value are on that value's shard, whichever name holds it: the tables of its
   * FROM level are joined on their keys (checkColocated).
   */
  private keyOutputs(d: DerivedSources, searchPath: string[]): { names: string[]; type: ShardedTable['keyType'] } | undefined {
    if (d.union === true) return this.unionKeyOutputs(d, searchPath)
    const names: string[] = []
    let type: ShardedTable['keyType'] | undefined
    for (const output of d.outputs) {
      const t = this.keyTypeOf(output.column, d, searchPath)
      if (t === undefined) continue
      names.push(output.name)
      type = t
    }
    for (const r of d.stars) {
      const table = this.map.shardedTable(d.relations[r]!, searchPath)
      if (table === undefined) continue
      names.push(table.key)
      type = table.keyType
    }
    for (const i of d.derivedStars) {
      const inner = this.keyOutputs(d.derived[i]!, searchPath)
      if (inner === undefined) continue
      names.push(...inner.names)
      type = inner.type
    }
    return type === undefined ? undefined : { names, type }
  }

  /**
   * The output columns of a UNION in FROM that hold the sharding key in every SELECT, of one key type and never
   * NULL for an outer join: a row's value there places it, whichever SELECT made it.
   */
  private unionKeyOutputs(d: ScatterSources, searchPath: string[]): { names: string[]; type: ShardedTable['keyType'] } | undefined {
    let type: ShardedTable['keyType'] | undefined
    const names = (d.unionColumns ?? []).flatMap((c) => {
      const types = c.branches.map((name, i) => {
        const branch = d.derived[i]!
        const output = branch.outputs.find((o) => o.name === name)
        return output === undefined || paddedLeaves(branch.join).has(leafOf(output.column)) ? undefined : this.keyTypeOf(output.column, branch, searchPath)
      })
      const first = types[0]
      if (first === undefined || types.some((t) => t === undefined || keyFamily(t) !== keyFamily(first))) return []
      type = first
      return [c.name]
    })
    return type === undefined ? undefined : { names, type }
  }

  /** Refuses calls the shards cannot answer as parts of one answer: aggregates pgshard does not merge, unknown functions. */
  private checkCalls(calls: string[]): void {
    for (const name of calls) {
      if (this.volatility.isAggregate(name)) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `the aggregate ${name}() in a read across shards: pgshard merges only count, sum, min, max, avg, bool_and, bool_or, array_agg and string_agg`,
          'pin the key to one shard, or aggregate with those functions',
        )
      }
      // Were it an aggregate, each shard would answer its own partial result and the client would get one row
      // per shard: a wrong answer, so an unknown name is refused until the catalog says what it is.
      if (!this.volatility.isKnown(name)) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `the function ${name}() in a read across shards: it is not in the catalog pgshard read from the shards, so pgshard cannot tell whether it is an aggregate`,
          'if it was created since pgshard started, RELOAD (or SIGHUP) makes pgshard read the catalog again; or pin the key to one shard',
        )
      }
    }
  }

  /**
   * Every sharded table of the FROM level, and every subquery in FROM over sharded tables, must be joined to the
   * others on its sharding key (a subquery's output of one), keys of one type.
   */
  private checkColocated(sources: ScatterSources, sharded: (ShardedTable | undefined)[], derivedSpread: boolean[], searchPath: string[]): void {
    const members: SpreadMember[] = []
    sharded.forEach((table, i) => {
      if (table === undefined) return
      const label = tableLabel(sources.relations[i]!)
      members.push({ label, columns: [`r${i}\u0000${table.key}`], name: `${label}.${table.key}`, type: table.keyType })
    })
    sources.derived.forEach((d, i) => {
      if (!derivedSpread[i]) return
      const keys = this.keyOutputs(d, searchPath)
      const label = `subquery ${d.alias}`
      if (keys === undefined) members.push({ label, columns: [], name: '', type: undefined })
      else members.push({ label, columns: keys.names.map((n) => `d${i}\u0000${n}`), name: `${d.alias}.${keys.names[0]}`, type: keys.type })
    })
    if (members.length < 2) return
    const keyless = members.find((m) => m.type === undefined)
    if (keyless !== undefined) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `a join across shards of ${keyless.label}, which reads sharded tables but outputs none of their sharding keys, with other sharded rows: pgshard cannot tell whether they are joined on their sharding keys`,
        'output the sharding key in the subquery (as it is or renamed: SELECT t.id AS uid …) and join on it, or pin the key to one shard',
      )
    }
    const parent = new Map<string, string>()
    const find = (k: string): string => {
      let root = k
      while (parent.has(root) && parent.get(root) !== root) root = parent.get(root)!
      return root
    }
    const union = (a: string, b: string) => {
      const [ra, rb] = [find(a), find(b)]
      if (ra !== rb) parent.set(ra, rb)
    }
    for (const m of members) for (const c of m.columns.slice(1)) union(m.columns[0]!, c)
    for (const [a, b] of sources.equalities) {
      union(columnNode(a), columnNode(b))
      // A foreign key declared as a parent places its rows with the parent's: their keys go together.
      if (!('relation' in a) || !('relation' in b)) continue
      const [ta, tb] = [sharded[a.relation], sharded[b.relation]]
      if (ta !== undefined && tb !== undefined && this.map.colocatedBy(ta, a.column, tb, b.column)) {
        union(columnNode({ relation: a.relation, column: ta.key }), columnNode({ relation: b.relation, column: tb.key }))
      }
    }
    const first = members[0]!
    const root = find(first.columns[0]!)
    for (const other of members.slice(1)) {
      if (find(other.columns[0]!) !== root) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `a join across shards: ${other.label} is not joined on its sharding key to ${first.label} (${other.name} = ${first.name}), so matching rows may be on different shards`,
          `add ${other.name} = ${first.name} to the join, both columns qualified (for an ORM association joined by an id, add the key to its join condition, or declare the foreign key in sharding.tables[].parents when each row is kept on its parent's shard), or pin both tables' keys to one shard`,
        )
      }
      if (keyFamily(other.type!) !== keyFamily(first.type!)) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `a join across shards of ${first.name} (${first.type}) with ${other.name} (${other.type}): keys of different types are not placed alike`,
        )
      }
    }
  }
}

type Correlated = ScatterSources['correlated'][number]

/**
 * The first leaf of a join tree whose rows a result row may hold without any sharded row (every shard would
 * produce such a row), or undefined when every result row holds a sharded row.
 */
type JoinLeaf = Exclude<JoinTree, { join: string }>

/** A leaf of `tree` whose rows an outer join keeps without a row of a sharded table, if any. */
function uncoveredJoin(tree: JoinTree, isSharded: (leaf: Exclude<JoinLeaf, { function: string }>) => boolean): JoinLeaf | undefined {
  const covered = (t: JoinTree): boolean => {
    if ('function' in t) return false
    if (!('join' in t)) return isSharded(t)
    if (t.join === 'inner') return covered(t.left) || covered(t.right)
    if (t.join === 'left') return covered(t.left)
    if (t.join === 'right') return covered(t.right)
    return covered(t.left) && covered(t.right)
  }
  if (covered(tree)) return undefined
  const leaves = (t: JoinTree): JoinLeaf[] => ('join' in t ? [...leaves(t.left), ...leaves(t.right)] : [t])
  return leaves(tree).find((leaf) => 'function' in leaf || !isSharded(leaf)) ?? leaves(tree)[0]
}

/** A member of a FROM level whose rows are spread over the shards: a sharded table, or a subquery in FROM over them. */
interface SpreadMember {
  /** How messages name it. */
  label: string
  /** The union-find nodes of the columns that hold its sharding key (none: a subquery that outputs no key). */
  columns: string[]
  /** How messages name its key column. */
  name: string
  type: ShardedTable['keyType'] | undefined
}

/** The union-find node of a FROM level's column. */
function columnNode(c: LevelColumn): string {
  return `${leafOf(c)}\u0000${c.column}`
}

/** The join tree leaf a FROM level's column belongs to. */
function leafOf(c: LevelColumn): string {
  return 'relation' in c ? `r${c.relation}` : `d${c.derived}`
}

/** The leaves (leafOf) of a join tree that an outer join may pad with NULLs (the inner side of LEFT or RIGHT, both of FULL). */
function paddedLeaves(tree: JoinTree): Set<string> {
  const out = new Set<string>()
  const walk = (t: JoinTree, padded: boolean): void => {
    if ('relation' in t || 'derived' in t) {
      if (padded) out.add('relation' in t ? `r${t.relation}` : `d${t.derived}`)
    } else if ('join' in t) {
      walk(t.left, padded || t.join === 'right' || t.join === 'full')
      walk(t.right, padded || t.join === 'left' || t.join === 'full')
    }
  }
  walk(tree, false)
  return out
}

/**
 * An aggregated level whose aggregates take only sharded tables' columns, ignoring NULLs, and whose filters and
 * groups name none: the rows of a reference table an outer join keeps add nothing to them (NullExtendedGroups).
 */
function regroupsKeptRows(groups: NullExtendedGroups | undefined, sharded: (ShardedTable | undefined)[]): boolean {
  return groups !== undefined && groups.argRelations.every((r) => sharded[r] !== undefined) && groups.keyRelations.every((r) => sharded[r] === undefined)
}
