import type { Config } from '../config/ConfigSchema.js'
import type { LearntCatalog } from '../health/CatalogReader.js'
import { FunctionVolatility, type CatalogFunction } from '../router/FunctionVolatility.js'
import type { BoundParam, Route, RoutingContext } from '../router/Route.js'
import { RoleSearchPaths } from '../router/RoleSearchPaths.js'
import { Router } from '../router/Router.js'
import { ShardMap } from '../router/ShardMap.js'
import { SqlAnalysisError } from '../router/SqlParser.js'
import { StatementCache } from '../router/StatementCache.js'
import type { RoutingEngine } from './ProxyServer.js'
import type { Analyzed } from './SessionServices.js'
import type { StatementPlan, TableRef } from '../router/StatementPlan.js'

/**
 * The analyzer (cached by normalized text) and the router over the current shard map. A statement the parser
 * rejects goes to a server anyway, which answers with Postgres' own error.
 */
export class StatementRouter implements RoutingEngine {
  private readonly cache = new StatementCache(20_000)
  volatility!: FunctionVolatility
  private catalog: CatalogFunction[] = []
  /** Learnt since start, kept across reloads: partitions of sharded tables, and bodies of functions created. */
  private readonly partitions = new Map<string, { child: TableRef; parent: TableRef }>()
  private readonly bodies = new Map<string, string>()
  private readonly views = new Map<string, { view: TableRef; definition: string }>()
  searchPaths = new RoleSearchPaths()
  private router!: Router
  map!: ShardMap

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
    this.router = new Router(this.map, this.volatility, { readFrom: config.routing.read_from, crossShardTransactions: config.sharding.cross_shard_transactions })
  }

  /**
   * What the shards' catalogs say: functions' volatility decides whether a SELECT may go to a replica, and the
   * roles' search paths which table an unqualified name is for a client that sets none.
   */
  learnCatalog(catalog: LearntCatalog): void {
    this.catalog = catalog.functions
    this.volatility.loadCatalog(catalog.functions)
    this.searchPaths = catalog.searchPaths
    this.learnPartitions(catalog.partitions)
    for (const v of catalog.views) this.learnView(v.view, v.definition, ['public'])
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

  private learnView(view: TableRef, definition: string, searchPath: string[]): void {
    const qualified = this.map.learnView(view, definition, searchPath)
    this.views.set(`${qualified.schema}.${qualified.name}`, { view: qualified, definition })
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
    const defines = analyzed.plan.defines
    if (defines !== undefined) {
      this.volatility.learnBody(defines.name, defines.body)
      this.bodies.set(defines.name, defines.body)
    }
    // A partition of a sharded table is made on every shard, and its rows go where the table's would.
    const partition = analyzed.plan.partitionOf
    if (partition !== undefined) this.learnPartition(partition.child, partition.parent, ctx.searchPath ?? ['public'])
    const view = analyzed.plan.definesView
    if (view !== undefined) this.learnView(view.view, view.body, ctx.searchPath ?? ['public'])
    return this.router.route(analyzed.plan, param, ctx, analyzed.text)
  }

  mayWrite(plan: StatementPlan): boolean {
    return this.router.mayWrite(plan)
  }
}
