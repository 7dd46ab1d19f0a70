/**
 * Why a client in transaction pooling keeps its server connection: state there that no other client may
 * inherit. A temporary table or a LISTEN in a transaction lasts for the session (or until DISCARD ALL, which ends
 * them all), session advisory locks until pg_advisory_unlock_all(), a WITH HOLD cursor until it is closed; with
 * the last pin gone the client goes back to sharing connections.
 */
export class SessionPins {
  /** Reasons that last for the session (or until what ends them), the first named. */
  private readonly lasting = new Set<string>()
  /** Open WITH HOLD cursors, by the name the server compares: true while the transaction declaring it is open. */
  private readonly cursors = new Map<string, boolean>()

  get reason(): string | null {
    for (const r of this.lasting) return r
    return this.cursors.size > 0 ? HOLD_CURSOR : null
  }

  /** State that lasts for the session. */
  add(reason: string): void {
    this.lasting.add(reason)
  }

  /** What pinned for that reason is gone (pg_advisory_unlock_all() released every advisory lock). */
  release(reason: string): void {
    this.lasting.delete(reason)
  }

  /**
   * A WITH HOLD cursor was declared, in a transaction block (`inTransaction`) or not; a name pgshard could not
   * read counts for the session.
   */
  holdCursor(name: string | null, inTransaction: boolean): void {
    if (name === null) this.add(HOLD_CURSOR)
    else this.cursors.set(name, inTransaction)
  }

  /** The transaction ended: a rollback takes the WITH HOLD cursors it declared with it. */
  transactionEnded(committed: boolean): void {
    for (const [name, pending] of this.cursors) {
      if (pending && !committed) this.cursors.delete(name)
      else if (pending) this.cursors.set(name, false)
    }
  }

  /** CLOSE of a cursor (null: CLOSE ALL). */
  closeCursor(name: string | null): void {
    if (name === null) this.cursors.clear()
    else this.cursors.delete(name)
  }

  /** DISCARD ALL: cursors closed, advisory locks released, temporary objects dropped, every channel unlistened. */
  clear(): void {
    this.lasting.clear()
    this.cursors.clear()
  }
}

const HOLD_CURSOR = 'a WITH HOLD cursor'
