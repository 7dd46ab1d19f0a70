import type { ServerConnection } from '../pool/ServerConnection.js'
import type { SessionEffect } from '../router/StatementPlan.js'
import type { SessionSettings } from './SessionSettings.js'

/** The part of a server connection's state that a client's statement can change. */
export type ConnectionState = Pick<ServerConnection, 'settings' | 'prepared' | 'dirty' | 'unnamedOwner'>

/** What the session itself must do after the effects were applied. */
export interface EffectOutcome {
  /** DISCARD ALL: the client's own prepared statements (protocol and SQL) are gone too. */
  discardAll: boolean
  /** Why the client must keep this connection for the rest of its session (transaction pooling), if it must. */
  pinReason: string | null
  /** A WITH HOLD cursor: the client keeps this connection until it closes it. */
  holdsCursor: boolean
  /** pg_advisory_unlock_all(): no session advisory lock holds the client any more. */
  unlocksAdvisory: boolean
}

/** Why a session advisory lock pins its client (and what pg_advisory_unlock_all() ends). */
export const ADVISORY_LOCK = 'a session-level advisory lock'

/** State a server connection keeps that no other client may inherit, by the effect that creates it. */
const PIN_REASONS: Partial<Record<SessionEffect['kind'], string>> = {
  listen: 'LISTEN',
  advisory_lock_session: ADVISORY_LOCK,
  temp_table: 'a temporary table',
}

/**
 * Applies the session state a statement changed, once its server said it succeeded, to the client's tracked
 * settings and to the connection that ran it. A change the proxy cannot track marks the connection dirty, so
 * that it is reset before another client gets it.
 */
export function applySessionEffects(effects: readonly SessionEffect[], settings: SessionSettings, conn: ConnectionState): EffectOutcome {
  const outcome: EffectOutcome = { discardAll: false, pinReason: null, holdsCursor: false, unlocksAdvisory: false }
  for (const e of effects) {
    switch (e.kind) {
      case 'set':
        // SET LOCAL ends with the transaction; pgshard.* are routing hints the proxy keeps itself.
        if (!e.local && !e.name.startsWith('pgshard.')) {
          settings.set(e.name, e.text)
          conn.settings.set(e.name, e.text)
        }
        break
      case 'reset':
        settings.reset(e.name)
        conn.settings.delete(e.name)
        conn.dirty = conn.dirty || settings.wanted.has(e.name)
        break
      case 'reset_all':
        settings.resetAll()
        conn.settings.clear()
        conn.dirty = conn.dirty || settings.wanted.size > 0
        break
      case 'discard_all':
        settings.resetAll()
        conn.settings.clear()
        conn.prepared.clear()
        conn.unnamedOwner = null
        outcome.discardAll = true
        break
      case 'unknown_set_config':
        conn.dirty = true
        break
      case 'hold_cursor':
        outcome.holdsCursor = true
        break
      case 'advisory_unlock_all':
        outcome.unlocksAdvisory = true
        break
      default:
        outcome.pinReason ??= PIN_REASONS[e.kind] ?? null
    }
  }
  return outcome
}
