import type { AdminCommand } from '../AdminCommand.js'
import { poolsOf } from './PoolSelection.js'

export const resume: AdminCommand = {
  words: ['RESUME'],
  argument: 'optional',
  usage: 'RESUME [db]',
  description: 'hand out server connections again after PAUSE',
  columns: [],
  run(ctx, db) {
    const pools = poolsOf(ctx, db)
    const paused = pools.filter((p) => p.paused)
    for (const p of paused) p.resume()
    ctx.log.info({ database: db || '(all)', pools: paused.length }, 'pools resumed')
    return { tag: 'RESUME', notices: paused.length === 0 ? ['no pool was paused'] : [] }
  },
}
