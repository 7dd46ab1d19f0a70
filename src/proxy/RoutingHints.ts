import { PgError, SqlState } from '../protocol/PgError.js'
import type { Role } from '../router/Route.js'

interface Hints {
  shard?: string
  key?: string
  role?: Role
}

/**
 * A client's routing hints from `SET pgshard.shard|key|role` (for the session) and `SET LOCAL` (for the
 * transaction, which wins while it lasts). pgshard answers these statements itself: they never reach Postgres.
 */
export class RoutingHints {
  private session: Hints = {}
  private local: Hints = {}
  /** The session hints as they were when the open transaction first changed one: back if it rolls back. */
  private beforeTx: Hints | null = null

  get shard(): string | undefined {
    return this.local.shard ?? this.session.shard
  }

  get key(): string | undefined {
    return this.local.key ?? this.session.key
  }

  get role(): Role | undefined {
    return this.local.role ?? this.session.role
  }

  /**
   * Applies `SET [LOCAL] pgshard.<name> = value` (value null: RESET); a wrong name or role is an error. Inside a
   * transaction a session-level change is undone if the transaction rolls back, as Postgres does with a setting.
   */
  apply(name: string, value: string | null, local: boolean, inTransaction = false): void {
    if (!local && inTransaction && this.beforeTx === null) this.beforeTx = { ...this.session }
    const target = local ? this.local : this.session
    const key = name.slice('pgshard.'.length)
    if (key === 'shard') target.shard = value ?? undefined
    else if (key === 'key') target.key = value ?? undefined
    else if (key === 'role') {
      if (value !== null && value !== 'primary' && value !== 'replica')
        throw new PgError(SqlState.INVALID_TEXT_REPRESENTATION, `invalid value for pgshard.role: "${value}"`, { hint: 'Use primary or replica.' })
      target.role = value ?? undefined
    } else throw new PgError(SqlState.UNDEFINED_OBJECT, `unrecognized configuration parameter "${name}"`, { hint: 'pgshard knows pgshard.shard, pgshard.key and pgshard.role.' })
  }

  /** The transaction ended: its SET LOCAL hints go, and on a rollback its session-level changes too. */
  endTransaction(committed: boolean): void {
    this.local = {}
    if (!committed && this.beforeTx !== null) this.session = this.beforeTx
    this.beforeTx = null
  }
}

/** The value of `SET x = v` / `SET x TO 'v'`, unquoted. */
export function valueOfSet(text: string): string {
  const m = /(?:=|\bto\b)\s*(.*?)\s*;?\s*$/is.exec(text)
  const v = m ? m[1] : ''
  return v.startsWith("'") && v.endsWith("'") ? v.slice(1, -1).replace(/''/g, "'") : v
}
