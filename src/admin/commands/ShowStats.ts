import { int8, text, type AdminCommand } from '../AdminCommand.js'
import { logicalDatabase } from '../ConsoleFormat.js'

// PgBouncer's SHOW STATS columns that pgshard counts per database (same names, same order; times in
// microseconds), then pgshard's. Transactions are the ones clients opened explicitly (BEGIN … COMMIT).
// Statement times are per shard and role: see pgshard_query_duration_seconds.
export const showStats: AdminCommand = {
  words: ['SHOW', 'STATS'],
  argument: 'none',
  usage: 'SHOW STATS',
  description: 'totals per database since start',
  columns: [
    text('database'),
    int8('total_server_assignment_count'),
    int8('total_xact_count'),
    int8('total_query_count'),
    int8('total_received'),
    int8('total_sent'),
    int8('total_wait_time'),
    int8('clients'),
    int8('total_checkout_timeouts'),
  ],
  run(ctx) {
    const { proxy } = ctx
    const pools = new Map<string, { assigned: number; waitUs: number; timeouts: number }>()
    for (const { pool, database } of proxy.pools.all()) {
      const db = logicalDatabase(proxy.config, database)
      const p = pools.get(db) ?? { assigned: 0, waitUs: 0, timeouts: 0 }
      p.assigned += pool.stats.acquired
      p.waitUs += pool.stats.waitMicros
      p.timeouts += pool.stats.timeouts
      pools.set(db, p)
    }
    const clients = ctx.totals.byDatabase([...proxy.sessions].map((s) => ({ database: s.identity.database.name, stats: s.stats })))
    const names = [...new Set([...proxy.config.databases.map((d) => d.name), ...clients.keys(), ...pools.keys()])]
    const rows = names.map((db) => {
      const c = clients.get(db)
      const p = pools.get(db)
      return [db, p?.assigned ?? 0, c?.transactions ?? 0, c?.queries ?? 0, c?.bytesIn ?? 0, c?.bytesOut ?? 0, p?.waitUs ?? 0, c?.clients ?? 0, p?.timeouts ?? 0]
    })
    return { rows, tag: 'SHOW' }
  },
}
