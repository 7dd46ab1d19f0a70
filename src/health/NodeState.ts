import type { NodeConfig } from '../config/ConfigSchema.js'
import type { ProbeResult } from './NodeProbe.js'

export type NodeRole = 'primary' | 'replica'

/** What the proxy knows about one Postgres server right now. Written by the health checker and failover. */
export class NodeState {
  /** Current role: starts as configured, changes on promotion. */
  role: NodeRole
  up = true
  /** Fenced nodes never get traffic until a DBA re-admits them. */
  fenced = false
  /** Checks in a row that failed / succeeded. */
  failures = 0
  successes = 0
  lastError: string | null = null
  lastCheckAt = 0
  /** Replicas: bytes of WAL not yet replayed, and seconds since the last replayed commit. */
  lagBytes = 0
  lagSeconds = 0
  /** WAL positions as numbers (LSN): replayed (replicas) or written (primary), and received (replicas). */
  replayLsn = 0n
  receiveLsn = 0n
  currentLsn = 0n
  /** What the server itself says (pg_is_in_recovery); null until a check has read it. */
  inRecovery: boolean | null = null
  /** Primary: synchronous_standby_names is set, and how many standbys are synchronous right now. */
  syncRequired = false
  syncStandbys = 0
  /** Statements in flight on this node (least-outstanding selection). */
  outstanding = 0
  /** Reads served, for counters and tests. */
  reads = 0
  writes = 0

  constructor(
    readonly name: string,
    readonly shard: number,
    readonly configuredRole: NodeRole,
    public config: NodeConfig,
  ) {
    this.role = configuredRole
  }

  get host(): string {
    return this.config.host
  }

  get port(): number {
    return this.config.port
  }

  get weight(): number {
    return this.config.weight
  }

  /** Records a health check's reading. Lag in bytes needs the primary's position: the monitor sets it. */
  applyProbe(p: ProbeResult): void {
    this.inRecovery = p.inRecovery
    this.currentLsn = p.currentLsn
    this.receiveLsn = p.receiveLsn
    this.replayLsn = p.replayLsn
    this.lagSeconds = p.replayDelaySeconds
    this.syncRequired = p.syncRequired
    this.syncStandbys = p.syncStandbys
  }

  /** Whether reads may go here (up, not fenced; lag limits are the selector's business). */
  get serving(): boolean {
    return this.up && !this.fenced
  }
}

/** The name a node gets when its config entry has none. */
export function defaultNodeName(shardName: string, role: NodeRole, replicaIndex: number): string {
  return role === 'primary' ? `${shardName}-primary` : `${shardName}-replica${replicaIndex + 1}`
}
