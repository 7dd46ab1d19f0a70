import type { Logger } from '../log/Logger.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import type { ProxyServer } from '../proxy/ProxyServer.js'
import type { Session } from '../proxy/Session.js'

const POLL_MS = 20

/** Between transactions with nothing in flight: ending the client now loses nothing it was told succeeded. */
function atBoundary(s: Session): boolean {
  if (s.txStatus !== 'I') return false
  const conn = s.serverConnection
  return conn === null ? s.state === 'idle' : conn.tracker.idle && conn.tracker.status === 'I'
}

/**
 * Ends every client at its next transaction boundary (57P01, as a Postgres server does on shutdown), so that
 * transactions in flight finish and none starts; clients still inside a transaction at the deadline are ended
 * then. Resolves when no client is left.
 *
 * A busy client is at a boundary only for the moment between its last reply and its next statement, which no
 * poll would see: so each client's next bytes are looked at before its session reads them, and a client that
 * sends anything while between transactions is ended there (what it sent is not run).
 */
export async function drainSessions(proxy: ProxyServer, deadline: number, log: Logger): Promise<{ atBoundary: number; forced: number }> {
  const bye = () => PgError.fatal(SqlState.ADMIN_SHUTDOWN, 'terminating connection due to administrator command')
  let clean = 0
  const end = (s: Session) => {
    if (!proxy.sessions.has(s)) return
    s.fatal(bye())
    clean++
  }
  for (const s of proxy.sessions) {
    s.client.prependListener('data', () => {
      if (atBoundary(s)) end(s)
    })
  }
  for (;;) {
    for (const s of [...proxy.sessions]) if (atBoundary(s)) end(s)
    if (proxy.sessions.size === 0 || Date.now() >= deadline) break
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
  const forced = proxy.sessions.size
  if (forced > 0) log.warn({ clients: forced }, 'shutdown timeout: ending clients still inside a transaction')
  for (const s of [...proxy.sessions]) s.fatal(bye())
  return { atBoundary: clean, forced }
}
