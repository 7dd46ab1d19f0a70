import type { NodeState } from '../health/NodeState.js'
import type { Logger } from '../log/Logger.js'
import type { ConfigMetrics } from '../metrics/ConfigMetrics.js'
import { controlAccess } from '../health/ControlConnection.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import type { ProxyServer } from '../proxy/ProxyServer.js'
import { MoveTransaction } from '../reshard/MoveTransaction.js'
import { waitForReplicas } from '../reshard/ReplicaCatchUp.js'
import { reshardPlan } from '../reshard/ReshardPlan.js'
import { moveRows, type MovedRows } from '../reshard/RowMover.js'
import { diffRings } from '../router/RingDiff.js'
import { ShardMap } from '../router/ShardMap.js'
import { recordAppliedMap, recordStatements } from './AppliedMap.js'
import { loadConfig } from './ConfigLoader.js'
import type { Config } from './ConfigSchema.js'
import { describeMoves, keyMovements } from './MapChangeCheck.js'

/** Postgres' config_file_error: what RELOAD answers when the file is refused. */
const CONFIG_FILE_ERROR = 'F0000'
/** Postgres' object_in_use: RESHARD found server connections that do not come back. */
const OBJECT_IN_USE = '55006'
/** One statement of a move (a batch of keys' rows): long enough for big rows, bounded for a hung server. */
const RESHARD_STATEMENT_TIMEOUT_MS = 300_000
/** How long the clients stay held after the commit for the replicas to replay the move. */
const REPLICA_CATCH_UP_MS = 10_000

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
    return this.queued(() => this.apply())
  }

  /**
   * RESHARD: reads the file like a reload, and when its map moves keys, holds every client before it routes
   * (ProxyServer.holdClients), moves the rows whose shard changes (all or nothing, RowMover), waits for the
   * replicas to replay that, applies the file and lets the clients go on. Refused, with nothing changed, when
   * the servers do not all become idle or a row cannot be moved.
   */
  reshard(): Promise<{ summary: string; moved: MovedRows[] }> {
    return this.queued(() => this.moveAndApply())
  }

  private queued<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => this.run(work))
    this.queue = run.catch(() => undefined)
    return run
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    const { log, metrics } = this.target
    try {
      return await work()
    } catch (err) {
      metrics.reloadFailed()
      log.error({ file: this.file, err: err instanceof Error ? err.message : String(err) }, 'reload refused: nothing changed')
      throw err
    }
  }

  private async read(): Promise<Config> {
    if (!this.file) throw new PgError(CONFIG_FILE_ERROR, 'this proxy was started without a config file: there is nothing to reload')
    this.target.log.info({ file: this.file }, 'reload: reading the config file')
    return loadConfig(this.file)
  }

  private async apply(): Promise<string> {
    return this.checkAndInstall(await this.read())
  }

  /** Installs a file whose map moves no key, or whose file says that keys may move. */
  private checkAndInstall(config: Config): Promise<string> {
    const moves = keyMovements(this.target.proxy.config, config)
    if (moves.length > 0 && !config.sharding.allow_key_movement)
      throw new PgError(CONFIG_FILE_ERROR, `the new shard map moves keys between shards, so it was not applied:\n${moves.join('\n')}`, {
        hint: `Run RESHARD to move those rows and apply the file, or run pgshard plan to see what moves, move the rows yourself, then reload with sharding.allow_key_movement: true.`,
      })
    return this.install(config, moves, 'allowed by sharding.allow_key_movement')
  }

  private async moveAndApply(): Promise<{ summary: string; moved: MovedRows[] }> {
    const { proxy, log } = this.target
    const config = await this.read()
    const before = proxy.config
    const diff = diffRings(new ShardMap(before), new ShardMap(config))
    if (diff.movedShare === 0) return { summary: await this.checkAndInstall(config), moved: [] }
    const plan = reshardPlan(before, config, proxy.topology, diff)
    const busy = await proxy.holdClients(before.shutdown_timeout)
    if (busy > 0) {
      proxy.releaseClients()
      throw new PgError(OBJECT_IN_USE, `RESHARD needs every server connection idle, and ${busy} still ${busy === 1 ? 'is' : 'are'} in use after ${before.shutdown_timeout} ms; nothing was moved`, {
        hint: 'Session-mode and pinned clients keep their server connection until they disconnect, and PAUSE holds clients that are already routed: see SHOW CLIENTS, RESUME, KILL or wait, then RESHARD again.',
      })
    }
    log.warn({ map_version: config.map_version }, 'reshard: clients held, moving rows')
    const tx = new MoveTransaction(controlAccess(before), log, RESHARD_STATEMENT_TIMEOUT_MS)
    let moved: MovedRows[]
    let written: Map<string, bigint>
    try {
      moved = await moveRows(plan, tx)
      // Recorded in the same commit: a restart that follows finds the map the rows now follow.
      const defaultShard = plan.newMap.shardName(plan.newMap.defaultShard)
      const record = await tx.on(plan.primaries.get(defaultShard)!, config.control.database)
      for (const s of recordStatements(config)) await record.query(s.sql, s.params)
      written = await tx.commit(new Set(config.shards.map((s) => s.name)))
    } catch (err) {
      // An unknown outcome leaves the clients held: the DBA learns the outcome and applies the matching file.
      if ((err as PgError).code !== SqlState.TRANSACTION_RESOLUTION_UNKNOWN) {
        await tx.rollback()
        proxy.releaseClients()
      }
      throw err
    }
    log.warn({ rows: moved.reduce((n, m) => n + m.rows, 0) }, 'reshard: rows moved and committed')
    for (const m of moved) this.target.metrics.rowsMoved(m.table, m.rows)
    try {
      const lagging = await waitForReplicas(config, written, controlAccess(before), REPLICA_CATCH_UP_MS)
      if (lagging.length > 0) log.warn({ replicas: lagging }, 'reshard: these replicas had not replayed the move when the clients went on')
      const summary = await this.install(config, describeMoves(diff), 'rows moved by RESHARD')
      const late = lagging.length > 0 ? `\nreplicas that had not replayed the move within ${REPLICA_CATCH_UP_MS} ms (reads there may miss moved rows until they do): ${lagging.join(', ')}` : ''
      return { summary: summary + late, moved }
    } finally {
      proxy.releaseClients()
    }
  }

  /** Applies a valid file as a diff; `moves` says what keys change shard and `why` that is fine. */
  private async install(config: Config, moves: string[], why: string): Promise<string> {
    const { proxy, log } = this.target
    const before = proxy.config
    log.info({ map_version: config.map_version, moves: moves.length }, 'reload: file valid')

    proxy.reloadTls(config)
    const nodes = proxy.topology.apply(config)
    log.info({ added: names(nodes.added), removed: names(nodes.removed), changed: names(nodes.changed) }, 'reload: topology updated')
    proxy.routing.reconfigure(config)
    // A sequence reset on the servers directly: RELOAD is how pgshard learns its spare keys are stale.
    proxy.services.sequenceKeys.forget()
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
    const holder = proxy.topology.primaryOf(new ShardMap(config).defaultShard)
    if (moves.length > 0 && holder) await recordAppliedMap(config, holder, log)
    const summary = [
      `reloaded shard map version ${config.map_version}`,
      ...(moves.length > 0 ? [`keys move (${why}):\n${moves.join('\n')}`] : []),
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
