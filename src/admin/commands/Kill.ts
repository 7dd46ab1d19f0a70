import { PgError, SqlState } from '../../protocol/PgError.js'
import type { AdminCommand } from '../AdminCommand.js'

/** Disconnects one client, by the pid it got from the proxy (SHOW CLIENTS, column pid). */
export const kill: AdminCommand = {
  words: ['KILL'],
  argument: 'required',
  usage: 'KILL <client pid>',
  description: 'disconnect a client (its pid from SHOW CLIENTS); its open transaction is rolled back',
  columns: [],
  run(ctx, arg) {
    if (!/^\d{1,10}$/.test(arg)) throw new PgError(SqlState.SYNTAX_ERROR, `KILL takes a client pid (a number from SHOW CLIENTS), got ${JSON.stringify(arg.slice(0, 40))}`)
    const pid = Number(arg)
    const session = [...ctx.proxy.sessions].find((s) => s.key.pid === pid)
    if (!session) throw new PgError(SqlState.UNDEFINED_OBJECT, `no client with pid ${pid}`, { hint: 'SHOW CLIENTS lists the connected clients and their pids.' })
    ctx.log.info({ pid, user: session.identity.user.name }, 'client killed from the admin console')
    session.fatal(PgError.fatal(SqlState.ADMIN_SHUTDOWN, 'terminating connection due to administrator command'))
    return { tag: 'KILL' }
  },
}
