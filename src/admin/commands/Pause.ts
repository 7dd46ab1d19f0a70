import type { AdminCommand } from '../AdminCommand.js'
import { poolsOf, serverDatabaseOf } from './PoolSelection.js'

/**
 * Stops handing out server connections (clients queue) and waits until the connections in use come back, so
 * that the servers are idle when PAUSE returns; after shutdown_timeout it returns anyway and says how many are
 * still busy (a session-mode client keeps its connection until it disconnects).
 */
export const pause: AdminCommand = {
  words: ['PAUSE'],
  argument: 'optional',
  usage: 'PAUSE [db]',
  description: 'hold new transactions in the queue and wait until the servers are idle',
  columns: [],
  async run(ctx, db) {
    poolsOf(ctx, db)
    // Pools made later for this database start paused too.
    const pools = ctx.proxy.pools.pauseDatabase(serverDatabaseOf(ctx, db))
    ctx.log.info({ database: db || '(all)', pools: pools.length }, 'pools paused')
    const left = await ctx.proxy.pools.untilIdle(pools, ctx.proxy.config.shutdown_timeout)
    return { tag: 'PAUSE', notices: left > 0 ? [`${left} server connection(s) still in use after ${ctx.proxy.config.shutdown_timeout} ms; they return when their clients finish`] : [] }
  },
}
