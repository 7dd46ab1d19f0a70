import type { Config } from '../config/ConfigSchema.js'
import { controlAccess, queryOnce } from '../health/ControlConnection.js'
import { PeriodicTask } from '../health/PeriodicTask.js'
import type { Topology } from '../health/Topology.js'
import type { Logger } from '../log/Logger.js'
import type { TwoPhaseMetrics } from '../metrics/TwoPhaseMetrics.js'
import type { ServerConnection } from '../pool/ServerConnection.js'

/** What the detector needs of a client session. */
export interface DeadlockParticipant {
  /** Grows with each client: the newest in a cycle gives way. */
  readonly serial: number
  readonly key: { pid: number }
  /** The connections of its transaction when that holds several shards; none otherwise. */
  spanningConnections(): ServerConnection[]
  breakDeadlock(conn: ServerConnection, detail: string): void
}

/** A server backend: the node it runs on and its pid there. */
interface Backend {
  node: string
  pid: number
}

interface Edge {
  from: string
  to: string
  /** The waiting backend. */
  waiter: Backend
}

/**
 * Finds transactions across shards that wait on each other: A holds a row on one shard and waits for one that B
 * holds on another, while B waits for A's. Each server sees one wait, never the cycle, so without this both
 * would wait forever. Every `sharding.deadlock_check_interval`, when a transaction holding several shards has a
 * statement in flight, each node involved says which of its backends wait for which (pg_blocking_pids); the
 * backends of one such transaction are one vertex. A cycle through more than one node is broken by cancelling
 * the waiting statement of the newest client in it, which gets 40P01 as from a server's own deadlock check.
 * (Cycles inside one node are the server's: it breaks them itself.)
 */
export class CrossShardDeadlockDetector {
  private readonly task = new PeriodicTask(
    () => this.look(),
    () => this.config.sharding.deadlock_check_interval,
    (err) => this.log.warn({ err: err.message }, 'could not look for deadlocks across shards'),
  )
  private readonly log: Logger

  constructor(
    private readonly participants: () => Iterable<DeadlockParticipant>,
    private readonly topology: Topology,
    private config: Config,
    log: Logger,
    private readonly metrics?: TwoPhaseMetrics,
  ) {
    this.log = log.child({ component: 'deadlocks' })
  }

  start(): void {
    this.task.start()
  }

  stop(): void {
    this.task.stop()
  }

  reconfigure(config: Config): void {
    this.config = config
  }

  /** One look; resolves with what it broke (for the log and tests), or null. */
  check(): Promise<string | null> {
    return this.task.runNow()
  }

  private async look(): Promise<string | null> {
    const owners = new Map<string, { participant: DeadlockParticipant; conn: ServerConnection }>()
    for (const p of this.participants()) {
      const conns = p.spanningConnections()
      if (!conns.some((c) => c.busy)) continue
      for (const conn of conns) owners.set(backendKey({ node: conn.nodeName, pid: conn.pid }), { participant: p, conn })
    }
    if (owners.size === 0) return null
    const nodes = new Set([...owners.keys()].map((k) => k.slice(0, k.lastIndexOf(':'))))
    const vertex = (b: Backend) => {
      const owner = owners.get(backendKey(b))
      return owner ? `client ${owner.participant.key.pid}` : `backend ${b.pid} on ${b.node}`
    }
    const edges: Edge[] = []
    for (const nodeName of nodes) {
      const node = this.topology.node(nodeName)
      if (!node) continue
      const rows = await queryOnce<{ pid: number; blockers: number[] }>(
        { host: node.host, port: node.port },
        controlAccess(this.config),
        "SELECT pid, pg_catalog.pg_blocking_pids(pid) AS blockers FROM pg_catalog.pg_stat_activity WHERE wait_event_type = 'Lock'",
        this.config.health.timeout * 5,
      )
      for (const row of rows) {
        const waiter = { node: nodeName, pid: row.pid }
        for (const blocker of row.blockers) edges.push({ from: vertex(waiter), to: vertex({ node: nodeName, pid: blocker }), waiter })
      }
    }
    const cycle = findCycle(edges)
    if (!cycle || new Set(cycle.map((e) => e.waiter.node)).size < 2) return null
    // The newest client in the cycle gives way.
    let victim: { participant: DeadlockParticipant; conn: ServerConnection } | null = null
    for (const e of cycle) {
      const owner = owners.get(backendKey(e.waiter))
      if (owner && (victim === null || owner.participant.serial > victim.participant.serial)) victim = owner
    }
    if (!victim) return null
    const described = cycle.map((e) => `${e.from} waits on ${e.waiter.node} for ${e.to}`).join('; ')
    victim.participant.breakDeadlock(victim.conn, described)
    this.metrics?.deadlockBroken()
    this.log.warn({ cycle: described, cancelled: `client ${victim.participant.key.pid}` }, 'deadlock across shards: cancelled one transaction')
    return described
  }
}

function backendKey(b: Backend): string {
  return `${b.node}:${b.pid}`
}

/** A cycle of the wait-for graph, as its edges in order, or null. */
function findCycle(edges: Edge[]): Edge[] | null {
  const out = new Map<string, Edge[]>()
  for (const e of edges) {
    const list = out.get(e.from)
    if (list) list.push(e)
    else out.set(e.from, [e])
  }
  const done = new Set<string>()
  const path: Edge[] = []
  const onPath = new Map<string, number>()
  const visit = (v: string): Edge[] | null => {
    onPath.set(v, path.length)
    for (const e of out.get(v) ?? []) {
      const at = onPath.get(e.to)
      if (at !== undefined) return [...path.slice(at), e]
      if (done.has(e.to)) continue
      path.push(e)
      const found = visit(e.to)
      if (found) return found
      path.pop()
    }
    onPath.delete(v)
    done.add(v)
    return null
  }
  for (const v of out.keys()) {
    if (done.has(v)) continue
    const found = visit(v)
    if (found) return found
  }
  return null
}
