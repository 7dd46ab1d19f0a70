import type { AdminCommand } from '../AdminCommand.js'
import { poolsOf } from './PoolSelection.js'

/**
 * Replaces the server connections of one database (or all) without disturbing clients: idle ones close now, the
 * others when their transaction (session, in session mode) gives them back. For what servers fix at log-in.
 */
export const reconnect: AdminCommand = {
  words: ['RECONNECT'],
  argument: 'optional',
  usage: 'RECONNECT [db]',
  description: 'replace server connections as they come back (after ALTER ROLE … SET, a server setting changed)',
  columns: [],
  run(ctx, db) {
    const pools = poolsOf(ctx, db)
    const renewed = pools.reduce((n, p) => n + p.renew(), 0)
    ctx.log.info({ database: db || '(all)', pools: pools.length, connections: renewed }, 'server connections renewed')
    return { tag: 'RECONNECT', notices: [`${renewed} server connection(s) to be replaced`] }
  },
}
