import type { Config } from '../config/ConfigSchema.js'
import type { Logger } from '../log/Logger.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { quoteLiteral } from '../router/SqlQuoting.js'
import { isAliveAnswer, type CheckOutcome } from './HealthChecker.js'
import { ControlConnection, controlAccess, queryOnce } from './ControlConnection.js'
import type { HealthMonitor } from './HealthMonitor.js'
import { formatLsn, parseLsn } from './Lsn.js'
import type { NodeState } from './NodeState.js'
import { ReplicaRepointer } from './ReplicaRepointer.js'
import { syncStandbySetting } from './SyncStandbyPolicy.js'
import type { Topology } from './Topology.js'

/** SQLSTATE 55000: the node or shard is not in a state that allows the action. */
const NOT_IN_PREREQUISITE_STATE = '55000'
/** How long pg_promote() may take (it replays what the standby received first). */
const PROMOTE_WAIT_S = 60
/** How long a planned switchover waits for the target to replay the old primary's last WAL. */
const SWITCHOVER_CATCH_UP_MS = 30_000
/** How long a planned switchover lets transactions on the old primary finish before it fences it. */
const SWITCHOVER_DRAIN_MS = 5_000
const POLL_MS = 50

/** What pools the manager closes: those of a fenced node. */
export interface NodePools {
  dropNode(nodeName: string, immediately: boolean): void
}

/** Holding clients before they route (the proxy's routing gate), so that a planned switchover fails none. */
export interface ClientHold {
  /** Holds them and waits until nothing runs on `nodeName` (or `timeoutMs`); resolves with what still does. */
  holdClients(timeoutMs: number, nodeName: string): Promise<number>
  releaseClients(): void
}

export interface FailoverStats {
  /** Promotions over a dead primary (automatic or by PROMOTE). */
  failovers: number
  /** Planned switchovers (PROMOTE while the primary was alive). */
  switchovers: number
  fencings: number
  /** Duration of the last promotion: from the primary found down (or PROMOTE) until writes went to the new one. */
  lastFailoverMs: number | null
}

interface Position {
  node: NodeState
  receive: bigint
  replay: bigint
  /** Not in recovery any more: promoted already. */
  promoted: boolean
}

/** Most WAL received first; then most replayed. */
function byMostWal(a: Position, b: Position): number {
  if (a.receive !== b.receive) return b.receive > a.receive ? 1 : -1
  if (a.replay !== b.replay) return b.replay > a.replay ? 1 : -1
  return 0
}

/**
 * Promotes a replica when a shard primary dies (`failover: auto`), and carries out the DBA's PROMOTE, FENCE
 * and ADMIT. Only one actor may promote: this instance assumes it is the only one with `failover: auto`
 * (docs/failover.md). Every step is logged.
 */
export class FailoverManager {
  readonly stats: FailoverStats = { failovers: 0, switchovers: 0, fencings: 0, lastFailoverMs: null }
  /** Shards with a failover or admin action running: one at a time per shard. */
  private readonly busy = new Set<number>()
  /** Auto shards whose failover failed after the old primary was fenced: tried again on the next check. */
  private readonly retry = new Set<number>()
  /** Standbys that could not be repointed during a failover: repointed when they answer again. */
  private readonly pendingRepoint = new Set<string>()
  private readonly repointing = new Set<string>()
  /** Auto shards where no replica could be promoted (logged once per episode). */
  private readonly noCandidate = new Set<number>()
  private readonly log: Logger
  private stopped = true

  constructor(
    private readonly topology: Topology,
    private readonly monitor: HealthMonitor,
    private readonly pools: NodePools,
    private config: Config,
    log: Logger,
    private readonly clients?: ClientHold,
  ) {
    this.log = log.child({ component: 'failover' })
    monitor.onOutcome((o) => this.onCheck(o))
  }

  start(): void {
    this.stopped = false
  }

  /** Stops acting on checks; an action already running finishes. */
  stop(): void {
    this.stopped = true
  }

  reconfigure(config: Config): void {
    this.config = config
  }

  /** Takes a node out of all traffic until ADMIT; its server connections close now. */
  fence(nodeName: string): string {
    const node = this.nodeNamed(nodeName)
    if (node.fenced) return `node ${node.name} is already fenced`
    const wasPrimary = this.topology.primaryOf(node.shard) === node
    this.fenceNode(node, 'fenced by FENCE')
    const shard = this.topology.shards[node.shard].name
    return wasPrimary
      ? `node ${node.name} fenced; shard ${shard} has no primary: writes fail until you PROMOTE a replica or ADMIT ${node.name}`
      : `node ${node.name} fenced: it gets no reads until ADMIT`
  }

  /**
   * Makes `nodeName` (a replica) the primary of its shard. With the primary alive this is a planned switchover:
   * the old primary stops getting writes and is fenced, the target replays everything it wrote, then it is
   * promoted. With the primary dead or fenced it is a manual failover, refused if another replica has more WAL.
   */
  async promote(nodeName: string): Promise<string> {
    const target = this.nodeNamed(nodeName)
    const shard = target.shard
    const shardName = this.topology.shards[shard].name
    if (target.fenced) throw this.refusal(`node ${target.name} is fenced: ADMIT it before promoting it`)
    const current = this.topology.primaryOf(shard)
    if (current === target) throw this.refusal(`node ${target.name} is already the primary of shard ${shardName}`)
    this.claim(shard)
    try {
      const began = Date.now()
      if (current && (await this.answers(current))) return await this.switchover(current, target, began)
      const positions = (await this.positions(shard)).filter((p) => !p.promoted || p.node === target)
      const mine = positions.find((p) => p.node === target)
      if (!mine) throw this.refusal(`node ${target.name} did not answer as a standby: it cannot be promoted now`)
      const better = positions.find((p) => p.receive > mine.receive)
      if (better)
        throw this.refusal(
          `node ${target.name} has received less WAL (${formatLsn(mine.receive)}) than ${better.node.name} (${formatLsn(better.receive)}): promote ${better.node.name}, or commits acknowledged by it would be lost`,
        )
      await this.switchPrimary(shard, current, target, began, 'manual failover')
      return `node ${target.name} is the primary of shard ${shardName} (manual failover in ${this.stats.lastFailoverMs} ms)${current ? `; ${current.name} is fenced` : ''}`
    } finally {
      this.busy.delete(shard)
    }
  }

  /**
   * Lets a fenced node serve again, after checking it is safe: a standby streaming from the current primary,
   * or a primary when its shard has none. Returns what was done; refusals are PgErrors (55000).
   */
  async admit(nodeName: string): Promise<string> {
    const node = this.nodeNamed(nodeName)
    if (!node.fenced) return `node ${node.name} is not fenced: nothing to do`
    const shard = node.shard
    const shardName = this.topology.shards[shard].name
    this.claim(shard)
    try {
      let state: { recovery: boolean; port: number | null }
      try {
        ;[state] = await queryOnce<{ recovery: boolean; port: number | null }>(
          { host: node.host, port: node.port },
          controlAccess(this.config),
          `SELECT pg_is_in_recovery() AS recovery, (SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming') AS port`,
          this.config.health.timeout * 2,
        )
      } catch (err) {
        throw this.refusal(`cannot admit ${node.name}: it does not answer (${(err as Error).message})`)
      }
      const current = this.topology.primaryOf(shard)
      if (state.recovery) {
        if (current && state.port !== current.port)
          throw this.refusal(
            `cannot admit ${node.name}: it is a standby but does not stream from the primary ${current.name}; point its primary_conninfo at ${current.name} (after pg_rewind if it was a primary) and ADMIT it again`,
          )
        this.unfence(node, 'replica')
        return `node ${node.name} admitted as a replica of shard ${shardName}`
      }
      if (current)
        throw this.refusal(
          `cannot admit ${node.name}: it is a primary (not in recovery) and shard ${shardName} already has the primary ${current.name}; rebuild ${node.name} as a standby of ${current.name} (pg_rewind or a new base backup), then ADMIT it`,
        )
      this.unfence(node, 'primary')
      void this.monitor.refreshCatalog(shard)
      return `node ${node.name} admitted as the primary of shard ${shardName} (it had none)`
    } finally {
      this.busy.delete(shard)
    }
  }

  private onCheck(o: CheckOutcome): void {
    if (this.stopped) return
    const { node } = o
    if (o.ok && this.pendingRepoint.has(node.name)) void this.repointLate(node)
    if (o.ok) return
    const shard = this.topology.shards[node.shard]
    if (!shard || shard.failover !== 'auto' || this.busy.has(shard.index)) return
    const primary = this.topology.primaryOf(shard.index)
    if ((primary === node && !node.up) || (primary === undefined && this.retry.has(shard.index))) void this.autoFailover(shard.index, primary)
  }

  private async autoFailover(shard: number, old: NodeState | undefined): Promise<void> {
    this.busy.add(shard)
    const began = Date.now()
    const shardName = this.topology.shards[shard].name
    try {
      if (old) {
        this.log.warn({ shard: shardName, node: old.name }, 'failover: primary is down; confirming with a direct check')
        if (await this.answers(old)) {
          this.log.warn({ shard: shardName, node: old.name }, 'failover: the primary answered the confirming check; not promoting')
          return
        }
        this.log.warn({ shard: shardName, node: old.name }, 'failover: confirmed, the primary does not answer')
      }
      const positions = await this.positions(shard)
      // A standby already out of recovery was promoted by an earlier attempt that lost its answer: adopt it.
      const best = positions.find((p) => p.promoted) ?? positions.sort(byMostWal)[0]
      if (!best) {
        if (!this.noCandidate.has(shard))
          this.log.error({ shard: shardName }, 'failover: no healthy replica to promote; writes fail until one answers, the primary returns or a DBA acts')
        this.noCandidate.add(shard)
        return
      }
      this.noCandidate.delete(shard)
      this.log.warn(
        { shard: shardName, node: best.node.name, receiveLsn: formatLsn(best.receive), candidates: positions.map((p) => `${p.node.name}@${formatLsn(p.receive)}`) },
        'failover: chose the replica that received the most WAL',
      )
      await this.switchPrimary(shard, old, best.node, began, 'failover')
      this.retry.delete(shard)
    } catch (err) {
      this.retry.add(shard)
      this.log.error({ shard: shardName, err: (err as Error).message }, 'failover: failed; retrying on the next check')
    } finally {
      this.busy.delete(shard)
    }
  }

  /**
   * A planned switchover holds every client before it routes (they wait, they do not fail) and lets the
   * transactions on the old primary finish, so that the switch costs the clients a pause, not errors.
   */
  private async switchover(old: NodeState, target: NodeState, began: number): Promise<string> {
    const shardName = this.topology.shards[old.shard].name
    const busy = (await this.clients?.holdClients(SWITCHOVER_DRAIN_MS, old.name)) ?? 0
    if (busy > 0) this.log.warn({ shard: shardName, node: old.name, busy }, `switchover: transactions still running on the primary after ${SWITCHOVER_DRAIN_MS} ms are cut off`)
    try {
      return await this.switchHeld(old, target, began)
    } finally {
      this.clients?.releaseClients()
    }
  }

  private async switchHeld(old: NodeState, target: NodeState, began: number): Promise<string> {
    const shardName = this.topology.shards[old.shard].name
    this.log.warn({ shard: shardName, from: old.name, to: target.name }, 'switchover: fencing the primary so it gets no more writes')
    this.fenceNode(old, 'switchover')
    try {
      const [{ lsn }] = await queryOnce<{ lsn: string }>(this.address(old), controlAccess(this.config), 'SELECT pg_current_wal_lsn()::text AS lsn', this.config.health.timeout * 2)
      const until = parseLsn(lsn)
      this.log.info({ shard: shardName, node: target.name, lsn }, 'switchover: waiting for the target to replay the primary\u2019s WAL')
      await this.waitForReplay(target, until)
      await this.switchPrimary(old.shard, old, target, began, 'switchover')
    } catch (err) {
      if (target.role !== 'primary' && (await this.stillStandby(target))) {
        this.unfence(old, 'primary')
        this.log.error({ shard: shardName, err: (err as Error).message }, 'switchover: aborted; the old primary serves again')
        throw this.refusal(`switchover to ${target.name} aborted, ${old.name} is the primary again: ${(err as Error).message}`)
      }
      throw err
    }
    return `switched shard ${shardName} over to ${target.name} in ${this.stats.lastFailoverMs} ms; ${old.name} is fenced: stop it, pg_rewind it from ${target.name}, start it as a standby of ${target.name}, then ADMIT it`
  }

  /**
   * The promotion proper. Order matters: the old primary is fenced first (no write may reach it again); the
   * other standbys are pointed at the target before it is promoted, so none can be ahead of it, and they follow
   * its new timeline; synchronous_standby_names is set while it is still a standby, so no commit is ever
   * acknowledged on it without the chosen policy; writes go to it only once it has left recovery.
   */
  private async switchPrimary(shard: number, old: NodeState | undefined, target: NodeState, began: number, kind: string): Promise<void> {
    const shardName = this.topology.shards[shard].name
    const step = (msg: string, extra: object = {}) => this.log.warn({ shard: shardName, node: target.name, kind, ...extra }, `${kind}: ${msg}`)
    if (old && !old.fenced) this.fenceNode(old, kind)
    const repointer = new ReplicaRepointer(controlAccess(this.config), this.config.health.timeout * 2)
    const others = this.topology.shards[shard].nodes.filter((n) => n !== target && n !== old && !n.fenced && n.role === 'replica')
    const standbyNames = await Promise.all(
      others.map(async (r) => {
        try {
          if (!r.up) throw new Error('it is down')
          const { applicationName } = await repointer.repoint(r, target)
          this.pendingRepoint.delete(r.name)
          step('replica repointed', { replica: r.name })
          return applicationName
        } catch (err) {
          // It follows when it answers again; until then its node name stands in for its application_name.
          this.pendingRepoint.add(r.name)
          this.log.warn({ shard: shardName, replica: r.name, err: (err as Error).message }, `${kind}: replica could not be repointed now; will retry when it answers`)
          return r.name
        }
      }),
    )
    const sync = syncStandbySetting(this.config.health.synchronous_policy, standbyNames)
    await this.run(target, `ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(sync.value)}`)
    await this.run(target, 'SELECT pg_reload_conf()')
    await this.waitFor(target, `SELECT current_setting('synchronous_standby_names') = ${quoteLiteral(sync.value)} AS ok`, 5000)
    step('synchronous_standby_names set', { policy: this.config.health.synchronous_policy, value: sync.value })
    if (sync.commitsWait)
      this.log.error({ shard: shardName, node: target.name }, `${kind}: no replica left to be synchronous: commits on the new primary wait until a standby connects (health.synchronous_policy = durability)`)
    const [{ recovery }] = await this.run<{ recovery: boolean }>(target, 'SELECT pg_is_in_recovery() AS recovery')
    if (recovery) {
      step('promoting')
      // With wait = true it returns true only once the standby has left recovery and accepts writes.
      const [{ promoted }] = await this.run<{ promoted: boolean }>(target, `SELECT pg_promote(true, ${PROMOTE_WAIT_S}) AS promoted`, (PROMOTE_WAIT_S + 5) * 1000)
      if (!promoted) throw new Error(`pg_promote() on ${target.name} did not finish within ${PROMOTE_WAIT_S} s`)
    } else step('already out of recovery: adopting it as the primary')
    target.role = 'primary'
    target.lagBytes = 0
    target.lagSeconds = 0
    target.inRecovery = false
    const ms = Date.now() - began
    this.stats.lastFailoverMs = ms
    if (kind === 'switchover') this.stats.switchovers++
    else this.stats.failovers++
    step('writes now go to the new primary', { ms, fenced: old?.name })
    void this.afterSwitch(shard, target, others.filter((r) => !this.pendingRepoint.has(r.name)), repointer)
  }

  /** Confirms the repointed standbys stream from the new primary, and reloads the function catalog. */
  private async afterSwitch(shard: number, primary: NodeState, replicas: NodeState[], repointer: ReplicaRepointer): Promise<void> {
    void this.monitor.refreshCatalog(shard)
    await Promise.all(
      replicas.map(async (r) => {
        const deadline = Date.now() + 30_000
        while (Date.now() < deadline && !this.stopped) {
          if (await repointer.follows(r, primary).catch(() => false)) {
            this.log.info({ replica: r.name, primary: primary.name }, 'replica streams from the new primary')
            return
          }
          await sleep(200)
        }
        this.log.error({ replica: r.name, primary: primary.name }, 'replica does not stream from the new primary 30 s after the failover; check its log (it may need pg_rewind)')
      }),
    )
  }

  private async repointLate(node: NodeState): Promise<void> {
    const primary = this.topology.primaryOf(node.shard)
    if (!primary || this.repointing.has(node.name)) return
    this.repointing.add(node.name)
    try {
      await new ReplicaRepointer(controlAccess(this.config), this.config.health.timeout * 2).repoint(node, primary)
      this.pendingRepoint.delete(node.name)
      this.log.warn({ replica: node.name, primary: primary.name }, 'replica repointed to the new primary after it came back')
    } catch (err) {
      this.log.warn({ replica: node.name, err: (err as Error).message }, 'replica still cannot be repointed')
    } finally {
      this.repointing.delete(node.name)
    }
  }

  /** The confirming check: a fresh connection with a longer timeout than the routine check. */
  private async answers(node: NodeState): Promise<boolean> {
    try {
      await this.run(node, 'SELECT 1', this.config.health.timeout * 2)
      return true
    } catch (err) {
      return isAliveAnswer(err)
    }
  }

  private async stillStandby(node: NodeState): Promise<boolean> {
    try {
      const [{ recovery }] = await this.run<{ recovery: boolean }>(node, 'SELECT pg_is_in_recovery() AS recovery')
      return recovery
    } catch {
      return false
    }
  }

  /** Fresh WAL positions of the shard's healthy standbys (the primary is gone: they no longer move). */
  private async positions(shard: number): Promise<Position[]> {
    const replicas = this.topology.shards[shard].nodes.filter((n) => n.role === 'replica' && n.serving)
    const read = await Promise.all(
      replicas.map(async (node) => {
        try {
          const [r] = await this.run<{ recovery: boolean; receive: string | null; replay: string | null }>(
            node,
            'SELECT pg_is_in_recovery() AS recovery, pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay',
          )
          if (!r.recovery) return { node, receive: 0n, replay: 0n, promoted: true }
          // After a restart a standby may not have received anything yet; what it replayed is then what it has.
          const replay = parseLsn(r.replay)
          const receive = parseLsn(r.receive)
          return { node, receive: receive > replay ? receive : replay, replay, promoted: false }
        } catch {
          return null
        }
      }),
    )
    return read.filter((p): p is Position => p !== null)
  }

  private async waitForReplay(node: NodeState, lsn: bigint): Promise<void> {
    const sql = `SELECT coalesce(pg_last_wal_replay_lsn() >= ${quoteLiteral(formatLsn(lsn))}::pg_lsn, false) AS ok`
    await this.waitFor(node, sql, SWITCHOVER_CATCH_UP_MS)
  }

  /** Polls a query returning `ok` until it is true, over one connection. */
  private async waitFor(node: NodeState, sql: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const conn = new ControlConnection(this.address(node), controlAccess(this.config))
    try {
      for (;;) {
        const [row] = await conn.query<{ ok: boolean }>(sql, this.config.health.timeout * 2)
        if (row.ok) return
        if (Date.now() > deadline) throw new Error(`${node.name}: condition not reached within ${timeoutMs} ms (${sql.slice(0, 60)}…)`)
        await sleep(POLL_MS)
      }
    } finally {
      conn.close()
    }
  }

  private fenceNode(node: NodeState, reason: string): void {
    node.fenced = true
    this.stats.fencings++
    // Clients in a transaction there lose their server connection and get a FATAL 08006 from their session.
    this.pools.dropNode(node.name, true)
    this.log.warn({ node: node.name, reason }, 'node fenced: no traffic until ADMIT')
  }

  private unfence(node: NodeState, role: NodeState['role']): void {
    node.fenced = false
    node.role = role
    node.failures = 0
    this.pendingRepoint.delete(node.name)
    this.log.warn({ node: node.name, role }, 'node admitted')
    void this.monitor.checkNow(node.name).catch(() => {})
  }

  private claim(shard: number): void {
    if (this.busy.has(shard)) throw this.refusal(`a failover or admin action on shard ${this.topology.shards[shard].name} is already running`)
    this.busy.add(shard)
  }

  private nodeNamed(name: string): NodeState {
    const node = this.topology.node(name)
    if (!node) throw new PgError(SqlState.UNDEFINED_OBJECT, `no node named "${name}"`, { hint: `Nodes: ${this.topology.nodes().map((n) => n.name).join(', ')}` })
    return node
  }

  private refusal(message: string): PgError {
    return new PgError(NOT_IN_PREREQUISITE_STATE, message)
  }

  private address(node: NodeState): { host: string; port: number } {
    return { host: node.host, port: node.port }
  }

  private run<Row extends Record<string, unknown>>(node: NodeState, sql: string, timeoutMs = this.config.health.timeout * 2): Promise<Row[]> {
    return queryOnce<Row>(this.address(node), controlAccess(this.config), sql, timeoutMs)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
