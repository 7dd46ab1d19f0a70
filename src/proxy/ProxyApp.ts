import { Registry, collectDefaultMetrics } from 'prom-client'
import type { Config } from '../config/ConfigSchema.js'
import { loadConfig } from '../config/ConfigLoader.js'
import { FailoverManager } from '../health/FailoverManager.js'
import { HealthMonitor } from '../health/HealthMonitor.js'
import { createLogger, type Logger } from '../log/Logger.js'
import { DataPathMetrics } from '../metrics/DataPathMetrics.js'
import { MetricsServer } from '../metrics/MetricsServer.js'
import { initSqlParser } from '../router/SqlParser.js'
import { ProxyServer } from './ProxyServer.js'
import { StatementRouter } from './StatementRouter.js'

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
  failover!: FailoverManager

  private constructor(
    readonly proxy: ProxyServer,
    readonly registry: Registry,
    readonly log: Logger,
    private readonly options: ProxyAppOptions,
  ) {}

  static async start(config: Config, options: ProxyAppOptions = {}): Promise<ProxyApp> {
    await initSqlParser()
    const log = options.log ?? createLogger({ level: config.log.level, logParameters: config.log.log_parameters })
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const router = new StatementRouter(config)
    const proxy = new ProxyServer(config, router, log, new DataPathMetrics(registry))
    await proxy.listen()
    const app = new ProxyApp(proxy, registry, log, options)
    app.health = new HealthMonitor(proxy.topology, config, log, { onCatalog: (rows) => router.learnCatalog(rows) })
    app.failover = new FailoverManager(proxy.topology, app.health, proxy.pools, config, log)
    app.failover.start()
    app.health.start()
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

  /** Reads the config file again and applies it; an invalid file changes nothing. */
  async reload(): Promise<void> {
    if (!this.options.configFile) throw new Error('this proxy was started without a config file: nothing to reload')
    const config = await loadConfig(this.options.configFile)
    this.proxy.routing.reconfigure(config)
    this.proxy.config = config
  }

  /** Stops accepting clients, lets transactions finish (up to shutdown_timeout), then closes everything. */
  async stop(timeoutMs = this.config.shutdown_timeout): Promise<void> {
    this.failover.stop()
    this.health.stop()
    await this.proxy.shutdown(timeoutMs)
    await this.metricsServer?.close()
  }
}
