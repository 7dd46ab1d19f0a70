import { Registry, collectDefaultMetrics } from 'prom-client'
import { ADMIN_COMMANDS } from '../admin/AdminCommands.js'
import { AdminConsole } from '../admin/AdminConsole.js'
import { logicalDatabase } from '../admin/ConsoleFormat.js'
import { PGSHARD_VERSION } from '../admin/PackageVersion.js'
import type { Config } from '../config/ConfigSchema.js'
import { checkAppliedMap } from '../config/AppliedMap.js'
import { ReloadCoordinator } from '../config/ReloadCoordinator.js'
import type { LearntCatalog } from '../health/CatalogReader.js'
import { FailoverManager } from '../health/FailoverManager.js'
import { HealthMonitor } from '../health/HealthMonitor.js'
import { PreparedTransactionResolver } from '../health/PreparedTransactionResolver.js'
import { DdlCatalogReads } from '../health/DdlCatalogReads.js'
import { CrossShardDeadlockDetector } from './CrossShardDeadlockDetector.js'
import { createLogger, type Logger } from '../log/Logger.js'
import { ClientTotals } from '../metrics/ClientTotals.js'
import { ConfigMetrics } from '../metrics/ConfigMetrics.js'
import { DataPathMetrics } from '../metrics/DataPathMetrics.js'
import { MetricsServer } from '../metrics/MetricsServer.js'
import { RuntimeGauges } from '../metrics/RuntimeGauges.js'
import { initSqlParser } from '../router/SqlParser.js'
import type { MovedRows } from '../reshard/RowMover.js'
import { ProxyServer } from './ProxyServer.js'
import { StatementRouter } from './StatementRouter.js'

/** How often a merge that met types unknown to pgshard may have the shards' catalogs read again. */
const STALE_TYPES_REREAD_MS = 2_000

export interface ProxyAppOptions {
  /** The file the config came from: RELOAD and SIGHUP read it again. */
  configFile?: string
  log?: Logger
}

/**
 * A running pgshard: the proxy with everything around it (routing, health, metrics, admin). What `pgshard
 * start` and `pgshard dev` run, and what integration tests start in-process.
 */
export class ProxyApp {
  metricsUrl: string | null = null
  private metricsServer: MetricsServer | null = null
  /** Health checks of every node (lag, up/down, the function catalog) and failover: set by start(). */
  health!: HealthMonitor
  /** Finishes cross-shard transactions left prepared (two-phase commit interrupted). */
  resolver!: PreparedTransactionResolver
  /** Breaks deadlocks between transactions across shards, which no server sees. */
  deadlocks!: CrossShardDeadlockDetector
  failover!: FailoverManager
  /** Catalog reads after DDL on types and tables (new types' OIDs paired, tables' columns known again). */
  private ddlCatalogReads!: DdlCatalogReads
  readonly admin: AdminConsole
  /** Counters of clients that have left, per database (SHOW STATS). */
  readonly totals = new ClientTotals()
  private readonly reloader: ReloadCoordinator

  private constructor(
    readonly proxy: ProxyServer,
    readonly registry: Registry,
    readonly log: Logger,
    options: ProxyAppOptions,
  ) {
    this.admin = new AdminConsole({
      proxy,
      totals: this.totals,
      log: log.child({ component: 'admin' }),
      version: PGSHARD_VERSION,
      commands: ADMIN_COMMANDS,
      reload: () => this.reload(),
      reshard: () => this.reshard(),
      failover: () => this.failover ?? null,
    })
    proxy.adminConsole = (client) => this.admin.serve(client)
    proxy.onSessionEnd = (session) => this.totals.clientEnded(session.identity.database.name, session.stats)
    new RuntimeGauges(registry, { proxy, adminClients: () => this.admin.connected, failoverStats: () => this.failover?.stats ?? null })
    this.reloader = new ReloadCoordinator(options.configFile, {
      proxy,
      log: log.child({ component: 'reload' }),
      metrics: new ConfigMetrics(registry, proxy.config.map_version),
      onApplied: (config) => {
        // Loggers made with child() before keep their level (pino does not pass it down): the proxy's own lines follow.
        log.level = config.log.level
        this.health?.reconfigure(config)
        this.failover?.reconfigure(config)
        this.resolver?.reconfigure(config)
        this.deadlocks?.reconfigure(config)
      },
    })
  }

  static async start(config: Config, options: ProxyAppOptions = {}): Promise<ProxyApp> {
    await initSqlParser()
    const log = options.log ?? createLogger({ level: config.log.level, logParameters: config.log.log_parameters })
    await checkAppliedMap(config, log)
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const router = new StatementRouter(config)
    const proxy = new ProxyServer(config, router, log, new DataPathMetrics(registry))
    await proxy.listen()
    const app = new ProxyApp(proxy, registry, log, options)
    app.health = new HealthMonitor(proxy.topology, config, log, { onCatalog: (catalog) => learnCatalog(catalog, router, proxy, log) })
    // A merge met a type created or changed since the catalogs were read (a migration's CREATE TYPE or ALTER TYPE
    // … ADD VALUE): read them again, at most once in a while, so that a retry finds the type.
    let typesRead = 0
    router.onStaleTypes = () => {
      if (Date.now() - typesRead < STALE_TYPES_REREAD_MS) return
      typesRead = Date.now()
      void app.health.refreshCatalogs()
    }
    app.ddlCatalogReads = new DdlCatalogReads(() => app.health.refreshCatalogs())
    router.onCatalogDdl = () => app.ddlCatalogReads.changed()
    proxy.catalogAfterDdl = () => app.ddlCatalogReads.readNow()
    app.failover = new FailoverManager(proxy.topology, app.health, proxy.pools, config, log, proxy)
    proxy.onServerFailure = (node, err) => app.health.evidence(node, err)
    app.resolver = new PreparedTransactionResolver(proxy.topology, config, log, proxy.metrics.twoPhase)
    app.failover.start()
    app.health.start()
    app.resolver.start()
    app.deadlocks = new CrossShardDeadlockDetector(() => proxy.sessions, proxy.topology, config, log, proxy.metrics.twoPhase)
    app.deadlocks.start()
    if (config.admin.metrics_port !== undefined) {
      app.metricsServer = new MetricsServer(registry, { notReadyReason: () => proxy.notReadyReason() })
      const a = await app.metricsServer.listen(config.admin.host, config.admin.metrics_port)
      app.metricsUrl = `http://${a.address}:${a.port}/metrics`
      log.info({ url: app.metricsUrl }, 'metrics listening')
    }
    return app
  }

  get config(): Config {
    return this.proxy.config
  }

  /** Where clients connect. */
  get address(): { host: string; port: number } {
    const a = this.proxy.address
    return { host: a.address, port: a.port }
  }

  /**
   * Reads the config file again and applies it as a diff (ReloadCoordinator); resolves with what changed.
   * An invalid file, or one that would move keys unannounced, changes nothing and rejects with why (F0000).
   * A reload also reads the shards' function catalogs again, so functions and aggregates created since are known
   * when it answers (a catalog that cannot be read is logged and leaves the last one in place).
   */
  async reload(): Promise<string> {
    const summary = await this.reloader.reload()
    await this.health.refreshCatalogs()
    return summary
  }

  /** RESHARD (ReloadCoordinator.reshard); the catalogs are read again as after a reload. */
  async reshard(): Promise<{ summary: string; moved: MovedRows[] }> {
    const done = await this.reloader.reshard()
    await this.health.refreshCatalogs()
    return done
  }

  /**
   * Stops accepting clients at once, ends each client at its next transaction boundary so that transactions in
   * flight finish, ends the rest at the timeout, then closes the pools and the metrics endpoint.
   */
  async stop(timeoutMs = this.config.shutdown_timeout): Promise<void> {
    this.failover.stop()
    this.health.stop()
    this.ddlCatalogReads.stop()
    this.resolver.stop()
    this.deadlocks.stop()
    this.log.info({ timeout_ms: timeoutMs }, 'shutdown: refusing new clients, letting transactions finish')
    this.admin.closeAll()
    const ended = await this.proxy.shutdown(timeoutMs)
    this.log.info({ at_transaction_boundary: ended.atBoundary, forced: ended.forced }, 'shutdown: clients ended')
    this.proxy.pools.close()
    await this.metricsServer?.close()
  }
}

/**
 * Hands the shards' catalog to the router, and each shard's type numbers to its connections. A server fixes a session's search_path at log-in, so the server
 * connections of a role whose search_path changed are replaced: servers then resolve unqualified names as the
 * router does.
 */
function learnCatalog(catalog: LearntCatalog, router: StatementRouter, proxy: ProxyServer, log: Logger): void {
  const before = router.searchPaths
  router.learnCatalog(catalog)
  proxy.pools.typeOids.learn(proxy.routingDefaultShard(), catalog.typeNames)
  let renewed = 0
  for (const e of proxy.pools.all()) {
    if (!before.agrees(catalog.searchPaths, logicalDatabase(proxy.config, e.database), e.user)) renewed += e.pool.renew()
  }
  if (renewed > 0) log.info({ connections: renewed }, "a role's search_path changed: its server connections are replaced")
}
