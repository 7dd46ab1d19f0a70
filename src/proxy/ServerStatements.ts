import type { ServerConnection } from '../pool/ServerConnection.js'
import { encodeTarget, renameParse } from '../protocol/FrontendMessages.js'
import { Expect, errorField } from '../protocol/ResponseTracker.js'
import type { ClientStatement } from './ClientStatements.js'

// A client's statements on whichever server connection runs them: prepared there under the proxy's names (shared
// by identical statements) when first needed, the least recently used closed when the connection's cache is full.

/** Prepares the client's statement on the connection unless it holds it already (the Parse's reply is the proxy's). */
export function ensurePrepared(conn: ServerConnection, stmt: ClientStatement): void {
  if (stmt.serverName === '') {
    if (conn.unnamedOwner === stmt) return
    conn.unnamedOwner = stmt
    conn.tracker.push({ expect: Expect.Parse, mode: 'suppress' })
    conn.write(renameParse('', conn.parseTail(stmt.tail)))
    return
  }
  if (holdsPrepared(conn, stmt.serverName)) return
  conn.tracker.push({ expect: Expect.Parse, mode: 'suppress', done: (ok) => ok || conn.prepared.delete(stmt.serverName) })
  conn.write(renameParse(stmt.serverName, conn.parseTail(stmt.tail)))
}

/**
 * Whether the connection already has statement `name` (marked as just used). If not, it is recorded as being
 * prepared there, after room was made for it; the caller sends the Parse or PREPARE.
 */
export function holdsPrepared(conn: ServerConnection, name: string): boolean {
  if (conn.prepared.has(name)) {
    conn.prepared.touch(name)
    return true
  }
  evictFor(conn, name)
  if (conn.prepared.takeStale(name)) {
    conn.tracker.push({ expect: Expect.Close, mode: 'suppress' })
    conn.write(encodeTarget('Close', 'S', name))
  }
  conn.prepared.add(name)
  return false
}

/**
 * After a table a statement reads changed its columns, Postgres refuses to run the statement as prepared
 * ("cached plan must not change result type") until it is prepared again. Statements are shared on a server
 * connection, so such a refusal marks this one for closing and preparing again at its next use; and the other
 * connections holding it were prepared against the old columns too (on this server, and on every other one
 * when the migration ran on every shard), so they are marked as well. One error for the first client, not one
 * per connection for the clients that come after it.
 */
export function forgetIfReplanRefused(conn: ServerConnection, name: string, error: Buffer, everyConnection: () => Iterable<ServerConnection>): void {
  if (errorField(error, 0x43) !== '0A000' || errorField(error, 0x52) !== 'RevalidateCachedQuery') return
  if (name === '') {
    conn.unnamedOwner = null
    return
  }
  conn.prepared.markStale(name)
  for (const other of everyConnection()) other.prepared.markStale(name)
}

/** Closes the least recently used statements of a connection that is full. */
function evictFor(conn: ServerConnection, keep: string): void {
  for (const name of conn.prepared.evictions(keep)) {
    conn.prepared.delete(name)
    conn.tracker.push({ expect: Expect.Close, mode: 'suppress' })
    conn.write(encodeTarget('Close', 'S', name))
  }
}
