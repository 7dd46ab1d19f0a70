import type { AdminCommand } from '../AdminCommand.js'
import { poolsOf, serverDatabaseOf } from './PoolSelection.js'

export const resume: AdminCommand = {
  words: ['RESUME'],
  argument: 'optional',
  usage: 'RESUME [db]',
  description: 'hand out server connections again after PAUSE',
  columns: [],
  run(ctx, db) {
    const paused = poolsOf(ctx, db).filter((p) => p.paused)
    ctx.proxy.pools.resumeDatabase(serverDatabaseOf(ctx, db))
    ctx.log.info({ database: db || '(all)', pools: paused.length }, 'pools resumed')
    return { tag: 'RESUME', notices: paused.length === 0 ? ['no pool was paused'] : [] }
  },
}
