import type { TLSSocket } from 'node:tls'
import { bool, int8, text, type AdminCommand } from '../AdminCommand.js'
import { consoleTime, logicalDatabase } from '../ConsoleFormat.js'

/** The columns PgBouncer's SHOW SERVERS and SHOW CLIENTS share, in its order. */
export const CONNECTION_COLUMNS = [
  text('type'),
  text('user'),
  text('database'),
  text('replication'),
  text('state'),
  text('addr'),
  int8('port'),
  text('local_addr'),
  int8('local_port'),
  text('connect_time'),
  text('request_time'),
  int8('wait'),
  int8('wait_us'),
  int8('close_needed'),
  text('ptr'),
  text('link'),
  int8('remote_pid'),
  text('tls'),
]

// PgBouncer's SHOW SERVERS columns that pgshard can fill (same names, same order), then pgshard's. `ptr` and
// `link` pair a server with the client using it (SHOW CLIENTS shows the same values the other way round).
export const showServers: AdminCommand = {
  words: ['SHOW', 'SERVERS'],
  argument: 'none',
  usage: 'SHOW SERVERS',
  description: 'one row per open server connection',
  columns: [
    ...CONNECTION_COLUMNS,
    text('application_name'),
    int8('prepared_statements'),
    int8('id'),
    text('node'),
    text('shard'),
    text('role'),
    text('tx_status'),
    bool('dirty'),
  ],
  run(ctx) {
    const { proxy } = ctx
    const clientOf = new Map<number, number>()
    for (const s of proxy.sessions) {
      const conn = s.serverConnection
      if (conn) clientOf.set(conn.id, s.key.pid)
    }
    const rows = proxy.pools.all().flatMap(({ pool, node, user, database }) =>
      pool.connections().map(({ conn, state }) => {
        const link = clientOf.get(conn.id)
        const sock = conn.socket as TLSSocket
        return [
          'S',
          user,
          logicalDatabase(proxy.config, database),
          'none',
          state,
          node.host,
          node.port,
          sock.localAddress ?? null,
          sock.localPort ?? null,
          consoleTime(conn.createdAt),
          consoleTime(conn.lastUsedAt),
          0,
          0,
          0,
          serverPtr(conn.id),
          link === undefined ? '' : clientPtr(link),
          conn.pid,
          sock.encrypted ? (sock.getProtocol() ?? 'TLS') : '',
          conn.serverParams.get('application_name') ?? '',
          conn.prepared.size,
          conn.id,
          node.name,
          proxy.topology.shards[node.shard]?.name ?? null,
          node.role,
          conn.tracker.status,
          conn.dirty,
        ]
      }),
    )
    return { rows, tag: 'SHOW' }
  },
}

export const serverPtr = (id: number): string => `s${id.toString(16)}`
export const clientPtr = (pid: number): string => `c${pid.toString(16)}`
