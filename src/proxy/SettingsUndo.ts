import type { StatementPlan } from '../router/StatementPlan.js'
import type { ConnectionState } from './SessionEffects.js'
import type { SessionSettings } from './SessionSettings.js'

/**
 * The settings as they were when a transaction (level 0) or a savepoint began: the client's, and those of each
 * connection the transaction changed settings on (a transaction across shards changes them on several).
 */
interface Level {
  savepoint: string | null
  client: Map<string, string>
  conns: Map<ConnectionState, Map<string, string>>
}

function copyInto(target: Map<string, string>, source: Map<string, string>): void {
  target.clear()
  for (const [k, v] of source) target.set(k, v)
}

/**
 * Postgres undoes a SET when the transaction (or the savepoint) it ran in rolls back, explicit or implicit
 * (a pipeline up to Sync, a multi-statement query). The proxy records settings as statements succeed, so it
 * keeps what they were when the transaction and each savepoint began, and puts them back on the same rollbacks,
 * in the client's record and in the record of the connection that ran them.
 */
export class SettingsUndo {
  private levels: Level[] = []
  /** An error aborted the transaction since it began or since its last ROLLBACK TO. */
  private aborted = false

  constructor(private readonly settings: SessionSettings) {}

  /** A statement's session effects are about to be applied on this connection. */
  beforeChange(conn: ConnectionState): void {
    this.ensureStart(conn)
  }

  /** The server answered a statement with an error: the transaction, explicit or implicit, is aborted. */
  onError(): void {
    this.aborted = true
  }

  /** A transaction-control statement succeeded on this connection. */
  onTransactionStatement(plan: StatementPlan, conn: ConnectionState): void {
    switch (plan.tx) {
      case 'commit':
      case 'prepare_transaction':
        // COMMIT of an aborted transaction rolls it back (its tag says ROLLBACK; no error).
        this.finish(!this.aborted)
        break
      case 'rollback':
        this.finish(false)
        break
      case 'savepoint':
        this.ensureStart(conn)
        this.levels.push(this.level(plan.savepoint ?? null))
        break
      case 'release': {
        const i = this.find(plan.savepoint)
        if (i > 0) this.levels.length = i
        else this.lostTrack()
        break
      }
      case 'rollback_to': {
        const i = this.find(plan.savepoint)
        if (i > 0) {
          this.restore(this.levels[i])
          this.levels.length = i + 1
        } else this.lostTrack()
        this.aborted = false
        break
      }
      default:
        break
    }
  }

  /** pgshard rolled the transaction back itself (a pipeline across shards that failed): its SETs are undone. */
  rolledBack(): void {
    this.finish(false)
  }

  /** ReadyForQuery with no transaction open: whatever ran since the last one is over. */
  onIdle(): void {
    this.finish(!this.aborted)
  }

  /**
   * A savepoint the proxy did not see made (one inside a multi-statement query): what the server undoes is
   * unknown, so the connection is reset before another client gets it.
   */
  private lostTrack(): void {
    for (const level of this.levels) for (const conn of level.conns.keys()) conn.dirty = true
  }

  /**
   * The transaction's levels, begun if need be, each knowing this connection's settings. A connection first
   * changed now has not changed since the transaction (or a savepoint after it joined) began: what it holds
   * now is what a rollback to any of them puts back.
   */
  private ensureStart(conn: ConnectionState): void {
    if (this.levels.length === 0) this.levels = [this.level(null)]
    if (this.levels[this.levels.length - 1]!.conns.has(conn)) return
    for (const level of this.levels) if (!level.conns.has(conn)) level.conns.set(conn, new Map(conn.settings))
  }

  private level(savepoint: string | null): Level {
    const conns = new Map<ConnectionState, Map<string, string>>()
    for (const conn of this.levels[this.levels.length - 1]?.conns.keys() ?? []) conns.set(conn, new Map(conn.settings))
    return { savepoint, client: new Map(this.settings.wanted), conns }
  }

  /** The last level of this savepoint name (Postgres takes the innermost of equal names); -1 when unknown. */
  private find(name: string | undefined): number {
    for (let i = this.levels.length - 1; i > 0; i--) if (this.levels[i].savepoint === name) return i
    return -1
  }

  private finish(committed: boolean): void {
    // Called at every ReadyForQuery 'I': nothing to allocate when no setting changed.
    if (this.levels.length > 0) {
      if (!committed) this.restore(this.levels[0])
      this.levels = []
    }
    this.aborted = false
  }

  private restore(level: Level): void {
    copyInto(this.settings.wanted, level.client)
    for (const [conn, settings] of level.conns) copyInto(conn.settings, settings)
  }
}
