import { quoteLiteral } from '../router/SqlQuoting.js'
import { conninfoValue, conninfoWithAddress } from './Conninfo.js'
import { queryOnce, type ControlAccess } from './ControlConnection.js'
import type { NodeState } from './NodeState.js'

export interface RepointResult {
  /** The name the standby reports to its primary (what synchronous_standby_names must name). */
  applicationName: string
}

interface StandbySettings extends Record<string, unknown> {
  recovery: boolean
  conninfo: string
  slot: string
  cluster: string
}

/**
 * Points a standby at another primary: same primary_conninfo except host and port, through ALTER SYSTEM and a
 * reload. Since Postgres 13 a reload applies primary_conninfo: the startup process restarts the WAL receiver
 * (checked on 15 by the failover tests), and recovery_target_timeline = latest (the default) makes it follow the
 * promoted standby's new timeline.
 */
export class ReplicaRepointer {
  constructor(
    private readonly control: ControlAccess,
    private readonly timeoutMs: number,
  ) {}

  /** The application name a standby uses, as its walreceiver does: primary_conninfo, else cluster_name. */
  async applicationName(replica: NodeState): Promise<string> {
    const s = await this.settings(replica)
    return applicationNameOf(s)
  }

  async repoint(replica: NodeState, primary: NodeState): Promise<RepointResult> {
    const s = await this.settings(replica)
    if (!s.recovery) throw new Error(`${replica.name} is not a standby: it cannot follow ${primary.name}`)
    if (s.slot !== '') {
      // The standby streams through a named slot: the new primary must have it, or the WAL receiver is refused.
      await this.run(
        primary,
        `SELECT pg_create_physical_replication_slot(${quoteLiteral(s.slot)}, true)
           WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(s.slot)})`,
      )
    }
    const conninfo = conninfoWithAddress(s.conninfo, primary.host, primary.port)
    await this.run(replica, `ALTER SYSTEM SET primary_conninfo = ${quoteLiteral(conninfo)}`)
    await this.run(replica, 'SELECT pg_reload_conf()')
    return { applicationName: applicationNameOf(s) }
  }

  /** Whether the standby's WAL receiver streams from `primary` now. */
  async follows(replica: NodeState, primary: NodeState): Promise<boolean> {
    const rows = await this.run<{ status: string; port: number | null } & Record<string, unknown>>(
      replica,
      'SELECT status, sender_port AS port FROM pg_stat_wal_receiver',
    )
    return rows.some((r) => r.status === 'streaming' && r.port === primary.port)
  }

  private async settings(replica: NodeState): Promise<StandbySettings> {
    const [s] = await this.run<StandbySettings>(
      replica,
      `SELECT pg_is_in_recovery() AS recovery, current_setting('primary_conninfo') AS conninfo,
              current_setting('primary_slot_name') AS slot, current_setting('cluster_name') AS cluster`,
    )
    return s
  }

  private run<Row extends Record<string, unknown>>(node: NodeState, sql: string): Promise<Row[]> {
    return queryOnce<Row>({ host: node.host, port: node.port }, this.control, sql, this.timeoutMs)
  }
}

function applicationNameOf(s: StandbySettings): string {
  return conninfoValue(s.conninfo, 'application_name') || s.cluster || 'walreceiver'
}
