import type { ServerConnection } from '../pool/ServerConnection.js'
import { encodeQuery } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { errorResponse } from '../protocol/ServerMessages.js'
import type { Role } from '../router/Route.js'
import type { SessionEffect, StatementPlan } from '../router/StatementPlan.js'
import type { ClientTransaction } from './ClientTransaction.js'
import type { ShardConnection, TransactionConnections } from './MultiShardExecutor.js'
import type { ReadYourWrites } from './ReadYourWrites.js'
import { runForClient } from './RunForClient.js'
import type { ServerLease } from './ServerLease.js'
import type { Identity, SessionServices } from './SessionServices.js'
import type { SessionSettings } from './SessionSettings.js'
import type { SettingsUndo } from './SettingsUndo.js'
import { callShard } from './ShardCall.js'
import { commitAcrossShards, type CommitOutcome } from './TwoPhaseCommit.js'

/** A connection from the pool for this client (its cancel, its read-your-writes and failed-node choices). */
export type TakeConnection = (shard: number, role: Role) => Promise<ServerConnection>

/**
 * One client's transaction on several shards: a connection per shard, each opened with the statements that
 * shaped the transaction so far when it joins, the others waiting aside while one serves the client; savepoints
 * and SET LOCAL that reach them all; an error on one that aborts the whole; and its end on every shard, all or
 * nothing with two-phase commit when it wrote.
 */
export class SpanningTransaction implements TransactionConnections {
  constructor(
    private readonly services: SessionServices,
    private readonly identity: Identity,
    private readonly settings: SessionSettings,
    private readonly settingsUndo: SettingsUndo,
    private readonly lease: ServerLease,
    private readonly tx: ClientTransaction,
    private readonly readYourWrites: ReadYourWrites,
    private readonly take: TakeConnection,
  ) {}

  /** The transaction's connection on each of these shards, for a statement that needs several. */
  async hold(shards: number[], role: Role): Promise<ShardConnection[]> {
    const ordered = [...new Set(shards)].sort((a, b) => a - b)
    for (const shard of ordered) await this.join(shard, role)
    return ordered.map((shard) => this.lease.inTransaction(shard)!)
  }

  /**
   * The transaction goes on to this shard: the attached connection waits aside, still in the transaction, and
   * this shard's own comes back, or a connection from the pool joins: it opens the transaction with the
   * statements that shaped it so far. Attached when it returns, with every reply in.
   */
  async join(shard: number, role: Role): Promise<ServerConnection> {
    await this.lease.whenIdle()
    const from = this.lease.attached?.placement.shard
    if (from === shard) return settled(this.lease.attached!.conn)
    this.lease.putAside()
    const back = this.lease.takeBack(shard)
    if (back) {
      if (back.closed) throw PgError.fatal(SqlState.CONNECTION_FAILURE, `lost the connection to server ${back.nodeName}, which this transaction read from`)
      await settled(back)
      // A SET the session ran since it went aside. Inside the transaction, which could roll it back: the
      // connection is reset before another client gets it.
      const sql = this.settings.adoptInTransaction(back.settings)
      if (sql !== null) {
        back.dirty = true
        await joinTransaction(back, sql)
      }
      return back
    }
    if (this.tx.settingByFunction !== null) {
      if (from !== undefined) this.lease.takeBack(from)
      throw new PgError(
        SqlState.FEATURE_NOT_SUPPORTED,
        `this transaction made ${this.tx.settingByFunction} with set_config(…, true) among other work in a query, which pgshard does not carry to another shard: shard ${this.services.config().shards[shard]?.name ?? shard} cannot join it`,
        { hint: 'Use SET LOCAL, or set_config in a SELECT of its own, which every shard of the transaction runs; or keep the transaction to one shard.' },
      )
    }
    let conn: ServerConnection
    try {
      conn = await this.take(shard, role)
    } catch (err) {
      // No connection (a pool timeout, a cancel): the transaction stays where it was, and fails there.
      if (from !== undefined) this.lease.takeBack(from)
      throw err
    }
    const following = this.tx.start()?.following ?? []
    await joinTransaction(conn, this.tx.opening.sql())
    for (const f of following) if (f.plan.kind === 'transaction') this.settingsUndo.onTransactionStatement(f.plan, conn)
    return conn
  }

  /**
   * A savepoint or SET LOCAL in an open transaction is recorded for the shards that join it later; true when
   * the transaction already holds several shards, whose connections aside must then run it too (runAside).
   */
  shape(plan: StatementPlan, sql: string): boolean {
    if (!this.tx.opening.active || !shapesOpenTransaction(plan)) return false
    if (this.tx.status !== 'E' || plan.tx === 'rollback_to') this.tx.opening.record(plan, sql)
    return this.lease.spansShards
  }

  /** A savepoint or SET LOCAL on the transaction's connections aside (their errors show when they are used). */
  async runAside(sql: string): Promise<void> {
    await Promise.allSettled(this.lease.aside().map((a) => callShard(a.conn, encodeQuery(sql))))
  }

  /**
   * After a statement on several shards of the transaction: if it failed on one, the transaction is aborted
   * and that shard's connection is attached, so the client's next statements get 25P02 as from a server.
   */
  afterStatement(): void {
    if (this.lease.attached?.conn.tracker.status === 'E') {
      this.tx.status = 'E'
      return
    }
    const failed = this.lease.aside().find((p) => p.conn.tracker.status === 'E')
    if (!failed) return
    this.lease.putAside()
    this.lease.takeBack(failed.placement.shard)
    this.tx.status = 'E'
  }

  /** A COMMIT by itself of a read-write transaction that holds several shards: commitAcrossShards ends it. */
  commits(plan: StatementPlan): boolean {
    return plan.kind === 'transaction' && plan.tx === 'commit' && !plan.txChain && !plan.multiStatement && this.lease.spansShards && !this.tx.readOnly && this.tx.status === 'T'
  }

  /**
   * Ends a read-write transaction on several shards all or nothing (TwoPhaseCommit: the shard it wrote commits,
   * or, when it wrote several, two-phase commit), then gives every connection back; what the client gets is
   * COMMIT, or the error that rolled it back everywhere.
   */
  async commit(plan: StatementPlan): Promise<CommitOutcome> {
    await this.lease.whenIdle()
    const held = this.lease.takeTransaction()
    const parts = held.map((a) => ({ shardName: a.placement.shardName, nodeName: a.placement.nodeName, conn: a.conn }))
    const outcome = await commitAcrossShards(parts, this.services.log, this.services.config().sharding.cross_shard_transactions === 'two_phase')
    const committed = outcome.outcome === 'committed'
    if (committed && this.identity.readYourWrites) await Promise.all(held.map((a) => this.readYourWrites.captureNow(a.conn, a.placement.shard)))
    // Its settings kept or put back while the connections are still the client's.
    if (!committed) this.settingsUndo.onError()
    this.settingsUndo.onTransactionStatement(plan, held[0].conn)
    // A transaction that failed to commit may have left settings or savepoints anywhere: reset before reuse.
    for (const a of held) a.placement.pool.release(a.conn, !committed)
    this.services.metrics.transaction(committed)
    this.services.metrics.twoPhase.commit(outcome.outcome)
    return outcome
  }

  /** Rolls the transaction back on every shard it holds and gives the connections back (to be reset). */
  async rollback(): Promise<void> {
    const held = this.lease.takeTransaction()
    await Promise.all(held.map((a) => callShard(a.conn, encodeQuery('ROLLBACK')).catch(() => null)))
    this.settingsUndo.rolledBack()
    for (const a of held) a.placement.pool.release(a.conn, true)
    this.services.metrics.transaction(false)
  }

  /** For the detector of deadlocks across shards: the connections of a transaction that holds several shards. */
  connections(): ServerConnection[] {
    return this.lease.spansShards ? this.lease.transactionConnections() : []
  }

  /**
   * Chosen to break a deadlock across shards: its statement waiting on `conn` is cancelled, and the client gets
   * 40P01. As a server releases an aborted transaction's locks at the error, its parts on the other shards roll
   * back then too (unless a savepoint is open: the client may roll back to it and go on).
   */
  breakDeadlock(conn: ServerConnection, detail: string): void {
    const err = new PgError(SqlState.DEADLOCK_DETECTED, 'deadlock detected across shards', { detail, hint: 'The transaction is aborted: roll it back and retry it.' })
    this.services.metrics.error(err.code)
    conn.tracker.replaceNextError(errorResponse(err), () => {
      if (!this.tx.opening.inSavepoint) void this.runAside('ROLLBACK')
    })
    this.services.cancel(conn.nodeName, conn)
  }
}

/**
 * A cancel still on its way (a read of every shard that failed cancels the others) must not hit what the
 * transaction runs next on that connection.
 */
async function settled(conn: ServerConnection): Promise<ServerConnection> {
  if (conn.cancelling) await new Promise<void>((resolve) => conn.whenNotCancelling(resolve))
  return conn
}

/**
 * Statements that bring a connection into the client's transaction, behind its settings (the client waits:
 * a statement on several shards reads the connection itself); if the server refuses them, the transaction
 * aborts there and the client's statement gets the reason.
 */
function joinTransaction(conn: ServerConnection, sql: string): Promise<void> {
  return runForClient(conn, sql, {
    refused: (message) => `server ${conn.nodeName} could not join this transaction: ${message}`,
    lost: 'while it joined this transaction',
  })
}

/** A savepoint or SET LOCAL inside a transaction: what a shard joining it later must run too. */
function shapesOpenTransaction(plan: StatementPlan): boolean {
  if (plan.multiStatement) return false
  if (plan.kind === 'transaction') return plan.tx === 'savepoint' || plan.tx === 'release' || plan.tx === 'rollback_to'
  return (plan.kind === 'set' && plan.session.length > 0 && plan.session.every(shapesTransaction)) || setsLocally(plan)
}

/**
 * A SELECT of set_config(…, true) calls only: a SET LOCAL in a query (how PostgREST and row-level security start
 * each transaction: the role, the claims). It shapes the transaction as SET LOCAL does, on every shard.
 */
export function setsLocally(plan: StatementPlan): boolean {
  if (plan.kind !== 'select' || plan.multiStatement || plan.tables.length > 0 || plan.functions.length === 0) return false
  return plan.functions.every((f) => f === 'set_config') && plan.session.length > 0 && plan.session.every((e) => e.kind === 'set' && e.local)
}

/** SET TRANSACTION …, SET LOCAL …: what ends with the transaction it shapes. */
export function shapesTransaction(e: SessionEffect): boolean {
  return e.kind === 'set_transaction' || (e.kind === 'set' && e.local)
}
