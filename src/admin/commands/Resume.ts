import type { AdminCommand } from '../AdminCommand.js'
import { poolsOf, serverDatabaseOf } from './PoolSelection.js'

export const resume: AdminCommand = {
  words: ['RESUME'],
  argument: 'optional',
  usage: 'RESUME [db]',
  description: 'hand out server connections again after PAUSE (or a RESHARD whose outcome was unknown)',
  columns: [],
  run(ctx, db) {
    const paused = poolsOf(ctx, db).filter((p) => p.paused)
    ctx.proxy.pools.resumeDatabase(serverDatabaseOf(ctx, db))
    // Also the clients a RESHARD left held when the outcome of its commit could not be known.
    if (serverDatabaseOf(ctx, db) === null) ctx.proxy.releaseClients()
    ctx.log.info({ database: db || '(all)', pools: paused.length }, 'pools resumed')
    return { tag: 'RESUME', notices: paused.length === 0 ? ['no pool was paused'] : [] }
  },
}
