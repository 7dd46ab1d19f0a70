import type { ServerConnection } from '../pool/ServerConnection.js'
import { encodeQuery } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { Expect, errorField } from '../protocol/ResponseTracker.js'

export interface Refusal {
  /** The client's message when the server refused the statements, from the server's message. */
  refused(serverMessage: string): string
  hint?: string
  /** What the connection was doing, should it be lost. */
  lost: string
  onFailure?(): void
}

/**
 * Statements the proxy runs on a client's behalf on a connection the client holds (its settings, a shard
 * joining its transaction), queued behind whatever is in flight there, their replies kept from the client:
 * resolves when the server accepted them, rejects with the server's SQLSTATE and a message that says what was
 * refused (or that the connection was lost).
 */
export function runForClient(conn: ServerConnection, sql: string, refusal: Refusal): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: PgError | null = null
    conn.tracker.push({
      expect: Expect.Query,
      mode: 'suppress',
      captureError: (body) => {
        failure ??= new PgError(errorField(body, 0x43) ?? SqlState.INTERNAL_ERROR, refusal.refused(errorField(body, 0x4d) ?? 'no message'), refusal.hint === undefined ? {} : { hint: refusal.hint })
      },
      done: (ok) => {
        if (ok) return resolve()
        refusal.onFailure?.()
        reject(failure ?? new PgError(SqlState.CONNECTION_FAILURE, `lost the connection to server ${conn.nodeName} ${refusal.lost}`))
      },
    })
    conn.write(encodeQuery(sql))
  })
}
