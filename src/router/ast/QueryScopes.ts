// Walks a statement query level by query level (the statement, each CTE, each subquery) to find, for every use of
// a table, the values its columns are pinned to by that level's own WHERE / JOIN ON / VALUES, and which RangeVars
// name a CTE rather than a table.
//
// Pins at one level: equalities with constants or parameters combined through AND (smallest set kept) and OR (only
// columns pinned in every branch, values united), never through NOT. `a.k = b.k` joins make equivalence classes;
// the ON clause of an outer join only constrains the rows of its nullable side, so it propagates pins from the
// preserved side to the nullable side and never back. An unqualified column belongs to the level's only relation,
// and only at the top level: in a subquery it could name a column of an outer query.
import type {
  ColumnRef, DeleteStmt, InsertStmt, MergeStmt, Node, RangeSubselect, RangeVar, SelectStmt, UpdateStmt, WithClause,
} from 'libpg-query'
import type { JoinTree, LevelColumn, RelationColumn, TableRef, ValueRef } from '../StatementPlan.js'
import { asNode, functionName, stringList, walkAst } from './AstNode.js'
import { pushdownTargets } from './DerivedPins.js'
import { tableRefOf, ValueSet, type ColumnValues } from './PinCollector.js'
import { valueRefOf } from './ValueRefs.js'

export interface TableUse {
  rv: RangeVar
  table: TableRef
  columns: ColumnValues
}

/** The FROM level of a top-level SELECT: its tables, how they are joined, and which of their columns are equal. */
export interface FromSources {
  relations: { rv: RangeVar; table: TableRef }[]
  join: JoinTree
  equalities: [LevelColumn, LevelColumn][]
  /**
   * Its subqueries in FROM (not LATERAL), each with its own FROM level, its alias and the column names an alias
   * list gives it; a JoinTree `derived` leaf indexes them.
   */
  derived: { select: SelectStmt; from: FromSources; alias: string; colnames?: string[] }[]
  /** Its LATERAL subqueries in FROM (each a JoinTree `function` leaf): what they read, CorrelatedSubqueries judges. */
  laterals: SelectStmt[]
  /** A FROM item that is neither a table, a plain subquery nor a function (a CTE, XMLTABLE …), if any. */
  other?: string
  /** The level of a set operation (UNION …) in FROM: `derived` are its SELECTs, each a level of its own, not joined. */
  union?: true
}

/**
 * The relation of a FROM level a column reference names, and the column: `col` with one relation (in the level's
 * FROM alone), `rel.col` of a relation named once, `schema.table.col` of a table without an alias.
 */
export function relationColumn(from: FromSources, fields: string[]): RelationColumn | undefined {
  const relations = from.relations
  const matches =
    fields.length === 1
      ? 'relation' in from.join ? [0] : []
      : fields.length === 2
        ? relations.flatMap(({ rv }, i) => ((rv.alias?.aliasname ?? rv.relname) === fields[0] ? [i] : []))
        : fields.length === 3
          ? relations.flatMap(({ rv }, i) => (rv.alias === undefined && rv.schemaname === fields[0] && rv.relname === fields[1] ? [i] : []))
          : []
  return matches.length === 1 ? { relation: matches[0]!, column: fields.at(-1)! } : undefined
}

/**
 * Like relationColumn, and also an output column of a subquery in FROM: `sub.col`, or `col` when the subquery is
 * the level's one FROM item.
 */
export function levelColumn(from: FromSources, fields: string[]): LevelColumn | undefined {
  const table = relationColumn(from, fields)
  if (table !== undefined) return table
  const column = fields.at(-1)!
  if (fields.length === 1) return 'derived' in from.join ? { derived: from.join.derived, column } : undefined
  const matches = fields.length === 2 ? from.derived.flatMap((d, i) => (d.alias === fields[0] ? [i] : [])) : []
  return matches.length === 1 && !from.relations.some(({ rv }) => (rv.alias?.aliasname ?? rv.relname) === fields[0]) ? { derived: matches[0]!, column } : undefined
}

export interface ScopeAnalysis {
  uses: TableUse[]
  /** RangeVars that name a CTE. */
  cteRefs: Set<RangeVar>
  /** For a SELECT statement: its own FROM level. */
  from?: FromSources
  /** For a UNION [ALL] of SELECTs (at any depth, no INTERSECT or EXCEPT): each SELECT's FROM level, in order. */
  branches?: { select: SelectStmt; from: FromSources }[]
}

export function analyzeScopes(stmt: Node): ScopeAnalysis {
  const walker = new ScopeWalker(asNode(stmt, 'SelectStmt'), inlinableCtes(stmt))
  walker.statement(stmt, new Map(), true)
  const analysis: ScopeAnalysis = { uses: walker.uses, cteRefs: walker.cteRefs }
  if (walker.from !== undefined) analysis.from = walker.from
  if (walker.branches !== undefined) analysis.branches = walker.branches
  return analysis
}

interface Relation {
  refname: string
  hasAlias: boolean
  schema?: string
  name?: string
  /** Set when the relation is a table (not a CTE, subquery or function). */
  rv?: RangeVar
  /** Set for a subquery in FROM that is not LATERAL. */
  subquery?: SelectStmt
  /** The column names its alias gives a subquery. */
  colnames?: string[]
  /** Set for a LATERAL subquery in FROM. */
  lateral?: SelectStmt
  /** What the relation is when it is not a table. */
  other?: 'cte' | 'subquery' | { function: string } | 'other'
}

/** A FROM item as relation indexes of its scope; a join keeps, for each USING column, the column it stands for. */
type FromTree =
  | { relation: number }
  | { join: 'inner' | 'left' | 'right' | 'full'; left: FromTree; right: FromTree; using: Map<string, string> }

type Range = [number, number]

interface Condition {
  expr?: Node
  equal?: [string, string]
  /** A column pinned by the query around this subquery (DerivedPins). */
  pin?: { column: Node; values: ValueRef[] }
  /** For an outer join's ON: the relation index ranges of its preserved and nullable sides. */
  preserved?: Range
  nullable?: Range
}

interface Facts {
  pins: Map<string, ValueRef[]>
  equal: [string, string][]
}

const NESTED_STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'])

/**
 * The CTEs visible at a query level, by name: for one read as a subquery in FROM (inlinableCtes), its SELECT and
 * the column names its definition gives it.
 */
type Ctes = ReadonlyMap<string, { select: SelectStmt; colnames: string[] | null } | undefined>

/**
 * The CTEs a FROM item naming them is read as a subquery of, as Postgres itself inlines them: a plain SELECT of a
 * non-recursive WITH, the only CTE of its name in the statement and named once in it. Named more often, each
 * reading would be the shard's own rows of one computation (an aggregate over it, in a subquery, would be a part).
 */
function inlinableCtes(stmt: Node): Set<SelectStmt> {
  // By name: the CTE's SELECT, or null when it cannot be inlined (recursive, not a SELECT, a name defined twice).
  const defined = new Map<string, SelectStmt | null>()
  const named = new Map<string, number>()
  walkAst(stmt, (tag, body) => {
    // A statement's WITH clause is a field of it, not a node of its own.
    const w = NESTED_STATEMENTS.has(tag) ? (body as { withClause?: WithClause }).withClause : undefined
    if (w !== undefined) {
      for (const c of w.ctes ?? []) {
        const cte = asNode(c, 'CommonTableExpr')
        const select = w.recursive === true ? undefined : asNode(cte?.ctequery, 'SelectStmt')
        const name = cte?.ctename ?? ''
        defined.set(name, defined.has(name) || select === undefined ? null : select)
      }
    }
    if (tag === 'RangeVar' && (body as RangeVar).schemaname === undefined) {
      const name = (body as RangeVar).relname ?? ''
      named.set(name, (named.get(name) ?? 0) + 1)
    }
    return true
  })
  const out = new Set<SelectStmt>()
  for (const [name, select] of defined) if (select !== null && named.get(name) === 1) out.add(select)
  return out
}

/** The SELECTs a set operation (UNION, INTERSECT, EXCEPT, nested) combines, left to right. */
function setBranches(s: SelectStmt): SelectStmt[] | undefined {
  if (s.op === undefined || s.op === 'SETOP_NONE') return [s]
  if (s.larg === undefined || s.rarg === undefined) return undefined
  const left = setBranches(s.larg)
  const right = setBranches(s.rarg)
  return left && right ? [...left, ...right] : undefined
}

class ScopeWalker {
  readonly uses: TableUse[] = []
  readonly cteRefs = new Set<RangeVar>()
  from?: FromSources
  branches?: { select: SelectStmt; from: FromSources }[]
  /** Subqueries in FROM of the root SELECT's FROM level and of theirs, at any depth: the scatter planner's levels. */
  private readonly levels = new Set<SelectStmt>()
  private readonly levelSources = new Map<SelectStmt, FromSources>()
  /** Pins the query around a subquery in FROM carries into it, by the SELECT they filter. */
  private readonly pushed = new Map<SelectStmt, { column: Node; values: ValueRef[] }[]>()

  constructor(
    private readonly root: SelectStmt | undefined,
    private readonly inlinable: ReadonlySet<SelectStmt>,
  ) {}

  statement(n: Node, ctes: Ctes, top: boolean): void {
    const select = asNode(n, 'SelectStmt')
    if (select !== undefined) return this.select(select, ctes, top)
    const insert = asNode(n, 'InsertStmt')
    if (insert !== undefined) return this.insert(insert, ctes, top)
    const update = asNode(n, 'UpdateStmt')
    if (update !== undefined) return this.update(update, ctes, top)
    const del = asNode(n, 'DeleteStmt')
    if (del !== undefined) return this.delete(del, ctes, top)
    const merge = asNode(n, 'MergeStmt')
    if (merge !== undefined) return this.merge(merge, ctes, top)
    // EXPLAIN, DECLARE, COPY (…), CREATE … AS: the query inside has no outer query either.
    this.nested(n, ctes, top)
  }

  /**
   * Queries nested anywhere in `tree` (sublinks, FROM subqueries, bodies of utility statements). A FROM subquery
   * that is not LATERAL sees no column of its own level, so it is as top-level as that level (`fromTop`).
   */
  private nested(tree: unknown, ctes: Ctes, top = false, fromTop = top): void {
    walkAst(tree, (tag, body) => {
      if (tag === 'RangeSubselect' && (body as RangeSubselect).lateral !== true) {
        const query = (body as RangeSubselect).subquery
        if (query !== undefined) this.statement(query, ctes, fromTop)
        return false
      }
      if (!NESTED_STATEMENTS.has(tag)) return true
      this.statement({ [tag]: body } as unknown as Node, ctes, top)
      return false
    })
  }

  /** Analyzes the CTE bodies and returns the names visible to the statement. */
  private withClause(w: WithClause | undefined, outer: Ctes, top: boolean): Ctes {
    if (w?.ctes === undefined) return outer
    const ctes = w.ctes.map((c) => asNode(c, 'CommonTableExpr'))
    const own = ctes.map((cte): [string, { select: SelectStmt; colnames: string[] | null } | undefined] => {
      const select = asNode(cte?.ctequery, 'SelectStmt')
      return [cte?.ctename ?? '', select !== undefined && this.inlinable.has(select) ? { select, colnames: stringList(cte?.aliascolnames) } : undefined]
    })
    const all = new Map([...outer, ...own])
    ctes.forEach((cte, i) => {
      const query = cte?.ctequery
      // A non-recursive CTE sees only the CTEs before it; its own name there is a table.
      const visible = w.recursive === true ? all : new Map([...outer, ...own.slice(0, i)])
      // One read as a subquery in FROM is a query level of its own (walked here, before the level that names it).
      const inlined = own[i]![1]
      if (inlined !== undefined) this.levels.add(inlined.select)
      if (query !== undefined) this.statement(query, visible, top)
    })
    return all
  }

  private select(s: SelectStmt, ctes: Ctes, top: boolean): void {
    const visible = this.withClause(s.withClause, ctes, top)
    if (s.op !== undefined && s.op !== 'SETOP_NONE') {
      // The SELECTs of a set operation are query levels (the scatter planner's), each with its own FROM, in the
      // statement and in FROM of a level.
      const branches = s === this.root || this.levels.has(s) ? setBranches(s) : undefined
      for (const b of branches ?? []) this.levels.add(b)
      if (s.larg !== undefined) this.select(s.larg, visible, top)
      if (s.rarg !== undefined) this.select(s.rarg, visible, top)
      this.nested([s.sortClause, s.limitCount, s.limitOffset], visible)
      const from = branches?.map((b) => this.levelSources.get(b))
      if (branches === undefined || !from!.every((f) => f !== undefined)) return
      const levels = branches.map((select, i) => ({ select, from: from![i]! }))
      if (s === this.root) this.branches = levels
      else this.levelSources.set(s, { relations: [], join: { function: 'a set operation' }, equalities: [], derived: levels.map((l, i) => ({ ...l, alias: `SELECT ${i + 1}` })), laterals: [], union: true })
      return
    }
    const scope = new Scope(top)
    const items = (s.fromClause ?? []).map((item) => this.fromItem(item, scope, visible))
    if (s.whereClause !== undefined) scope.conditions.push({ expr: s.whereClause })
    for (const pin of this.pushed.get(s) ?? []) scope.conditions.push({ pin })
    this.finish(scope)
    const level = s === this.root || this.levels.has(s)
    // A level's subqueries in FROM are levels too; they are walked (below) before this level's sources are built.
    if (level) for (const r of scope.relations) if (r.subquery !== undefined) this.levels.add(r.subquery)
    this.nested(
      [s.targetList, s.fromClause, s.whereClause, s.groupClause, s.havingClause, s.windowClause, s.valuesLists,
        s.sortClause, s.limitOffset, s.limitCount, s.distinctClause],
      visible,
      false,
      top,
    )
    if (!level) return
    const sources = scope.sources(items, (sub) => this.levelSources.get(sub))
    if (s === this.root) this.from = sources
    else this.levelSources.set(s, sources)
  }

  private insert(i: InsertStmt, ctes: Ctes, top: boolean): void {
    const visible = this.withClause(i.withClause, ctes, top)
    if (i.relation !== undefined) this.uses.push({ rv: i.relation, table: tableRefOf(i.relation), columns: valuesPins(i) })
    const values = asNode(i.selectStmt, 'SelectStmt')?.valuesLists
    if (values !== undefined) this.nested(values, visible)
    else if (i.selectStmt !== undefined) this.statement(i.selectStmt, visible, top)
    this.nested([i.onConflictClause, i.returningClause], visible)
  }

  private update(u: UpdateStmt, ctes: Ctes, top: boolean): void {
    const visible = this.withClause(u.withClause, ctes, top)
    const scope = new Scope(top)
    if (u.relation !== undefined) this.rangeVar(u.relation, scope, visible)
    for (const item of u.fromClause ?? []) this.fromItem(item, scope, visible)
    if (u.whereClause !== undefined) scope.conditions.push({ expr: u.whereClause })
    this.finish(scope)
    this.nested([u.targetList, u.fromClause, u.whereClause, u.returningClause], visible, false, top)
  }

  private delete(d: DeleteStmt, ctes: Ctes, top: boolean): void {
    const visible = this.withClause(d.withClause, ctes, top)
    const scope = new Scope(top)
    if (d.relation !== undefined) this.rangeVar(d.relation, scope, visible)
    for (const item of d.usingClause ?? []) this.fromItem(item, scope, visible)
    if (d.whereClause !== undefined) scope.conditions.push({ expr: d.whereClause })
    this.finish(scope)
    this.nested([d.usingClause, d.whereClause, d.returningClause], visible, false, top)
  }

  /** MERGE is routed by its tables only: which rows it touches depends on the join, so nothing is pinned. */
  private merge(m: MergeStmt, ctes: Ctes, top: boolean): void {
    const visible = this.withClause(m.withClause, ctes, top)
    const scope = new Scope(top)
    if (m.relation !== undefined) this.rangeVar(m.relation, scope, visible)
    if (m.sourceRelation !== undefined) this.fromItem(m.sourceRelation, scope, visible)
    for (const r of scope.relations) if (r.rv !== undefined) this.uses.push({ rv: r.rv, table: tableRefOf(r.rv), columns: new Map() })
    this.nested([m.sourceRelation, m.joinCondition, m.mergeWhenClauses, m.returningClause], visible, false, top)
  }

  private rangeVar(rv: RangeVar, scope: Scope, ctes: Ctes): void {
    const isCte = rv.schemaname === undefined && ctes.has(rv.relname ?? '')
    if (isCte) this.cteRefs.add(rv)
    const relation: Relation = {
      refname: rv.alias?.aliasname ?? rv.relname ?? '',
      hasAlias: rv.alias?.aliasname !== undefined,
      name: rv.relname ?? '',
    }
    if (rv.schemaname !== undefined) relation.schema = rv.schemaname
    const inlined = isCte ? ctes.get(rv.relname ?? '') : undefined
    if (!isCte) relation.rv = rv
    else if (inlined !== undefined) relation.subquery = inlined.select
    else relation.other = 'cte'
    // `FROM c AS x(a, b)` renames what `WITH c(p, q)` named (Postgres keeps the rest of the CTE's names).
    const colnames = [...(stringList(rv.alias?.colnames) ?? [])]
    for (const [i, name] of (inlined?.colnames ?? []).entries()) colnames[i] ??= name
    if (inlined !== undefined && colnames.length > 0) relation.colnames = colnames
    scope.relations.push(relation)
  }

  private fromItem(item: Node, scope: Scope, ctes: Ctes): FromTree {
    const rv = asNode(item, 'RangeVar')
    if (rv !== undefined) {
      this.rangeVar(rv, scope, ctes)
      return { relation: scope.relations.length - 1 }
    }
    const sample = asNode(item, 'RangeTableSample')
    if (sample?.relation !== undefined) return this.fromItem(sample.relation, scope, ctes)
    const join = asNode(item, 'JoinExpr')
    if (join === undefined) {
      const subquery = asNode(item, 'RangeSubselect')
      const fn = asNode(item, 'RangeFunction')
      const alias = subquery?.alias ?? fn?.alias
      const relation: Relation = { refname: alias?.aliasname ?? '', hasAlias: true, other: subquery !== undefined ? 'subquery' : fn !== undefined ? { function: rangeFunctionName(fn.functions) } : 'other' }
      const select = asNode(subquery?.subquery, 'SelectStmt')
      if (select !== undefined && subquery?.lateral === true) relation.lateral = select
      else if (select !== undefined) relation.subquery = select
      const colnames = stringList(alias?.colnames)
      if (colnames !== null && colnames.length > 0) relation.colnames = colnames
      scope.relations.push(relation)
      return { relation: scope.relations.length - 1 }
    }
    const a = scope.relations.length
    const left = join.larg !== undefined ? this.fromItem(join.larg, scope, ctes) : undefined
    const b = scope.relations.length
    const right = join.rarg !== undefined ? this.fromItem(join.rarg, scope, ctes) : undefined
    const c = scope.relations.length
    const kind = JOIN_KINDS[join.jointype ?? ''] ?? 'inner'
    const usingColumns = join.isNatural === true ? [] : (stringList(join.usingClause) ?? [])
    const tree: FromTree = { join: kind, left: left ?? { relation: -1 }, right: right ?? { relation: -1 }, using: new Map() }
    for (const col of usingColumns) {
      const l = left !== undefined ? usingColumn(left, col) : undefined
      const r = right !== undefined ? usingColumn(right, col) : undefined
      // The merged column of USING is the left one (INNER, LEFT), the right one (RIGHT), or COALESCE of both (FULL).
      const merged = kind === 'right' ? r : kind === 'full' ? undefined : l
      if (merged !== undefined) tree.using.set(col, merged)
      if (l !== undefined && r !== undefined && (b - a !== 1 || c - b !== 1 || kind === 'full')) scope.joinEqualities.push([l, r])
    }
    let sides: Pick<Condition, 'preserved' | 'nullable'>
    if (kind === 'inner') sides = {}
    else if (kind === 'left') sides = { preserved: [a, b], nullable: [b, c] }
    else if (kind === 'right') sides = { preserved: [b, c], nullable: [a, b] }
    else {
      // FULL JOIN: its ON restricts neither side's rows, but rows where both sides are present satisfy it.
      if (join.quals !== undefined) scope.joinConditions.push(join.quals)
      return tree
    }
    if (join.quals !== undefined) scope.conditions.push({ expr: join.quals, ...sides })
    // USING (k) equates the two sides' k when each side is a single relation (otherwise it is unclear which one).
    if (join.isNatural !== true && b - a === 1 && c - b === 1) {
      for (const col of usingColumns) {
        scope.conditions.push({ equal: [columnKey(a, col), columnKey(b, col)], ...sides })
      }
    }
    return tree
  }

  /** Records the level's table uses, and carries its pins on subqueries' columns into them (walked after). */
  private finish(scope: Scope): void {
    const columns = scope.pinnedColumns()
    scope.relations.forEach((r, i) => {
      if (r.rv !== undefined) this.uses.push({ rv: r.rv, table: tableRefOf(r.rv), columns: columns[i] ?? new Map() })
      if (r.subquery === undefined) return
      for (const [name, values] of columns[i] ?? []) {
        for (const { select, column } of pushdownTargets(r.subquery, name, r.colnames ?? []) ?? []) {
          const pins = this.pushed.get(select) ?? []
          pins.push({ column, values })
          this.pushed.set(select, pins)
        }
      }
    })
  }
}

const JOIN_KINDS: Record<string, 'inner' | 'left' | 'right' | 'full'> = {
  JOIN_INNER: 'inner', JOIN_LEFT: 'left', JOIN_RIGHT: 'right', JOIN_FULL: 'full',
}

/** The column key `col` of a FROM item stands for: its own for a relation, the merged one for a join USING it. */
function usingColumn(tree: FromTree, col: string): string | undefined {
  return 'relation' in tree ? columnKey(tree.relation, col) : tree.using.get(col)
}

/** The name of the (first) function of a FROM function item. */
function rangeFunctionName(functions: Node[] | undefined): string {
  const first = asNode(functions?.[0], 'List')?.items?.[0]
  return functionName(asNode(first, 'FuncCall')?.funcname) || 'a function'
}

/** Pins of an INSERT … VALUES: each listed column is one of the values given for it in the rows. */
function valuesPins(i: InsertStmt): ColumnValues {
  const pins: ColumnValues = new Map()
  const rows = asNode(i.selectStmt, 'SelectStmt')?.valuesLists
  if (rows === undefined || i.cols === undefined) return pins
  i.cols.forEach((c, j) => {
    const target = asNode(c, 'ResTarget')
    if (target?.name === undefined || target.indirection !== undefined) return
    const values = new ValueSet()
    for (const row of rows) {
      const v = valueRefOf(asNode(row, 'List')?.items?.[j])
      if (v === null) return
      values.add(v)
    }
    pins.set(target.name, values.values)
  })
  return pins
}

function columnKey(relation: number, column: string): string {
  return `${relation}\u0000${column}`
}

function relationOf(key: string): number {
  return Number(key.slice(0, key.indexOf('\u0000')))
}

function inRange(key: string, [from, to]: Range): boolean {
  const r = relationOf(key)
  return r >= from && r < to
}

/** Keeps the smaller of two value sets for one column: both constraints hold, so the smaller one is still true. */
function narrow(pins: Map<string, ValueRef[]>, key: string, values: ValueRef[]): void {
  const known = pins.get(key)
  if (known === undefined || values.length < known.length) pins.set(key, values)
}

class Scope {
  readonly relations: Relation[] = []
  readonly conditions: Condition[] = []
  /** FULL JOIN conditions: they pin nothing, but rows where both sides are present satisfy them. */
  readonly joinConditions: Node[] = []
  /** Column equalities of USING clauses over joins (they pin nothing here). */
  readonly joinEqualities: [string, string][] = []

  constructor(private readonly top: boolean) {}

  /**
   * The FROM level's tables, join tree and column equalities, for the scatter planner; `levelOf` gives the FROM
   * level of a subquery in FROM (none for one that is neither a plain SELECT nor a UNION of them).
   */
  sources(items: FromTree[], levelOf: (subquery: SelectStmt) => FromSources | undefined): FromSources {
    const tableIndex = new Map<number, number>()
    const derivedIndex = new Map<number, number>()
    const relations: FromSources['relations'] = []
    const derived: FromSources['derived'] = []
    const laterals: SelectStmt[] = []
    let other: string | undefined
    this.relations.forEach((r, i) => {
      const level = r.subquery !== undefined ? levelOf(r.subquery) : undefined
      if (r.rv !== undefined) {
        tableIndex.set(i, relations.length)
        relations.push({ rv: r.rv, table: tableRefOf(r.rv) })
      } else if (level !== undefined) {
        derivedIndex.set(i, derived.length)
        derived.push({ select: r.subquery!, from: level, alias: r.refname, ...(r.colnames !== undefined ? { colnames: r.colnames } : {}) })
      } else if (r.lateral !== undefined) laterals.push(r.lateral)
      else if (r.other === 'cte') other ??= 'a WITH query (CTE)'
      else if (r.other === 'subquery') other ??= r.subquery === undefined ? 'a LATERAL subquery in FROM' : 'a set operation in a subquery in FROM'
      else if (typeof r.other !== 'object') other ??= 'a FROM item that is not a table'
    })
    const tree = (t: FromTree): JoinTree => {
      if ('join' in t) return { join: t.join, left: tree(t.left), right: tree(t.right) }
      const index = tableIndex.get(t.relation)
      if (index !== undefined) return { relation: index }
      const sub = derivedIndex.get(t.relation)
      if (sub !== undefined) return { derived: sub }
      const r = this.relations[t.relation]
      return { function: typeof r?.other === 'object' ? r.other.function : r?.lateral !== undefined ? 'a LATERAL subquery' : 'a FROM item' }
    }
    const joined: JoinTree =
      items.length === 0 ? { function: 'no FROM' } : items.map(tree).reduce((left, right) => ({ join: 'inner', left, right }))
    const at = (key: string): LevelColumn | undefined => {
      const column = key.slice(key.indexOf('\u0000') + 1)
      const relation = tableIndex.get(relationOf(key))
      if (relation !== undefined) return { relation, column }
      const sub = derivedIndex.get(relationOf(key))
      return sub === undefined ? undefined : { derived: sub, column }
    }
    const pairs: [string, string][] = [...this.joinEqualities]
    for (const cond of this.conditions) {
      if (cond.equal !== undefined) pairs.push(cond.equal)
      if (cond.expr !== undefined) pairs.push(...this.facts(cond.expr).equal)
    }
    for (const expr of this.joinConditions) pairs.push(...this.facts(expr).equal)
    const equalities: [LevelColumn, LevelColumn][] = []
    for (const [x, y] of pairs) {
      const l = at(x)
      const r = at(y)
      if (l !== undefined && r !== undefined) equalities.push([l, r])
    }
    const from: FromSources = { relations, join: joined, equalities, derived, laterals }
    if (other !== undefined) from.other = other
    return from
  }

  /** Per relation index: the pinned columns of that relation. */
  pinnedColumns(): ColumnValues[] {
    const parent = new Map<string, string>()
    const find = (k: string): string => {
      let root = k
      for (let p = parent.get(root); p !== undefined && p !== root; p = parent.get(root)) root = p
      if (!parent.has(k)) parent.set(k, k)
      // Path compression keeps long chains of `a.k = b.k` linear.
      for (let at = k; at !== root; ) {
        const next = parent.get(at)!
        parent.set(at, root)
        at = next
      }
      return root
    }
    const union = (a: string, b: string): void => {
      parent.set(find(a), find(b))
    }
    const direct: [string, ValueRef[]][] = []
    const directed: [string, string][] = []
    for (const cond of this.conditions) {
      const facts = cond.expr !== undefined ? this.facts(cond.expr) : cond.pin !== undefined ? this.pinFacts(cond.pin) : { pins: new Map(), equal: cond.equal ? [cond.equal] : [] }
      const { preserved, nullable } = cond
      for (const [key, values] of facts.pins) {
        find(key)
        if (nullable === undefined || inRange(key, nullable)) direct.push([key, values])
      }
      for (const [a, b] of facts.equal) {
        find(a)
        find(b)
        if (preserved === undefined || nullable === undefined) union(a, b)
        else if (inRange(a, nullable) && inRange(b, nullable)) union(a, b)
        else if (inRange(a, preserved) && inRange(b, nullable)) directed.push([a, b])
        else if (inRange(b, preserved) && inRange(a, nullable)) directed.push([b, a])
      }
    }
    const classPins = new Map<string, ValueRef[]>()
    for (const [key, values] of direct) narrow(classPins, find(key), values)
    for (let round = 0, changed = true; changed && round <= directed.length; round++) {
      changed = false
      for (const [from, to] of directed) {
        const values = classPins.get(find(from))
        const known = classPins.get(find(to))
        if (values !== undefined && (known === undefined || values.length < known.length)) {
          classPins.set(find(to), values)
          changed = true
        }
      }
    }
    const out: ColumnValues[] = this.relations.map(() => new Map())
    for (const key of parent.keys()) {
      const values = classPins.get(find(key))
      if (values !== undefined) out[relationOf(key)]?.set(key.slice(key.indexOf('\u0000') + 1), values)
    }
    return out
  }

  private facts(n: Node): Facts {
    const none = (): Facts => ({ pins: new Map(), equal: [] })
    const bool = asNode(n, 'BoolExpr')
    if (bool !== undefined) {
      const parts = (bool.args ?? []).map((a) => this.facts(a))
      if (bool.boolop === 'AND_EXPR') {
        const all = none()
        for (const p of parts) {
          for (const [k, v] of p.pins) narrow(all.pins, k, v)
          for (const e of p.equal) all.equal.push(e)
        }
        return all
      }
      if (bool.boolop === 'OR_EXPR' && parts.length > 0) {
        const any = none()
        for (const [k, v] of parts[0]!.pins) {
          const values = new ValueSet(v)
          let everyBranch = true
          for (let i = 1; i < parts.length && everyBranch; i++) {
            const more = parts[i]!.pins.get(k)
            if (more === undefined) everyBranch = false
            else values.addAll(more)
          }
          if (everyBranch) any.pins.set(k, values.values)
        }
        return any
      }
      return none()
    }
    const expr = asNode(n, 'A_Expr')
    const op = stringList(expr?.name)
    if (expr === undefined || op === null || op.length !== 1 || op[0] !== '=') return none()
    const facts = none()
    if (expr.kind === 'AEXPR_OP') {
      const lrow = asNode(expr.lexpr, 'RowExpr')?.args
      const rrow = asNode(expr.rexpr, 'RowExpr')?.args
      if (lrow !== undefined && rrow !== undefined && lrow.length === rrow.length) {
        return this.facts({
          BoolExpr: {
            boolop: 'AND_EXPR',
            args: lrow.map((l, i) => ({ A_Expr: { kind: 'AEXPR_OP', name: expr.name, lexpr: l, rexpr: rrow[i] } })),
          },
        } as Node)
      }
      const l = this.column(expr.lexpr)
      const r = this.column(expr.rexpr)
      if (l !== null && r !== null) facts.equal.push([l, r])
      const lv = valueRefOf(expr.lexpr)
      const rv = valueRefOf(expr.rexpr)
      if (l !== null && rv !== null) facts.pins.set(l, [rv])
      if (r !== null && lv !== null) facts.pins.set(r, [lv])
      return facts
    }
    // `k IN (…)` and `k = ANY(ARRAY[…])` with constants or parameters; `k = ANY($1)` and `k = ANY('{…}')`
    // compare with each element of one array value.
    const col = this.column(expr.lexpr)
    if (expr.kind === 'AEXPR_OP_ANY' && col !== null && asNode(expr.rexpr, 'A_ArrayExpr') === undefined) {
      const whole = valueRefOf(asNode(expr.rexpr, 'TypeCast')?.arg ?? expr.rexpr)
      if (whole !== null && !('null' in whole) && !('negate' in whole && whole.negate) && whole.cast === undefined) facts.pins.set(col, [{ ...whole, array: true }])
      return facts
    }
    const items =
      expr.kind === 'AEXPR_IN'
        ? asNode(expr.rexpr, 'List')?.items
        : expr.kind === 'AEXPR_OP_ANY'
          ? asNode(expr.rexpr, 'A_ArrayExpr')?.elements
          : undefined
    if (items === undefined || col === null) return facts
    const values = new ValueSet()
    for (const item of items) {
      const v = valueRefOf(item)
      if (v === null) return facts
      values.add(v)
    }
    if (values.values.length > 0) facts.pins.set(col, values.values)
    return facts
  }

  private pinFacts(pin: { column: Node; values: ValueRef[] }): Facts {
    const key = this.column(pin.column)
    return { pins: new Map(key === null ? [] : [[key, pin.values]]), equal: [] }
  }

  /** The key of a column reference at this level, or null when it is ambiguous or not a plain column. */
  private column(n: Node | undefined): string | null {
    const ref: ColumnRef | undefined = asNode(n, 'ColumnRef')
    const fields = stringList(ref?.fields)
    if (fields === null || fields.length === 0) return null
    const col = fields[fields.length - 1]!
    let matches: number[]
    if (fields.length === 1) matches = this.top && this.relations.length === 1 ? [0] : []
    else if (fields.length === 2) matches = this.indexesWhere((r) => r.refname === fields[0])
    else if (fields.length === 3) matches = this.indexesWhere((r) => !r.hasAlias && r.schema === fields[0] && r.name === fields[1])
    else matches = []
    return matches.length === 1 ? columnKey(matches[0]!, col) : null
  }

  private indexesWhere(test: (r: Relation) => boolean): number[] {
    const out: number[] = []
    this.relations.forEach((r, i) => {
      if (test(r)) out.push(i)
    })
    return out
  }
}
