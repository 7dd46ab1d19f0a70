import { bool, int8, text, type AdminCommand } from '../AdminCommand.js'
import { logicalDatabase } from '../ConsoleFormat.js'

// PgBouncer's SHOW POOLS columns first (same names, same order), then pgshard's. pgshard never queues cancel
// requests (it forwards them at once), so the other cancel columns are always 0.
export const showPools: AdminCommand = {
  words: ['SHOW', 'POOLS'],
  argument: 'none',
  usage: 'SHOW POOLS',
  description: 'one row per server connection pool (node, user, database)',
  columns: [
    text('database'),
    text('user'),
    int8('cl_active'),
    int8('cl_waiting'),
    int8('cl_active_cancel_req'),
    int8('cl_waiting_cancel_req'),
    int8('sv_active'),
    int8('sv_active_cancel'),
    int8('sv_being_canceled'),
    int8('sv_idle'),
    int8('sv_used'),
    int8('sv_tested'),
    int8('sv_login'),
    int8('maxwait'),
    int8('maxwait_us'),
    text('pool_mode'),
    text('node'),
    text('shard'),
    text('role'),
    int8('pool_size'),
    bool('paused'),
    int8('server_assignments'),
    int8('checkout_timeouts'),
    int8('connect_failures'),
  ],
  run(ctx) {
    const { proxy } = ctx
    const config = proxy.config
    const rows = proxy.pools.all().map(({ pool, node, user, database }) => {
      const c = pool.counts
      const wait = pool.oldestWaitMicros
      const logical = logicalDatabase(config, database)
      const mode = config.users.find((u) => u.name === user)?.pool_mode ?? config.databases.find((d) => d.name === logical)?.pool_mode ?? config.pool.mode
      return [
        logical,
        user,
        c.active,
        c.waiting,
        0,
        0,
        c.active,
        0,
        c.beingCanceled,
        c.idle,
        0,
        0,
        c.connecting,
        Math.floor(wait / 1_000_000),
        wait % 1_000_000,
        mode,
        node.name,
        proxy.topology.shards[node.shard]?.name ?? null,
        node.role,
        pool.size,
        pool.paused,
        pool.stats.acquired,
        pool.stats.timeouts,
        pool.stats.connectFailures,
      ]
    })
    return { rows, tag: 'SHOW' }
  },
}
