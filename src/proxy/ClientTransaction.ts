import type { TxStatus } from '../protocol/ServerMessages.js'
import type { StatementPlan } from '../router/StatementPlan.js'
import { TransactionOpening } from './TransactionOpening.js'

/** A statement sent while the BEGIN waits, to follow it to its shard. */
export interface FollowingStatement {
  sql: string
  plan: StatementPlan
}

/**
 * The client's transaction as the proxy sees it: the status the client was told, the BEGIN held back until the
 * transaction's first statement shows which shard it belongs to, and what shaped the transaction since. A
 * server's ReadyForQuery may still be on its way: this is what the client was answered, not what a server says.
 */
export class ClientTransaction {
  /** Transaction status the client sees. */
  status: TxStatus = 'I'
  /** BEGIN text held back until the transaction's first statement shows which shard it belongs to. */
  pendingBegin: string | null = null
  /** SET LOCAL, SET TRANSACTION and savepoints sent while the BEGIN waits: they follow it to its shard. */
  private following: FollowingStatement[] = []
  /** The transaction's BEGIN and what shaped it since, for a shard that joins the transaction. */
  readonly opening = new TransactionOpening()
  readOnly = false
  /** The isolation level the client's BEGIN named, if it named one. */
  isolation: string | undefined
  /** A write went to a primary in the current transaction. */
  wrote = false
  /**
   * Shards whose server sessions ran a statement that may call nextval() (an INSERT, a MERGE, a call of nextval
   * or setval) in the current transaction: lastval() and currval() answer from one server session only.
   */
  readonly sequenceShards = new Set<number>()
  /**
   * An INSERT got keys pgshard drew from a sequence (key_sequence): no server session called nextval() for
   * them, so lastval() and currval() would answer another value.
   */
  keysDrawn = false
  /** The shard a statement that may write went to in the current transaction (the first such). */
  writer: number | undefined
  /** Every shard a statement that may write went to in the current transaction (its rows only it sees). */
  readonly writtenShards = new Set<number>()
  /**
   * A setting made for the transaction by set_config(…, true) among other work in a query: unlike SET LOCAL (and
   * a SELECT of set_config calls alone), pgshard does not replay it on a shard that joins later, which must then
   * not join.
   */
  settingByFunction: string | null = null
  /** How the server transaction in progress ended, as its COMMIT or ROLLBACK said (committed until one did). */
  committed = true
  /** A pipeline outside a transaction became one across shards: it ends at the client's Sync. */
  implicit = false
  /** The transaction is the one pgshard opened for the statements of one query (Session.runOneByOne). */
  ofOneQuery = false
  /** The text of the statement being handled, and of the one that took the held-back BEGIN to a server. */
  current = ''
  startedBy: string | null = null

  /** The writes of the transaction (or query, or pipeline) are over: committed, rolled back or captured. */
  writesDone(): void {
    this.wrote = false
    this.sequenceShards.clear()
    this.keysDrawn = false
    this.writer = undefined
    this.writtenShards.clear()
  }

  /** The client's BEGIN, answered by the proxy and held back. */
  holdBegin(sql: string, plan: StatementPlan): void {
    this.pendingBegin = sql
    this.readOnly = plan.txReadOnly ?? false
    this.isolation = plan.txIsolation
    this.status = 'T'
  }

  /** Statements follow the held-back BEGIN (SET LOCAL, savepoints …): what runs outside it would not see them. */
  get shaped(): boolean {
    return this.following.length > 0
  }

  /** A savepoint of that name follows the held-back BEGIN. */
  holdsSavepoint(name: string | undefined): boolean {
    return this.following.some((f) => f.plan.tx === 'savepoint' && f.plan.savepoint === name)
  }

  /** A statement that shapes the transaction whose BEGIN is held back: it follows the BEGIN. */
  follow(plan: StatementPlan, sql: string): void {
    this.following.push({ sql, plan })
    if (plan.txReadOnly !== undefined) this.readOnly = plan.txReadOnly
    if (plan.txIsolation !== undefined) this.isolation = plan.txIsolation
  }

  /**
   * A pipeline outside a transaction goes on to another shard after a statement on several shards: it becomes
   * a transaction across shards, begun by a BEGIN the proxy holds back, that ends at the client's Sync.
   */
  holdImplicitBegin(): void {
    this.pendingBegin = 'BEGIN'
    this.implicit = true
    this.status = 'T'
  }

  /** A pipeline's implicit transaction became a regular one, begun by the proxy. */
  beginImplicit(): void {
    this.opening.start('BEGIN', [])
    this.implicit = true
    this.status = 'T'
  }

  /**
   * The held-back BEGIN reaches a server now: what to send there, in order (null when nothing is held back).
   * From here on the transaction is open, and a shard that joins it later opens it with the same statements.
   */
  start(): { begin: string; following: FollowingStatement[] } | null {
    const begin = this.pendingBegin
    if (begin === null) return null
    const following = this.following
    this.opening.start(begin, following)
    this.startedBy = this.current
    this.pendingBegin = null
    this.following = []
    return { begin, following }
  }

  /**
   * Whether the transaction may go on to other shards once it began (or its BEGIN is held back): any but a
   * SERIALIZABLE read-write one without two-phase commit, which could not stay serializable across shards.
   * Without two-phase commit, only one of the shards may be written (the router keeps writes to `writer`).
   */
  spans(twoPhase: boolean, serializableByDefault: boolean): boolean {
    const serializable = this.isolation === undefined ? serializableByDefault : this.isolation === 'serializable'
    return (this.readOnly || twoPhase || !serializable) && (this.opening.active || this.pendingBegin !== null)
  }

  /** Nothing is begun, held back or implicit: a pipeline may still become a transaction. */
  get none(): boolean {
    return this.status === 'I' && this.pendingBegin === null && !this.opening.active
  }

  /** The transaction ended (committed or not): back to no transaction. */
  end(): void {
    this.opening.end()
    this.startedBy = null
    this.sequenceShards.clear()
    this.implicit = false
    this.pendingBegin = null
    this.following = []
    this.readOnly = false
    this.isolation = undefined
    this.settingByFunction = null
    this.status = 'I'
  }
}
