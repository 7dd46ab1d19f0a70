import type { ServerConnection } from '../pool/ServerConnection.js'
import { runForClient } from './RunForClient.js'
import type { SessionSettings } from './SessionSettings.js'

/**
 * Brings a server connection that no client uses yet to a client's session settings: null when it has them
 * already, else a promise that resolves once the server accepted them. The client's statement waits for that
 * answer (a round trip, only when the settings differ), so it never runs under settings the server refused —
 * a role dropped since the client's SET ROLE, say. A refusal rejects with the server's SQLSTATE and message;
 * the connection's record of its settings is then wrong, so it is reset (DISCARD ALL) before anyone uses it.
 */
export function syncSettings(conn: ServerConnection, settings: SessionSettings): Promise<void> | null {
  const sql = settings.adopt(conn.settings)
  if (sql === null) return null
  return runForClient(conn, sql, {
    refused: (message) => `server ${conn.nodeName} refused this session's settings: ${message}`,
    hint: 'RESET the setting it names (SHOW it to see its value), or make that value valid on every node.',
    lost: `while giving it this session's settings`,
    onFailure: () => {
      conn.settings.clear()
      conn.dirty = true
    },
  })
}
