import type { NodeState } from '../health/NodeState.js'
import type { Logger } from '../log/Logger.js'
import type { ConfigMetrics } from '../metrics/ConfigMetrics.js'
import { PgError } from '../protocol/PgError.js'
import type { ProxyServer } from '../proxy/ProxyServer.js'
import { loadConfig } from './ConfigLoader.js'
import type { Config } from './ConfigSchema.js'
import { keyMovements } from './MapChangeCheck.js'

/** Postgres' config_file_error: what RELOAD answers when the file is refused. */
const CONFIG_FILE_ERROR = 'F0000'

/** Settings read once when the proxy starts (its sockets): a reload cannot change them. */
const RESTART_ONLY: { key: string; of: (c: Config) => unknown }[] = [
  { key: 'listen.host', of: (c) => c.listen.host },
  { key: 'listen.port', of: (c) => c.listen.port },
  { key: 'admin', of: (c) => c.admin },
]

const DRAIN_POLL_MS = 20

export interface ReloadTarget {
  readonly proxy: ProxyServer
  readonly log: Logger
  readonly metrics: ConfigMetrics
  /** Told after the new config is in place, with the nodes that came and went (health checks follow them). */
  onApplied?(config: Config, nodes: { added: NodeState[]; removed: NodeState[]; changed: NodeState[] }): void
}

/**
 * Hot reload: the file is read and validated first, and an invalid file, or one that would move keys without
 * saying so, changes nothing. A valid one is applied as a diff: nodes that stay keep their state and their
 * pools (new pool sizes apply in place); removed or changed nodes drain (their queued clients are served, busy
 * connections close when released); the router gets the new map; users and timeouts apply to the next client.
 * Reloads run one at a time, whoever asks (SIGHUP, RELOAD).
 */
export class ReloadCoordinator {
  private queue: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly file: string | undefined,
    private readonly target: ReloadTarget,
  ) {}

  /** Resolves with a summary of what changed; rejects (SQLSTATE F0000) with why nothing did. */
  reload(): Promise<string> {
    const run = this.queue.then(() => this.run())
    this.queue = run.catch(() => undefined)
    return run
  }

  private async run(): Promise<string> {
    const { log, metrics } = this.target
    try {
      return await this.apply()
    } catch (err) {
      metrics.reloadFailed()
      log.error({ file: this.file, err: err instanceof Error ? err.message : String(err) }, 'reload refused: nothing changed')
      throw err
    }
  }

  private async apply(): Promise<string> {
    const { proxy, log } = this.target
    if (!this.file) throw new PgError(CONFIG_FILE_ERROR, 'this proxy was started without a config file: there is nothing to reload')
    log.info({ file: this.file }, 'reload: reading the config file')
    const config = await loadConfig(this.file)
    const before = proxy.config
    const moves = keyMovements(before, config)
    if (moves.length > 0 && !config.sharding.allow_key_movement)
      throw new PgError(CONFIG_FILE_ERROR, `the new shard map moves keys between shards, so it was not applied:\n${moves.join('\n')}`, {
        hint: `Run pgshard plan to see what moves, move those rows, then reload with sharding.allow_key_movement: true.`,
      })
    log.info({ map_version: config.map_version, moves: moves.length }, 'reload: file valid')

    proxy.reloadTls(config)
    const nodes = proxy.topology.apply(config)
    log.info({ added: names(nodes.added), removed: names(nodes.removed), changed: names(nodes.changed) }, 'reload: topology updated')
    proxy.routing.reconfigure(config)
    proxy.config = config
    proxy.pools.reconfigure(config)
    log.info({ size: config.pool.size, min_idle: config.pool.min_idle, max_queue: config.pool.max_queue }, 'reload: router and pool settings updated')
    this.target.onApplied?.(config, nodes)

    // A changed node, or a removed one whose name now stands for another address, is still handed out under
    // its name: its pools go at once, so that the next client gets a pool made for the new settings.
    const stillNamed = new Set(proxy.topology.nodes().map((n) => n.name))
    await Promise.all([...nodes.removed, ...nodes.changed].map((n) => this.drain(n.name, !stillNamed.has(n.name))))

    const restart = RESTART_ONLY.filter((r) => JSON.stringify(r.of(before)) !== JSON.stringify(r.of(config))).map((r) => r.key)
    if (restart.length > 0) log.warn({ keys: restart }, 'reload: these settings take effect only after a restart')
    this.target.metrics.reloaded(config.map_version)
    const summary = [
      `reloaded shard map version ${config.map_version}`,
      ...(moves.length > 0 ? [`keys move (allowed by sharding.allow_key_movement):\n${moves.join('\n')}`] : []),
      ...(nodes.added.length ? [`nodes added: ${names(nodes.added).join(', ')}`] : []),
      ...(nodes.removed.length ? [`nodes removed (drained): ${names(nodes.removed).join(', ')}`] : []),
      ...(nodes.changed.length ? [`nodes changed (pools drained): ${names(nodes.changed).join(', ')}`] : []),
      ...(before.pool.size !== config.pool.size ? [`pool.size ${before.pool.size} \u2192 ${config.pool.size}`] : []),
      ...(restart.length ? [`not applied until restart: ${restart.join(', ')}`] : []),
    ].join('\n')
    log.info({ map_version: config.map_version }, 'reload: done')
    return summary
  }

  /**
   * Retires a node's pools. For a node gone from the topology the queue only shrinks, so its clients still
   * queued are served first (or time out as they would have); then the pools close, and connections still lent
   * close as their clients release them.
   */
  private async drain(nodeName: string, waitForQueue: boolean): Promise<void> {
    const { proxy, log } = this.target
    const pools = proxy.pools.all().filter((e) => e.node.name === nodeName)
    const deadline = Date.now() + proxy.config.pool.checkout_timeout
    while (waitForQueue && Date.now() < deadline && pools.some((e) => e.pool.counts.waiting > 0)) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS))
    proxy.pools.dropNode(nodeName, false)
    log.info({ node: nodeName, busy: pools.reduce((n, e) => n + e.pool.counts.active, 0) }, 'reload: node drained (busy connections close when released)')
  }
}

function names(nodes: NodeState[]): string[] {
  return nodes.map((n) => n.name)
}
