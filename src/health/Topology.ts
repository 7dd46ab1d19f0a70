import type { Config } from '../config/ConfigSchema.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import type { Role } from '../router/Route.js'
import { NodeState, defaultNodeName } from './NodeState.js'

export interface ShardState {
  name: string
  index: number
  nodes: NodeState[]
  failover: 'auto' | 'manual'
}

export interface PickOptions {
  /** Replicas must have replayed at least this LSN (read-your-writes). */
  minLsn?: bigint
  /** A node to avoid (a retry after it failed). */
  exclude?: string
}

/**
 * The live view of every shard's nodes: which is primary, which are up, fenced, how far behind. Everyone reads
 * it; the health checker and failover write it. Chooses the node for each statement.
 */
export class Topology {
  shards: ShardState[] = []
  private readonly byName = new Map<string, NodeState>()
  private rr = 0
  private config!: Config

  constructor(config: Config) {
    this.apply(config)
  }

  /** Builds the shard list from a config, keeping the runtime state of nodes that stay (same name). */
  apply(config: Config): { added: NodeState[]; removed: NodeState[]; changed: NodeState[] } {
    this.config = config
    const old = new Map(this.byName)
    // A fence follows the server, not its name: a map rewritten after a failover (the promoted replica listed
    // as primary, the old primary as a replica) must not hand the old primary traffic again.
    const fencedAddresses = new Set([...old.values()].filter((n) => n.fenced).map((n) => `${n.host}:${n.port}`))
    const added: NodeState[] = []
    const changed: NodeState[] = []
    this.byName.clear()
    this.shards = config.shards.map((s, index) => {
      const entries = [
        { cfg: s.primary, role: 'primary' as const, i: 0 },
        ...s.replicas.map((cfg, i) => ({ cfg, role: 'replica' as const, i })),
      ]
      const nodes = entries.map(({ cfg, role, i }) => {
        const name = cfg.name ?? defaultNodeName(s.name, role, i)
        const prev = old.get(name)
        if (prev && prev.shard === index && prev.host === cfg.host && prev.port === cfg.port) {
          old.delete(name)
          if (prev.configuredRole !== role || prev.config.database !== cfg.database) changed.push(prev)
          prev.config = cfg
          this.byName.set(name, prev)
          return prev
        }
        const node = new NodeState(name, index, role, cfg)
        node.fenced = fencedAddresses.has(`${cfg.host}:${cfg.port}`)
        added.push(node)
        this.byName.set(name, node)
        return node
      })
      return { name: s.name, index, nodes, failover: s.failover }
    })
    return { added, removed: [...old.values()], changed }
  }

  node(name: string): NodeState | undefined {
    return this.byName.get(name)
  }

  nodes(): NodeState[] {
    return [...this.byName.values()]
  }

  primaryOf(shard: number): NodeState | undefined {
    return this.shards[shard]?.nodes.find((n) => n.role === 'primary' && !n.fenced)
  }

  /** The node for a statement on `shard`: the primary for writes; for reads a fresh replica when one qualifies. */
  pick(shard: number, role: Role, opts: PickOptions = {}): NodeState {
    const s = this.shards[shard]
    if (!s) throw new PgError(SqlState.INTERNAL_ERROR, `no shard #${shard}`)
    const primary = this.primaryOf(shard)
    if (role === 'replica') {
      const r = this.pickReplica(s, opts)
      if (r) return r
    }
    if (!primary || !primary.up)
      throw new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        primary
          ? `the primary of shard ${s.name} (${primary.name}) is down${s.failover === 'auto' ? ' and failover is in progress' : ''}`
          : `shard ${s.name} has no primary`,
        {
          hint:
            s.failover === 'auto'
              ? 'Retry shortly: pgshard promotes a replica.'
              : 'failover is manual for this shard: a DBA must PROMOTE a replica (admin console) or bring the primary back.',
        },
      )
    return primary
  }

  private pickReplica(s: ShardState, opts: PickOptions): NodeState | undefined {
    const { routing, health } = this.config
    const candidates = s.nodes.filter((n) => {
      if (!n.serving || n.name === opts.exclude) return false
      if (n.role === 'primary') return routing.primary_reads
      if (health.max_lag_bytes !== undefined && n.lagBytes > health.max_lag_bytes) return false
      if (health.max_lag !== undefined && n.lagSeconds * 1000 > health.max_lag) return false
      if (opts.minLsn !== undefined && n.replayLsn < opts.minLsn) return false
      return n.weight > 0
    })
    if (candidates.length === 0) return undefined
    if (candidates.length === 1) return candidates[0]
    switch (routing.replica_selection) {
      case 'least_outstanding': {
        let best = candidates[0]
        for (const c of candidates) if (c.outstanding / c.weight < best.outstanding / best.weight) best = c
        return best
      }
      case 'random':
        return weighted(candidates, Math.random())
      default: {
        const total = candidates.reduce((a, c) => a + c.weight, 0)
        this.rr = (this.rr + 1) % 1_000_000_007
        return weighted(candidates, ((this.rr % total) + 0.5) / total)
      }
    }
  }
}

/** The candidate whose share of the total weight covers position x in [0, 1). */
function weighted(nodes: NodeState[], x: number): NodeState {
  const total = nodes.reduce((a, c) => a + c.weight, 0)
  let acc = 0
  for (const n of nodes) {
    acc += n.weight / total
    if (x < acc) return n
  }
  return nodes[nodes.length - 1]
}
