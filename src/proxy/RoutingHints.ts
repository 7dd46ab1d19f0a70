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
  private readonly session: Hints = {}
  private local: Hints = {}

  get shard(): string | undefined {
    return this.local.shard ?? this.session.shard
  }

  get key(): string | undefined {
    return this.local.key ?? this.session.key
  }

  get role(): Role | undefined {
    return this.local.role ?? this.session.role
  }

  /** Applies `SET [LOCAL] pgshard.<name> = value` (value null: RESET); a wrong name or role is an error. */
  apply(name: string, value: string | null, local: boolean): void {
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

  /** The transaction ended: its SET LOCAL hints go. */
  endTransaction(): void {
    this.local = {}
  }
}

/** The value of `SET x = v` / `SET x TO 'v'`, unquoted. */
export function valueOfSet(text: string): string {
  const m = /(?:=|\bto\b)\s*(.*?)\s*;?\s*$/is.exec(text)
  const v = m ? m[1] : ''
  return v.startsWith("'") && v.endsWith("'") ? v.slice(1, -1).replace(/''/g, "'") : v
}
