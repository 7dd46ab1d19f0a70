import type { Config } from '../config/ConfigSchema.js'
import type { Logger } from '../log/Logger.js'
import { CatalogReader, type LearntCatalog } from './CatalogReader.js'
import { controlAccess } from './ControlConnection.js'
import { HealthChecker, type CheckOutcome } from './HealthChecker.js'
import type { NodeState } from './NodeState.js'
import type { Topology } from './Topology.js'

export interface HealthMonitorOptions {
  /** Function volatility and roles' search paths read from the shard primaries (StatementRouter.learnCatalog). */
  onCatalog?: (catalog: LearntCatalog) => void
}

/**
 * One HealthChecker per node of the topology; keeps lag, role surprises and the function catalog up to date,
 * and tells listeners (the FailoverManager) about every check.
 */
export class HealthMonitor {
  private readonly checkers = new Map<NodeState, HealthChecker>()
  private readonly listeners: ((o: CheckOutcome) => void)[] = []
  private readonly catalog: CatalogReader | null
  /** Shards whose catalog could not be read yet: tried again on the primary's next good check. */
  private readonly catalogPending = new Set<number>()
  /** Per shard, the catalog read in progress and the one waiting for it (which will see what happened since). */
  private readonly catalogReading = new Map<number, Promise<void>>()
  private readonly catalogQueued = new Map<number, Promise<void>>()
  private readonly warned = new Set<string>()
  private readonly log: Logger
  private started = false

  constructor(
    readonly topology: Topology,
    private config: Config,
    log: Logger,
    options: HealthMonitorOptions = {},
  ) {
    this.log = log.child({ component: 'health' })
    this.catalog = options.onCatalog ? new CatalogReader(config, options.onCatalog) : null
  }

  start(): void {
    this.started = true
    this.sync()
  }

  stop(): void {
    this.started = false
    for (const c of this.checkers.values()) c.stop()
    this.checkers.clear()
  }

  /** After a reload (Topology.apply done): checkers for new nodes, none for removed ones, new settings. */
  reconfigure(config: Config): void {
    this.config = config
    this.catalog?.reconfigure(config)
    for (const c of this.checkers.values()) c.reconfigure(config.health, controlAccess(config))
    if (this.started) this.sync()
  }

  onOutcome(listener: (o: CheckOutcome) => void): void {
    this.listeners.push(listener)
  }

  /** Data-path evidence: a server connection to this node failed. Counts as a failed check at once. */
  evidence(nodeName: string, err: Error): void {
    const node = this.topology.node(nodeName)
    if (node) this.checkers.get(node)?.evidence(err)
  }

  /** Checks a node now (admin actions and tests); rejects for an unknown node. */
  checkNow(nodeName: string): Promise<CheckOutcome> {
    const node = this.topology.node(nodeName)
    const checker = node && this.checkers.get(node)
    if (!checker) return Promise.reject(new Error(`no health checker for node ${nodeName}`))
    return checker.checkNow()
  }

  /** Reads every shard's function catalog again (RELOAD), each from its current primary. */
  async refreshCatalogs(): Promise<void> {
    await Promise.all(this.topology.shards.map((s) => this.refreshCatalog(s.index)))
  }

  /** Reads the function catalog of a shard from its current primary (also after a promotion). */
  refreshCatalog(shard: number): Promise<void> {
    // A read not started yet will see everything that happened up to now: callers share it.
    const queued = this.catalogQueued.get(shard)
    if (queued) return queued
    const read: Promise<void> = (this.catalogReading.get(shard) ?? Promise.resolve())
      .then(() => {
        this.catalogQueued.delete(shard)
        this.catalogReading.set(shard, read)
        return this.readCatalog(shard)
      })
      .finally(() => {
        if (this.catalogReading.get(shard) === read) this.catalogReading.delete(shard)
      })
    this.catalogQueued.set(shard, read)
    return read
  }

  private async readCatalog(shard: number): Promise<void> {
    const primary = this.topology.primaryOf(shard)
    if (!this.catalog || !primary) return
    try {
      const count = await this.catalog.read(shard, primary)
      this.catalogPending.delete(shard)
      this.log.info({ shard: this.topology.shards[shard]?.name, node: primary.name, functions: count }, 'function catalog loaded')
    } catch (err) {
      this.catalogPending.add(shard)
      this.log.warn({ node: primary.name, err: (err as Error).message }, 'could not read the function catalog; unknown functions count as writes')
    }
  }

  /** Shards whose primary requires a synchronous standby and has none: their commits are waiting. */
  commitsWaiting(): string[] {
    return this.topology.shards.filter((s) => {
      const p = this.topology.primaryOf(s.index)
      return p !== undefined && p.up && p.syncRequired && p.syncStandbys === 0
    }).map((s) => s.name)
  }

  private sync(): void {
    const live = new Set(this.topology.nodes())
    for (const [node, checker] of this.checkers) {
      if (!live.has(node)) {
        checker.stop()
        this.checkers.delete(node)
      }
    }
    for (const node of live) {
      if (this.checkers.has(node)) continue
      const checker = new HealthChecker(node, this.config.health, controlAccess(this.config), this.log, (o) => this.handle(o))
      this.checkers.set(node, checker)
      checker.start()
    }
  }

  private handle(o: CheckOutcome): void {
    const { node, probe } = o
    if (probe) {
      const isPrimary = this.topology.primaryOf(node.shard) === node
      if (isPrimary) {
        for (const r of this.topology.shards[node.shard]?.nodes ?? []) if (r !== node) this.updateLag(r, node)
        if (o.reconnected || this.catalogPending.has(node.shard)) void this.refreshCatalog(node.shard)
      } else {
        const primary = this.topology.primaryOf(node.shard)
        if (primary) this.updateLag(node, primary)
      }
      this.noticeSurprises(node, isPrimary)
    }
    for (const l of this.listeners) l(o)
  }

  private updateLag(replica: NodeState, primary: NodeState): void {
    // Both readings are at most one interval old; a replica read after the primary may be ahead of it.
    if (replica.inRecovery && primary.currentLsn > 0n) {
      const behind = primary.currentLsn - replica.replayLsn
      replica.lagBytes = behind > 0n ? Number(behind) : 0
    }
  }

  /** Logs once per episode when a server's own idea of its role contradicts the topology, or commits wait. */
  private noticeSurprises(node: NodeState, isPrimary: boolean): void {
    const once = (key: string, active: boolean, say: () => void) => {
      if (active && !this.warned.has(key)) {
        this.warned.add(key)
        say()
      } else if (!active) this.warned.delete(key)
    }
    once(`${node.name}:fenced-primary`, node.fenced && node.inRecovery === false, () =>
      this.log.error({ node: node.name }, 'a fenced node is up and not in recovery (a primary of its own timeline): it gets no traffic; rebuild it as a standby (pg_rewind or a base backup), then ADMIT it'),
    )
    once(`${node.name}:primary-in-recovery`, isPrimary && node.inRecovery === true, () =>
      this.log.error({ node: node.name }, 'the shard primary reports that it is in recovery: writes will fail until a primary is promoted'),
    )
    once(`${node.name}:replica-not-in-recovery`, !isPrimary && !node.fenced && node.role === 'replica' && node.inRecovery === false, () =>
      this.log.error({ node: node.name }, 'a replica is not in recovery (promoted outside pgshard?): it still gets reads only; fence it or fix the shard map'),
    )
    once(`${node.name}:commits-waiting`, isPrimary && node.syncRequired && node.syncStandbys === 0, () =>
      this.log.error({ node: node.name }, 'commits on this primary are waiting: synchronous_standby_names is set and no standby is synchronous'),
    )
  }
}
