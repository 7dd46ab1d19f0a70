import type { TLSSocket } from 'node:tls'
import { int8, text, type AdminCommand } from '../AdminCommand.js'
import { consoleTime } from '../ConsoleFormat.js'
import { CONNECTION_COLUMNS, clientPtr, serverPtr } from './ShowServers.js'

// PgBouncer's SHOW CLIENTS columns that pgshard can fill (same names, same order), then pgshard's. `id` and
// `pid` are the process id the client got in BackendKeyData: KILL takes it.
export const showClients: AdminCommand = {
  words: ['SHOW', 'CLIENTS'],
  argument: 'none',
  usage: 'SHOW CLIENTS',
  description: 'one row per connected client (admin console clients excluded)',
  columns: [
    ...CONNECTION_COLUMNS,
    int8('id'),
    int8('pid'),
    text('pool_mode'),
    text('tx_status'),
    text('pinned_by'),
    text('node'),
    int8('queries'),
    int8('transactions'),
    int8('bytes_in'),
    int8('bytes_out'),
  ],
  run(ctx) {
    const now = Date.now()
    const rows = [...ctx.proxy.sessions].map((s) => {
      const sock = s.client as TLSSocket
      const conn = s.serverConnection
      const state = s.state
      const waitedUs = state === 'waiting' || state === 'held' ? (now - s.lastActivityAt) * 1000 : 0
      return [
        'C',
        s.identity.user.name,
        s.identity.database.name,
        'none',
        state,
        sock.remoteAddress ?? null,
        sock.remotePort ?? null,
        sock.localAddress ?? null,
        sock.localPort ?? null,
        consoleTime(s.connectedAt),
        consoleTime(s.lastActivityAt),
        Math.floor(waitedUs / 1_000_000),
        waitedUs % 1_000_000,
        0,
        clientPtr(s.key.pid),
        conn ? serverPtr(conn.id) : '',
        0,
        sock.encrypted ? (sock.getProtocol() ?? 'TLS') : '',
        s.key.pid,
        s.key.pid,
        s.identity.mode,
        s.txStatus,
        s.pinnedBy,
        conn?.nodeName ?? null,
        s.stats.queries,
        s.stats.transactions,
        s.stats.bytesIn,
        s.stats.bytesOut,
      ]
    })
    return { rows, tag: 'SHOW' }
  },
}
