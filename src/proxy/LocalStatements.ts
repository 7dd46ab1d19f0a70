import type { StatementPlan } from '../router/StatementPlan.js'
import type { ClientTransaction } from './ClientTransaction.js'
import type { NotificationListener } from './NotificationHub.js'
import { valueOfSet, type RoutingHints } from './RoutingHints.js'
import type { ServerLease } from './ServerLease.js'
import type { Identity, SessionServices } from './SessionServices.js'
import { shapesTransaction } from './SpanningTransaction.js'

const PSEUDO_TAGS: Record<string, string> = { begin: 'BEGIN', commit: 'COMMIT', rollback: 'ROLLBACK' }

/** What the statements answered here change in the session that owns them. */
export interface LocalSession extends NotificationListener {
  /** Why the session keeps its server connection, if it does. */
  readonly pinnedBy: string | null
  /** A transaction whose BEGIN never reached a server ended here. */
  endHeldTransaction(committed: boolean): void
  /** A transaction began (the console's count). */
  transactionBegun(): void
}

/**
 * The statements pgshard answers for a client without a server: its BEGIN (held back until the transaction's
 * first statement shows which shard it belongs to) and what shapes that transaction before then, the COMMIT or
 * ROLLBACK of a transaction that never reached a server, `SET pgshard.*` routing hints, and LISTEN/UNLISTEN
 * served by the NotificationHub. Each returns the action that answers it (yielding its command tag), or null
 * when the statement goes to a server.
 */
export class LocalStatements {
  constructor(
    private readonly services: SessionServices,
    private readonly identity: Identity,
    private readonly lease: ServerLease,
    private readonly tx: ClientTransaction,
    private readonly hints: RoutingHints,
    private readonly session: LocalSession,
  ) {}

  /**
   * LISTEN / UNLISTEN alone in a statement, between transactions, in transaction pooling: the proxy's
   * NotificationHub listens for the client, which keeps no server connection (a LISTEN sent to a server would
   * pin it for the rest of the session). Inside a transaction it takes effect at COMMIT on the server, so it
   * goes there as before. The action resolves to the command tag once the hub listens, so that no notification
   * sent after the client's LISTEN completes is missed.
   */
  listen(plan: StatementPlan): (() => Promise<string>) | null {
    const e = plan.session.length === 1 && !plan.multiStatement ? plan.session[0] : undefined
    if (!e || (e.kind !== 'listen' && e.kind !== 'unlisten') || this.identity.mode === 'session' || this.session.pinnedBy || this.tx.status !== 'I' || this.tx.pendingBegin !== null) return null
    if (e.kind === 'listen' && e.channel === '') return null
    const a = this.lease.attached
    if (a && (!a.conn.tracker.idle || a.conn.tracker.status !== 'I')) return null
    this.services.metrics.route('local')
    if (e.kind === 'unlisten') {
      return async () => {
        this.services.notifications.unlisten(this.session, e.channel)
        return 'UNLISTEN'
      }
    }
    return () => this.services.notifications.listen(this.session, this.identity.serverDatabase, e.channel).then(() => 'LISTEN')
  }

  /** The action for a transaction statement or routing hint answered here, or null. */
  statement(plan: StatementPlan, sql: string): (() => string) | null {
    if (plan.multiStatement) return null
    if (plan.kind === 'transaction') {
      const a = this.lease.attached
      const serverTx = a !== null && a.conn.tracker.status !== 'I'
      if (plan.tx === 'begin' && this.tx.status === 'I' && !serverTx && !this.session.pinnedBy) {
        return () => {
          this.tx.holdBegin(sql, plan)
          this.session.transactionBegun()
          return plan.commandTag || 'BEGIN'
        }
      }
      if ((plan.tx === 'savepoint' || plan.tx === 'release' || plan.tx === 'rollback_to') && this.tx.pendingBegin !== null && this.tx.status === 'T' && !serverTx) {
        return this.followingBegin(plan, sql)
      }
      // A statement refused while the BEGIN waited failed the transaction after a savepoint that also waits:
      // rolling back to it recovers the transaction, which has still run nothing on a server.
      if (plan.tx === 'rollback_to' && this.tx.pendingBegin !== null && this.tx.status === 'E' && !serverTx && this.tx.holdsSavepoint(plan.savepoint)) {
        const follow = this.followingBegin(plan, sql)
        return () => {
          this.tx.status = 'T'
          return follow()
        }
      }
      if ((plan.tx === 'commit' || plan.tx === 'rollback') && this.tx.pendingBegin !== null && !serverTx) {
        return () => {
          const aborted = this.tx.status === 'E'
          this.session.endHeldTransaction(plan.tx === 'commit' && !aborted)
          return aborted ? 'ROLLBACK' : PSEUDO_TAGS[plan.tx!] ?? plan.commandTag
        }
      }
      return null
    }
    const hint = plan.session.find((e) => (e.kind === 'set' || e.kind === 'reset') && e.name.startsWith('pgshard.'))
    if (hint && plan.session.length === 1) {
      return () => {
        const inTransaction = this.tx.status !== 'I'
        if (hint.kind === 'set') this.hints.apply(hint.name, valueOfSet(hint.text), hint.local, inTransaction)
        else if (hint.kind === 'reset') this.hints.apply(hint.name, null, false, inTransaction)
        return plan.commandTag || (hint.kind === 'set' ? 'SET' : 'RESET')
      }
    }
    if (plan.kind === 'set' && this.tx.pendingBegin !== null && this.tx.status === 'T' && plan.session.length > 0 && plan.session.every(shapesTransaction)) {
      return this.followingBegin(plan, sql)
    }
    return null
  }

  /**
   * A statement that only shapes the transaction whose BEGIN is still held back (Rails' `BEGIN; SET TRANSACTION
   * ISOLATION LEVEL …`, `SET LOCAL` for row-level security, a savepoint): answered now and sent after the BEGIN,
   * so that the transaction still goes to the shard of its first real statement. Should the server refuse it,
   * the client learns so at that statement (ResponseTracker.carryError).
   */
  private followingBegin(plan: StatementPlan, sql: string): () => string {
    return () => {
      this.tx.follow(plan, sql)
      return plan.commandTag || 'SET'
    }
  }
}
