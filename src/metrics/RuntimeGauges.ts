import { Counter, Gauge, type Registry } from 'prom-client'
import { logicalDatabase } from '../admin/ConsoleFormat.js'
import type { Pool } from '../pool/Pool.js'
import type { ProxyServer } from '../proxy/ProxyServer.js'

/** Counters the failover manager keeps (`FailoverManager.stats`). */
export interface FailoverCounters {
  failovers: number
  switchovers: number
  fencings: number
}

export interface RuntimeSources {
  readonly proxy: ProxyServer
  /** Clients connected to the admin console. */
  adminClients(): number
  /** null while no failover manager runs: the counters then stay at 0. */
  failoverStats(): FailoverCounters | null
}

/**
 * Gauges read from the live state when Prometheus scrapes, so the data path pays nothing for them: clients,
 * server connections, pool queues, nodes and lag, failover counters, readiness. Every label comes from the
 * config (user, database, shard, node) or a fixed set (state, role): never a query or a client address.
 */
export class RuntimeGauges {
  constructor(registry: Registry, src: RuntimeSources) {
    const registers = [registry]
    const { proxy } = src

    new Gauge({
      name: 'pgshard_clients',
      help: 'Connected clients by user, database and state (active: holds a server connection; waiting: waits for one; idle)',
      labelNames: ['user', 'database', 'state'],
      registers,
      collect() {
        this.reset()
        for (const u of proxy.config.users) for (const d of proxy.config.databases) for (const state of ['active', 'idle', 'waiting']) this.set({ user: u.name, database: d.name, state }, 0)
        for (const s of proxy.sessions) this.inc({ user: s.identity.user.name, database: s.identity.database.name, state: s.state })
      },
    })
    new Gauge({
      name: 'pgshard_pinned_clients',
      help: 'Clients in transaction pooling that keep their server connection for the rest of the session, by why (LISTEN, a session advisory lock, a temporary table, a WITH HOLD cursor)',
      labelNames: ['user', 'database', 'reason'],
      registers,
      collect() {
        this.reset()
        for (const s of proxy.sessions) if (s.pinnedBy !== null) this.inc({ user: s.identity.user.name, database: s.identity.database.name, reason: s.pinnedBy })
      },
    })
    new Gauge({
      name: 'pgshard_clients_held',
      help: 'Clients held between transactions while RESHARD moves rows or a planned switchover changes a primary (they go on when it ends)',
      registers,
      collect() {
        let held = 0
        for (const s of proxy.sessions) if (s.held) held++
        this.set(held)
      },
    })
    new Gauge({
      name: 'pgshard_admin_clients',
      help: 'Clients connected to the admin console',
      registers,
      collect() {
        this.set(src.adminClients())
      },
    })
    new Gauge({
      name: 'pgshard_server_connections',
      help: 'Server connections by node and state (active: lent to a client; idle; connecting: logging in or being reset)',
      labelNames: ['node', 'shard', 'role', 'state'],
      registers,
      collect() {
        this.reset()
        for (const n of proxy.topology.nodes()) {
          const labels = { node: n.name, shard: shardName(proxy, n.shard), role: n.role }
          for (const state of ['active', 'idle', 'connecting']) this.set({ ...labels, state }, 0)
        }
        for (const { pool, node } of proxy.pools.all()) {
          const labels = { node: node.name, shard: shardName(proxy, node.shard), role: node.role }
          const c = pool.counts
          this.inc({ ...labels, state: 'active' }, c.active)
          this.inc({ ...labels, state: 'idle' }, c.idle)
          this.inc({ ...labels, state: 'connecting' }, c.connecting)
        }
      },
    })
    new Gauge({
      name: 'pgshard_pool_waiting_clients',
      help: 'Clients queued for a server connection, per pool',
      labelNames: ['node', 'user', 'database'],
      registers,
      collect() {
        this.reset()
        for (const { pool, node, user, database } of proxy.pools.all()) this.set({ node: node.name, user, database: logicalDatabase(proxy.config, database) }, pool.counts.waiting)
      },
    })
    new Gauge({
      name: 'pgshard_pool_max_wait_seconds',
      help: 'How long the longest-waiting queued client of a pool has waited',
      labelNames: ['node', 'user', 'database'],
      registers,
      collect() {
        this.reset()
        for (const { pool, node, user, database } of proxy.pools.all()) this.set({ node: node.name, user, database: logicalDatabase(proxy.config, database) }, pool.oldestWaitMicros / 1e6)
      },
    })
    new Gauge({
      name: 'pgshard_pool_paused',
      help: '1 while a pool is paused (PAUSE in the admin console)',
      labelNames: ['node', 'user', 'database'],
      registers,
      collect() {
        this.reset()
        for (const { pool, node, user, database } of proxy.pools.all()) this.set({ node: node.name, user, database: logicalDatabase(proxy.config, database) }, pool.paused ? 1 : 0)
      },
    })
    // The pools' own cumulative counters, read at scrape time; a pool closed by a reload takes its counts along
    // (Prometheus sees a counter reset).
    const poolCounter = (name: string, help: string, read: (p: Pool) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['node', 'user', 'database'],
        registers,
        collect() {
          this.reset()
          for (const { pool, node, user, database } of proxy.pools.all()) this.inc({ node: node.name, user, database: logicalDatabase(proxy.config, database) }, read(pool))
        },
      })
    poolCounter('pgshard_pool_checkouts_total', 'Server connections handed to clients, per pool', (p) => p.stats.acquired)
    poolCounter('pgshard_pool_checkout_wait_seconds_total', 'Time clients spent queued for a server connection, per pool (divide by checkouts for the mean wait)', (p) => p.stats.waitMicros / 1e6)
    poolCounter('pgshard_pool_checkout_timeouts_total', 'Clients that gave up waiting for a server connection (53300), per pool', (p) => p.stats.timeouts)
    poolCounter(
      'pgshard_server_resets_total',
      'Server connections reset (DISCARD ALL) before reuse: session pooling, pinned clients, state pgshard could not track, per pool',
      (p) => p.stats.resets,
    )
    poolCounter('pgshard_server_connect_failures_total', 'Server connection attempts that failed (connect or log-in), per pool', (p) => p.stats.connectFailures)
    new Gauge({
      name: 'pgshard_node_up',
      help: '1 when the node answers its health checks, 0 when it is down or fenced',
      labelNames: ['node', 'shard', 'role'],
      registers,
      collect() {
        this.reset()
        for (const n of proxy.topology.nodes()) this.set({ node: n.name, shard: shardName(proxy, n.shard), role: n.role }, n.up && !n.fenced ? 1 : 0)
      },
    })
    new Gauge({
      name: 'pgshard_node_primary',
      help: '1 for the node that is its shard\u2019s primary now (changes on failover), 0 for replicas',
      labelNames: ['node', 'shard'],
      registers,
      collect() {
        this.reset()
        for (const n of proxy.topology.nodes()) this.set({ node: n.name, shard: shardName(proxy, n.shard) }, n.role === 'primary' ? 1 : 0)
      },
    })
    new Gauge({
      name: 'pgshard_node_fenced',
      help: '1 for a fenced node: it gets no traffic until a DBA runs ADMIT',
      labelNames: ['node', 'shard'],
      registers,
      collect() {
        this.reset()
        for (const n of proxy.topology.nodes()) this.set({ node: n.name, shard: shardName(proxy, n.shard) }, n.fenced ? 1 : 0)
      },
    })
    new Gauge({
      name: 'pgshard_replica_lag_bytes',
      help: 'WAL bytes a replica has not replayed yet, as its last health check saw it',
      labelNames: ['node', 'shard'],
      registers,
      collect() {
        this.reset()
        for (const n of proxy.topology.nodes()) if (n.role === 'replica') this.set({ node: n.name, shard: shardName(proxy, n.shard) }, n.lagBytes)
      },
    })
    new Gauge({
      name: 'pgshard_replica_lag_seconds',
      help: 'Seconds since the last transaction a replica replayed was committed on the primary (0 when caught up)',
      labelNames: ['node', 'shard'],
      registers,
      collect() {
        this.reset()
        for (const n of proxy.topology.nodes()) if (n.role === 'replica') this.set({ node: n.name, shard: shardName(proxy, n.shard) }, n.lagSeconds)
      },
    })
    new Gauge({
      name: 'pgshard_sync_standbys',
      help: 'Synchronous standbys a shard primary has now (as its last health check saw them)',
      labelNames: ['node', 'shard'],
      registers,
      collect() {
        this.reset()
        for (const n of proxy.topology.nodes()) if (n.role === 'primary' && !n.fenced) this.set({ node: n.name, shard: shardName(proxy, n.shard) }, n.syncStandbys)
      },
    })
    new Gauge({
      name: 'pgshard_commits_waiting_for_standby',
      help: '1 when a shard primary requires a synchronous standby and has none: its commits wait (health.synchronous_policy: durability)',
      labelNames: ['shard'],
      registers,
      collect() {
        this.reset()
        for (const s of proxy.topology.shards) {
          const p = proxy.topology.primaryOf(s.index)
          this.set({ shard: s.name }, p !== undefined && p.up && p.syncRequired && p.syncStandbys === 0 ? 1 : 0)
        }
      },
    })
    new Counter({
      name: 'pgshard_failovers_total',
      help: 'Replicas promoted over a dead primary (automatically, or by PROMOTE)',
      registers,
      collect() {
        this.reset()
        this.inc(src.failoverStats()?.failovers ?? 0)
      },
    })
    new Counter({
      name: 'pgshard_switchovers_total',
      help: 'Planned switchovers (PROMOTE while the primary was alive)',
      registers,
      collect() {
        this.reset()
        this.inc(src.failoverStats()?.switchovers ?? 0)
      },
    })
    new Counter({
      name: 'pgshard_fencings_total',
      help: 'Nodes fenced (by failover or FENCE)',
      registers,
      collect() {
        this.reset()
        this.inc(src.failoverStats()?.fencings ?? 0)
      },
    })
    new Gauge({
      name: 'pgshard_ready',
      help: '1 when the proxy can serve (accepting clients, every shard has a primary up): what /readyz answers',
      registers,
      collect() {
        this.set(proxy.notReadyReason() === null ? 1 : 0)
      },
    })
  }
}

function shardName(proxy: ProxyServer, index: number): string {
  return proxy.topology.shards[index]?.name ?? String(index)
}
