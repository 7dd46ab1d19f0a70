import type { Config } from '../config/ConfigSchema.js'
import type { CatalogView, LearntCatalog } from '../health/CatalogReader.js'
import { FunctionVolatility, type CatalogFunction } from '../router/FunctionVolatility.js'
import type { BoundParam, Route, RoutingContext } from '../router/Route.js'
import { RoleSearchPaths } from '../router/RoleSearchPaths.js'
import { EnumTypes, type MergeTypes } from '../router/merge/EnumTypes.js'
import { BYTE_ORDER, databaseCollation, type TextCollation } from '../router/merge/TextCollation.js'
import { Router } from '../router/Router.js'
import { ShardMap } from '../router/ShardMap.js'
import { SqlAnalysisError } from '../router/SqlParser.js'
import { StatementCache } from '../router/StatementCache.js'
import { TableColumns } from '../router/TableColumns.js'
import { ViewInliner } from '../router/ViewInliner.js'
import type { RoutingEngine } from './ProxyServer.js'
import type { Analyzed } from './SessionServices.js'
import type { StatementPlan, TableRef } from '../router/StatementPlan.js'

/** How long after DDL routed on a view a catalog read may still not show it (the DDL had not committed yet). */
const VIEW_DDL_UNSEEN_MS = 10_000

/**
 * The analyzer (cached by normalized text) and the router over the current shard map. A statement the parser
 * rejects goes to a server anyway, which answers with Postgres' own error.
 */
// DDL that makes, changes or drops a type (the analyzer's tags: CREATE ENUM, COMPOSITE TYPE, CREATE RANGE, DROP
// TYPE, … DOMAIN, … EXTENSION), or may rename or move one.
const TYPE_DDL = /(ENUM|TYPE|RANGE|DOMAIN|EXTENSION)$|^RENAME$|^ALTER OBJECT SCHEMA$/
// DDL that may make, change or drop a table's or view's columns (`SELECT`: CREATE TABLE AS, CREATE MATERIALIZED
// VIEW), unlike TRUNCATE, VACUUM, CREATE INDEX or GRANT, which test suites and maintenance send all the time.
const COLUMN_DDL = /^(CREATE|ALTER) (TABLE|VIEW)$|^DROP (TABLE|VIEW|MATERIALIZED VIEW|FOREIGN TABLE)$|^SELECT$|^RENAME$|^ALTER OBJECT SCHEMA$/

export class StatementRouter implements RoutingEngine {
  private readonly inliner = new ViewInliner()
  private readonly cache = new StatementCache(20_000, { inline: (text) => this.inliner.inline(text) })
  volatility!: FunctionVolatility
  private catalog: CatalogFunction[] = []
  /** Learnt since start, kept across reloads: partitions of sharded tables, and bodies of functions created. */
  private readonly partitions = new Map<string, { child: TableRef; parent: TableRef }>()
  private readonly bodies = new Map<string, string>()
  /** Views by `schema.name`: `definition` names what they read; `query`, if any, may stand in a FROM clause for them. */
  private readonly views = new Map<string, LearntView>()
  /** What DDL routed through pgshard did to views lately, by `schema.name` (the view made, or none: dropped). */
  private readonly viewChanges = new Map<string, { at: number; view?: LearntView }>()
  searchPaths = new RoleSearchPaths()
  private router!: Router
  map!: ShardMap
  private readonly enums = new EnumTypes()
  /** The tables' columns from the catalogs (kept across reloads, like the rest learnt from them). */
  private readonly columns = new TableColumns()
  /** Hears that the shards' catalogs should be read again: a merge met a type created, or changed, since. */
  onStaleTypes: (() => void) | undefined
  /**
   * Hears of DDL routed that makes, changes or drops types (their OIDs are paired by a catalog read) or tables
   * (their columns are unknown until one).
   */
  onCatalogDdl: (() => void) | undefined
  /** Enum labels from the shards' catalogs, for merges. */
  readonly mergeTypes: MergeTypes = {
    labelsOf: (oids) => {
      if (oids.some((oid) => this.enums.unknown(oid))) this.onStaleTypes?.()
      return this.enums.labelsOf(oids)
    },
    stale: () => this.onStaleTypes?.(),
    collationOf: (shard, serverDatabase) => this.collations.get(`${shard}\u0000${serverDatabase}`) ?? BYTE_ORDER,
  }
  /** Each shard's server databases' default collation, by shard and database. */
  private collations = new Map<string, TextCollation>()

  constructor(config: Config) {
    this.reconfigure(config)
  }

  reconfigure(config: Config): void {
    // Catalog knowledge learnt from the shards survives a reload; the overrides come from the new file.
    this.volatility = new FunctionVolatility(config.routing)
    for (const [name, body] of this.bodies) this.volatility.learnBody(name, body)
    this.volatility.loadCatalog(this.catalog)
    this.map = new ShardMap(config)
    this.learnPartitions([...this.partitions.values()])
    for (const v of this.views.values()) this.map.learnView(v.view, v.definition, ['public'])
    this.refreshInlining()
    this.router = new Router(this.map, this.volatility, { readFrom: config.routing.read_from, crossShardTransactions: config.sharding.cross_shard_transactions, columns: this.columns })
  }

  /**
   * What the shards' catalogs say: functions' volatility decides whether a SELECT may go to a replica, and the
   * roles' search paths which table an unqualified name is for a client that sets none.
   */
  learnCatalog(catalog: LearntCatalog): void {
    this.catalog = catalog.functions
    this.volatility.loadCatalog(catalog.functions)
    this.searchPaths = catalog.searchPaths
    this.enums.load(catalog.types)
    this.collations = new Map(catalog.collations.map((c) => [`${c.shard}\u0000${c.serverDatabase}`, databaseCollation(c.collation)]))
    this.columns.load(catalog.columns, catalog.readSince)
    const partitions = this.partitions.size
    this.learnPartitions(catalog.partitions)
    // The catalogs say which views exist: one dropped on the shards, or a CREATE they refused, is forgotten. The
    // plan cache (whose analyses inline views over sharded tables) is kept when nothing it depends on changed: the
    // same views, no new partition (a read for another reason, such as a type made since).
    const views = this.viewsAfter(catalog)
    if (this.partitions.size === partitions && this.knowsViews(views)) return
    for (const { view } of this.views.values()) this.map.forgetView(view, [])
    this.views.clear()
    for (const v of views.values()) this.learnView(v, ['public'])
    this.refreshInlining()
  }

  /**
   * The views the catalogs list (once per shard), with what DDL routed since the read started, or shortly before
   * (it may not have committed yet when the read looked), did to them on top: a read that began before a CREATE
   * VIEW must not forget it, nor one that began before a DROP VIEW bring it back. Changes a read began long enough
   * after to have seen are dropped from the record here.
   */
  private viewsAfter(catalog: LearntCatalog): Map<string, LearntView> {
    const views = new Map(catalog.views.map((v) => [`${v.view.schema}.${v.view.name}`, catalogView(v)]))
    for (const [key, change] of this.viewChanges) {
      if (change.at + VIEW_DDL_UNSEEN_MS < catalog.readSince) this.viewChanges.delete(key)
      else if (change.view !== undefined) views.set(key, change.view)
      else views.delete(key)
    }
    return views
  }

  /** Whether `views` are the ones known, defined alike. */
  private knowsViews(views: Map<string, LearntView>): boolean {
    if (views.size !== this.views.size) return false
    for (const [key, v] of views) {
      const known = this.views.get(key)
      if (known?.definition !== v.definition || known.query !== v.query) return false
    }
    return true
  }

  /** Partitions of sharded tables (a partition of a partition once its parent is known, in any order). */
  private learnPartitions(partitions: { child: TableRef; parent: TableRef }[]): void {
    let left = partitions
    for (let progress = true; progress && left.length > 0; ) {
      const before = left.length
      left = left.filter((p) => !this.learnPartition(p.child, p.parent, ['public']))
      progress = left.length < before
    }
  }

  private learnView(learnt: LearntView, searchPath: string[]): LearntView {
    const view = this.map.learnView(learnt.view, learnt.definition, searchPath)
    const known = { ...learnt, view }
    this.views.set(`${view.schema}.${view.name}`, known)
    return known
  }

  private forgetView(ref: TableRef, searchPath: string[]): LearntView | undefined {
    const view = this.map.forgetView(ref, searchPath)
    const key = `${view?.schema}.${view?.name}`
    const known = this.views.get(key)
    this.views.delete(key)
    return known
  }

  /**
   * Views over sharded tables are read as their queries (ViewInliner); plans made before a view changed are
   * forgotten.
   */
  private refreshInlining(): void {
    this.inliner.clear()
    for (const { view, query } of this.views.values()) {
      if (query !== undefined && this.map.shardsUnderView(view, []) !== undefined) this.inliner.set(view.schema!, view.name, query)
    }
    this.cache.clear()
  }

  /** What a statement changes in the views pgshard knows: CREATE, DROP, ALTER … RENAME. */
  private followViews(plan: StatementPlan, searchPath: string[]): void {
    const view = plan.definesView
    let changed = false
    if (view !== undefined) {
      const learnt: LearntView = { view: view.view, definition: view.body }
      if (view.query !== undefined && !view.materialized) learnt.query = view.query
      this.changedView(this.learnView(learnt, searchPath))
      changed = true
    }
    if (plan.commandTag.startsWith('DROP ')) {
      for (const ref of plan.writtenTables) {
        const dropped = this.forgetView(ref, searchPath)
        if (dropped !== undefined) this.changedView(dropped, true)
        changed ||= dropped !== undefined
      }
    }
    const renamed = plan.renamed !== undefined ? this.forgetView(plan.renamed.from, searchPath) : undefined
    if (renamed !== undefined) {
      this.changedView(renamed, true)
      this.changedView(this.learnView({ ...renamed, view: { schema: renamed.view.schema!, name: plan.renamed!.to } }, searchPath))
      changed = true
    }
    if (changed) this.refreshInlining()
  }

  /** Records what DDL did to a view (made it, or `gone`), for catalog reads that began before it (viewsAfter). */
  private changedView(view: LearntView, gone = false): void {
    this.viewChanges.set(`${view.view.schema}.${view.view.name}`, gone ? { at: Date.now() } : { at: Date.now(), view })
  }

  private learnPartition(child: TableRef, parent: TableRef, searchPath: string[]): boolean {
    const learnt = this.map.learnPartition(child, parent, searchPath)
    if (learnt) this.partitions.set(`${learnt.child.schema}.${learnt.child.name}`, learnt)
    return learnt !== undefined
  }

  defaultSearchPath(database: string, role: string): readonly string[] {
    return this.searchPaths.of(database, role)
  }

  get cacheStats(): { hits: number; misses: number; size: number } {
    return { hits: this.cache.hits, misses: this.cache.misses, size: this.cache.size }
  }

  analyze(sql: string): Analyzed {
    try {
      const r = this.cache.lookup(sql)
      return { plan: r.plan, literals: r.literals, sources: r.sources, firstParam: r.firstParam, text: r.text, hit: r.hit }
    } catch (err) {
      if (err instanceof SqlAnalysisError) return { plan: null, literals: [], firstParam: 1, text: sql, hit: false }
      throw err
    }
  }

  route(analyzed: Analyzed, param: (n: number) => BoundParam | undefined, ctx: RoutingContext): Route {
    if (!analyzed.plan) {
      const shard = ctx.txShard ?? this.map.defaultShard
      return { kind: 'shard', shard, role: 'primary', reason: 'the parser rejected the statement: the server reports the error' }
    }
    // A function created through pgshard: what its body reads is known before the catalog is read again.
    // Of each statement of a query, as a later one may call it (Sequelize's findOrCreate sends both at once).
    for (const { defines } of analyzed.plan.statements ?? [analyzed.plan]) {
      if (defines === undefined) continue
      this.volatility.learnBody(defines.name, defines.body)
      this.bodies.set(defines.name, defines.body)
    }
    // A partition of a sharded table is made on every shard, and its rows go where the table's would.
    const partition = analyzed.plan.partitionOf
    if (partition !== undefined) this.learnPartition(partition.child, partition.parent, ctx.searchPath ?? ['public'])
    const route = this.router.route(analyzed.plan, param, ctx)
    // Views the DDL makes, drops or renames are known once it is routed (a refused one is not made).
    if (analyzed.plan.kind === 'ddl' && route.kind !== 'error') {
      this.followViews(analyzed.plan, ctx.searchPath ?? ['public'])
      const statements = analyzed.plan.statements ?? [analyzed.plan]
      const tables = statements.flatMap((s) => (s.kind === 'ddl' && COLUMN_DDL.test(s.commandTag) ? s.writtenTables : []))
      this.columns.forget(tables)
      // A unique index changes which writes name single rows (TableColumns.uniqueColumns), not the columns.
      const indexed = statements.flatMap((s) => (s.kind === 'ddl' && s.commandTag === 'CREATE INDEX' ? s.writtenTables : []))
      this.columns.forgetUnique(indexed)
      if (tables.length > 0 || indexed.length > 0 || statements.some((s) => TYPE_DDL.test(s.commandTag))) this.onCatalogDdl?.()
    }
    return route
  }

  mayWrite(plan: StatementPlan): boolean {
    return this.router.mayWrite(plan)
  }
}

interface LearntView {
  view: TableRef
  definition: string
  query?: string
}

function catalogView(v: CatalogView): LearntView {
  return v.materialized ? { view: v.view, definition: v.definition } : { view: v.view, definition: v.definition, query: v.definition }
}
