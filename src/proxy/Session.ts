import type net from 'node:net'
import {
  FE,
  SYNC,
  decodeBind,
  decodeCopyFail,
  decodeExecute,
  decodeParse,
  decodeQuery,
  decodeTarget,
  encodeQuery,
  encodeTarget,
  encodeUnnamedRun,
  paramFormat,
  parseTail,
  renameBind,
  renameParse,
  type BindMessage,
} from '../protocol/FrontendMessages.js'
import { printable, type Frame, type FrontendReader } from '../protocol/FrontendReader.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { Expect, type TrackerOwner } from '../protocol/ResponseTracker.js'
import {
  BIND_COMPLETE,
  CLOSE_COMPLETE,
  NO_DATA,
  PARSE_COMPLETE,
  commandComplete,
  errorResponse,
  noticeResponse,
  readyForQuery,
  type TxStatus,
} from '../protocol/ServerMessages.js'
import { noteBytesRead } from '../pool/ReadBufferReclaimer.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import { pinnedSessionHint, startedByNote, type BoundParam, type Role } from '../router/Route.js'
import { withCopyColumn } from '../router/CopyRowRouter.js'
import { sessionEffectParams } from '../router/SessionEffects.js'
import type { StatementPlan } from '../router/StatementPlan.js'
import type { PickOptions } from '../health/Topology.js'
import { restoreLiterals, usedParams } from '../router/LiteralNormalizer.js'
import { TypeOid } from '../router/merge/TypeOid.js'
import { ExtendedGroup, type Held } from './ExtendedGroup.js'
import { ClientStatements, isSqlPrepared, sqlStatementFor, type ClientStatement, type SqlPreparedEffect } from './ClientStatements.js'
import { CopyInFanout } from './CopyInFanout.js'
import { MultiShardExecutor, type ClientOutput, type ReplyShape, type ShardStatement, type SuspendedScatter } from './MultiShardExecutor.js'
import { copyInto, insertSelectRows } from './InsertSelectCopy.js'
import { replaceIdentifierAt } from './SqlNameSplice.js'
import { LocalStatements, type LocalSession } from './LocalStatements.js'
import { SessionKeys, type KeyedSession, type KeysRoute, type LocateRoute } from './SessionKeys.js'
import { SessionPins } from './SessionPins.js'
import { drawnValueQuery, SessionRouting, type AsideRoute, type DrawnValueRoute, type RoutedSession, type SequenceDrawRoute, type SessionRoute } from './SessionRouting.js'
import { ShardCursors } from './ShardCursors.js'
import { setsLocally, SpanningTransaction } from './SpanningTransaction.js'
import { ReadYourWrites } from './ReadYourWrites.js'
import { PartReplies } from './PartReplies.js'
import { explainAcrossShards } from './ExplainAcrossShards.js'
import { statementTexts } from '../router/StatementTexts.js'
import { SqlAnalysisError } from '../router/SqlParser.js'
import { ADVISORY_LOCK, applySessionEffects } from './SessionEffects.js'
import {
  asStatementError,
  beginAfterStatements,
  duplicateStatement,
  missingStatement,
  otherKindOfStatement,
  routeError,
  shutdownError,
  sqlPrepareAmongOthers,
  tooManyStatements,
} from './SessionErrors.js'
import { SessionSettings, setConfigSql } from './SessionSettings.js'
import { ServerLease, type Attachment } from './ServerLease.js'
import { ensurePrepared, forgetIfReplanRefused, holdsPrepared } from './ServerStatements.js'
import { SettingsUndo } from './SettingsUndo.js'
import { lockingLimitRead } from './LockingLimit.js'
import { scatterRead } from './SharedSubqueries.js'
import { SubqueryAnswers, type EvaluateRoute } from './SubqueryAnswers.js'
import { countedRowsOutput } from './CountedRows.js'
import { bindParam, bindStatement, boundPlan, executeArg, literalParam, splitPart, withParamsWritten } from './StatementParams.js'
import type { CommitOutcome } from './TwoPhaseCommit.js'
import { ClientTransaction } from './ClientTransaction.js'
import type { Analyzed, Identity, Placement, SessionServices } from './SessionServices.js'

/** An error of the proxy's own the client never sees (failTransaction). */
const NOTHING = Buffer.alloc(0)
/** Turns a pipeline's implicit transaction into a regular one (beginImplicitTransaction). */
const IMPLICIT_BEGIN = encodeUnnamedRun('BEGIN')

/** A read across shards stopped at an Execute's row limit; `inTx`: its portal lives until the transaction ends. */
type SuspendedPortal = { scatter: SuspendedScatter; inTx: boolean }

/** A simple Query ends the unnamed portal, and outside a transaction block every portal. */
function endsWithQuery(portal: string, s: SuspendedPortal): boolean {
  return !s.inTx || portal === ''
}

/** A statement on several shards waiting for its Execute or Sync. */
type PendingMulti = { route: MultiRoute; analyzed: Analyzed; stmt: ClientStatement; bind: BindMessage; shape: ReplyShape; closed?: boolean }

/**
 * One client, from log-in to disconnect. Reads the client's messages in order, decides for each statement
 * where it runs, lends itself a server connection for as long as the pool mode allows, and forwards the
 * replies as the bytes the server sent. The proxy's own answers (deferred BEGIN, routing errors, re-prepared
 * statements) are slotted into the reply stream at the position the client expects them.
 */
export class Session implements TrackerOwner, RoutedSession, LocalSession, KeyedSession {
  private readonly lease: ServerLease
  private readonly statements: ClientStatements
  readonly settings: SessionSettings
  private readonly settingsUndo: SettingsUndo
  /** The extended-protocol messages since the last Sync. */
  private readonly group: ExtendedGroup
  /** A statement on several shards, bound: it runs at Sync (or at its Execute in a transaction across shards). */
  private multi: PendingMulti | null = null
  /** Reads on several shards bound in a transaction and not executed before the Sync (asyncpg binds its cursors so). */
  private readonly boundPortals = new Map<string, PendingMulti>()
  /** What to do when a bound portal's Execute is answered (metrics, session effects), by portal name. */
  private readonly portalCompletion = new Map<string, (ok: boolean) => void>()
  /** A COPY FROM STDIN running on several shards, reading the client's data. */
  private copyIn: CopyInFanout | null = null
  /** Named portals bound in a transaction that may span shards: the shard whose connection holds each. */
  private readonly portalShards = new Map<string, { shard: number; role: Role }>()
  /**
   * Reads across shards stopped at their Execute's row limit, by portal, which may go on: outside a transaction
   * until the Sync (pg-cursor), inside one until its end (asyncpg's cursors, pgjdbc's fetch size).
   */
  private readonly suspended = new Map<string, SuspendedPortal>()
  /** Errors the proxy sent the client itself (emitError), to tell whether a statement it ran failed. */
  private errorsSent = 0
  /** Portals the proxy answers itself: what their Execute does, and its command tag. */
  private readonly localPortals = new Map<string, () => string | Promise<string>>()
  /** The portal of a COMMIT that ends a transaction across shards (extended protocol): its Execute commits. */
  private commitPortal: { name: string; plan: StatementPlan } | null = null
  /** The client's transaction: its status, a BEGIN held back, what shaped it. */
  private readonly tx = new ClientTransaction()
  private readonly routing: SessionRouting
  /** Keys and values pgshard makes for the session's writes; where a write without its key finds its rows. */
  private readonly keys: SessionKeys
  /** The answers of subqueries over sharded tables read first, written into the statement (the 'evaluate' route). */
  private readonly answers: SubqueryAnswers
  /** SQL cursors declared over several shards in the transaction. */
  private readonly shardCursors: ShardCursors
  /** The transaction's connections on several shards, and its end there. */
  private readonly spanning: SpanningTransaction
  /** Statements answered without a server: a held-back BEGIN, routing hints, LISTEN through the hub. */
  private readonly local: LocalStatements
  /** What keeps the session on its server connection (LISTEN, advisory lock, WITH HOLD cursor …). */
  private readonly pins = new SessionPins()
  private running = false
  /** Waiting at the routing gate (RESHARD, a planned switchover), its next frame not yet handled. */
  private parked = false
  private closed = false
  /** Shutdown: the client is ended (57P01) at its next transaction boundary. */
  private draining = false
  private readonly readYourWrites = new ReadYourWrites()
  /** The replies of a query whose statements run one by one (runOneByOne), while it runs. */
  private oneByOne: PartReplies | null = null
  /** The unit in flight (a Query, or a group up to Sync) as the client sent it, while it may still be retried. */
  private unit: { frames: Frame[] | null; bytesOut: number } | null = null
  /** Frames to run again (a read whose replica died before answering), before reading the client. */
  private replay: Frame[] = []
  private replaying = false
  /** A node that failed the unit in flight: its retry goes elsewhere. */
  private avoid: string | undefined
  /** Aborted by the client's CancelRequest, then replaced: only what is in flight then listens to it. */
  private cancelSignal = new AbortController()
  private idleInTxTimer: NodeJS.Timeout | null = null
  readonly connectedAt = Date.now()
  /** Grows with each client (the newest of two in a deadlock gives way). */
  readonly serial = nextSerial++
  lastActivityAt = Date.now()
  /** Counters for the console. */
  readonly stats = { queries: 0, transactions: 0, bytesIn: 0, bytesOut: 0 }

  constructor(
    private readonly services: SessionServices,
    readonly client: net.Socket,
    private readonly reader: FrontendReader,
    readonly identity: Identity,
    startupParams: Map<string, string>,
    readonly key: { pid: number; secret: number },
  ) {
    this.statements = new ClientStatements(10_000)
    this.settings = new SessionSettings(startupParams)
    this.settingsUndo = new SettingsUndo(this.settings)
    this.lease = new ServerLease(this, services, identity, this.settings)
    this.shardCursors = new ShardCursors(services, () => this.tx.opening.savepointDepth)
    this.routing = new SessionRouting(services, identity, this.settings, this.lease, this.tx, this, this.shardCursors)
    this.spanning = new SpanningTransaction(services, identity, this.settings, this.settingsUndo, this.lease, this.tx, this.readYourWrites, (shard, role) =>
      this.lease.take(shard, role, this.pickOptions(shard, role), this.cancelSignal.signal, () => this.closed),
    )
    this.keys = new SessionKeys(services, identity, this.settings, this.lease, this.tx, this.routing, this)
    this.answers = new SubqueryAnswers(services, this.lease, this.routing, this, {
      executor: (out, cancel) => this.executorFor(out, cancel),
      acrossShardsRefusal: (route) => (this.inTransaction && this.mayJoinShards ? null : this.notInThisSession(route, this.inTransaction)),
    })
    this.local = new LocalStatements(services, identity, this.lease, this.tx, this.routing.hints, this)
    this.group = new ExtendedGroup({
      currentServer: () => this.currentServer(),
      mayChangeShard: () => this.mayJoinShards,
      attachedConn: () => this.attached?.conn ?? null,
      defaultServer: () => this.connFor(this.routing.defaultShard(), 'primary'),
      emitAfterPending: (bytes) => this.emitAfterPending(bytes),
      refused: (err) => {
        this.services.metrics.error(err.code)
        if (this.tx.pendingBegin !== null) this.tx.status = 'E'
      },
    })
    client.on('data', (chunk: Buffer) => {
      this.stats.bytesIn += chunk.length
      services.metrics.clientBytes(chunk.length, 0)
      noteBytesRead(chunk.length)
      this.reader.push(chunk)
      // While a message waits (for a server, for a full server socket to drain), what the client sends next
      // piles up here: past a bound, stop reading it until the pump has worked through it.
      if (this.running && this.reader.buffered > READ_AHEAD_LIMIT && !this.client.isPaused()) this.client.pause()
      void this.pump()
    })
    client.on('drain', () => this.lease.resumeAll())
    client.on('error', () => this.close())
    client.on('close', () => this.close())
    void this.pump()
  }

  /** Why the session keeps its server connection, if it does. */
  get pinnedBy(): string | null {
    return this.pins.reason
  }

  /** Transaction status the client sees (for the console). */
  get txStatus(): TxStatus {
    return this.tx.status
  }

  private get attached(): Attachment | null {
    return this.lease.attached
  }

  /** `held`: at the routing gate (RESHARD, a planned switchover); `waiting`: queued for a server connection. */
  get state(): 'active' | 'idle' | 'waiting' | 'held' {
    if (this.parked) return 'held'
    if (this.attached) return 'active'
    return this.running ? 'waiting' : 'idle'
  }

  get serverConnection(): ServerConnection | null {
    return this.attached?.conn ?? null
  }

  get heldShard(): number | undefined {
    return this.attached?.placement.shard
  }

  get pipelining(): boolean {
    return this.group.conn !== null
  }

  get cancelled(): AbortSignal {
    return this.cancelSignal.signal
  }

  private get sessionMode(): boolean {
    return this.identity.mode === 'session'
  }

  // ---------------------------------------------------------------- client input

  private async pump(): Promise<void> {
    if (this.running || this.closed) return
    this.running = true
    try {
      for (;;) {
        if (this.closed) return
        if (this.services.gate.closed && this.holdsNoServer()) {
          await this.parkAtGate()
          continue
        }
        const replayed = this.replay.shift()
        const frame = replayed ?? this.reader.next()
        if (!frame) break
        if (this.draining && this.atBoundary()) {
          this.fatal(shutdownError())
          return
        }
        this.replaying = replayed !== undefined
        this.lastActivityAt = Date.now()
        this.clearIdleInTxTimer()
        this.record(frame)
        try {
          const wait = this.handle(frame)
          if (wait) await wait
        } catch (err) {
          if (!(err instanceof PgError) || err.severity !== 'ERROR') throw err
          await this.refuse(frame.type, err)
        }
      }
    } catch (err) {
      this.fatal(err)
    } finally {
      this.running = false
      this.replaying = false
    }
    // A transaction the proxy ended itself (a held-back one, a commit across shards): no ReadyForQuery from a
    // server will come to end a draining session.
    if (this.draining && !this.closed && this.atBoundary()) {
      this.fatal(shutdownError())
      return
    }
    if (this.client.isPaused() && !this.closed) this.client.resume()
    // Waiting for the client inside a transaction (also one whose BEGIN is still deferred): the clock runs.
    const a = this.attached
    if (this.tx.status !== 'I' && (!a || a.conn.tracker.idle)) this.armIdleInTxTimer()
  }

  /**
   * Keeps the frames of the unit in flight while nothing is in a transaction, so that a read whose replica
   * dies before answering can run again elsewhere.
   */
  private record(frame: Frame): void {
    if (this.replaying) return
    const outsideTx = this.tx.status === 'I' && this.tx.pendingBegin === null && !this.pinnedBy
    if (!outsideTx) {
      this.unit = null
      return
    }
    if (!this.unit || frame.type === FE.query) this.unit = { frames: [], bytesOut: this.stats.bytesOut }
    const frames = this.unit.frames
    if (frames === null) return
    // COPY data is never replayed, nor a long pipeline: holding it would hold the client's bytes.
    if (frame.type === FE.copyData || frame.type === FE.copyDone || frame.type === FE.copyFail || frames.length >= MAX_REPLAYED_FRAMES) this.unit.frames = null
    else frames.push(frame)
  }

  /** The unit in flight writes (or may): it is never run twice. */
  private notRetryable(): void {
    if (this.unit) this.unit.frames = null
  }

  /** Between transactions with nothing in flight: ending the client now loses nothing it was told succeeded. */
  private atBoundary(): boolean {
    if (this.tx.status !== 'I' || this.tx.pendingBegin !== null || this.group.held.length > 0 || this.group.conn || this.multi || this.copyIn) return false
    const a = this.attached
    return !a || (a.conn.tracker.idle && a.conn.tracker.status === 'I')
  }

  /**
   * No server connection serves this client and nothing it sent is routed yet: what it sends next may wait at
   * the routing gate. Messages of an extended-protocol group held for their Bind do not count (the Bind routes).
   */
  private holdsNoServer(): boolean {
    return !this.attached && !this.lease.spansShards && this.group.conn === null && this.multi === null && this.copyIn === null
  }

  /** Waits while the routing gate is closed (RESHARD, a planned switchover), counted as held. */
  private async parkAtGate(): Promise<void> {
    const gate = this.services.gate.closed
    if (!gate) return
    this.parked = true
    await gate
    this.parked = false
  }

  /** Waiting at the routing gate (RESHARD, a planned switchover). */
  get held(): boolean {
    return this.parked
  }

  /** Nothing of this client runs: it waits for its own next message, or at the routing gate. */
  get quiet(): boolean {
    return !this.running || this.parked
  }

  /** Shutdown: ends the client now if it is between transactions, else at the end of its transaction. */
  drain(): void {
    this.draining = true
    if (!this.running && this.atBoundary()) this.fatal(shutdownError())
  }

  /** A statement refused while handling this message: answered as a server would, and the session goes on. */
  private refuse(type: number, err: PgError): Promise<void> | void {
    if (type === FE.query) return this.refuseQuery(err)
    this.group.refuse(err)
    if (type === FE.sync) return this.onSync()
  }

  private handle(frame: Frame): Promise<void> | void {
    if (this.copyIn) return this.feedCopy(this.copyIn, frame)
    if (this.group.skipToSync && frame.type !== FE.sync) return
    if (this.multi && frame.type === FE.flush) return this.multi.shape.execute ? this.runMultiAtFlush() : undefined
    // A Query ends the group's implicit transaction and the unnamed portal, and with them such a portal.
    if (this.suspended.size > 0 && frame.type === FE.query && [...this.suspended].some(([p, s]) => endsWithQuery(p, s))) return this.endSuspended(endsWithQuery).then(() => this.handle(frame))
    switch (frame.type) {
      case FE.query:
        return this.group.open || this.multi || this.tx.implicit ? this.queryInGroup(frame) : this.onQuery(frame)
      case FE.parse:
        return this.onParse(frame)
      case FE.bind:
        return this.onBind(frame)
      case FE.describe:
        return this.onDescribe(frame)
      case FE.execute:
        return this.onExecute(frame)
      case FE.close:
        return this.onClose(frame)
      case FE.sync:
        return this.onSync()
      case FE.flush:
        return this.onFlush(frame)
      case FE.copyData:
      case FE.copyDone:
      case FE.copyFail:
        // Outside COPY a server ignores these too (a client may still be sending after a failed COPY).
        if (this.attached) return this.send(this.attached.conn, frame.raw)
        return
      case FE.functionCall:
        return this.onFunctionCall(frame)
      case FE.terminate:
        this.close()
        return
      default:
        throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, `invalid frontend message type ${printable(frame.type)}`)
    }
  }

  /** Writes to a server; when its buffer is full, stops reading the client until it drains. */
  private send(conn: ServerConnection, bytes: Buffer): Promise<void> | void {
    if (!conn.write(bytes)) return conn.drained()
  }

  // ---------------------------------------------------------------- simple query

  /**
   * A Query among extended-protocol messages, before their Sync (pgjdbc sends its autosave SAVEPOINT so): a
   * server answers what came before it first, and the Query ends their group as a Sync would, but with only its
   * own ReadyForQuery.
   */
  private async queryInGroup(frame: Frame): Promise<void> {
    // A Query ends a pipeline's implicit transaction, as on one server.
    if (this.tx.implicit) await this.endImplicitTransaction(false)
    if (this.multi) {
      // Its reply comes at Sync, after the Query's: failed instead, and the Query skipped as after any error.
      this.multi = null
      return this.group.refuse(new PgError(SqlState.FEATURE_NOT_SUPPORTED, 'a simple Query after a statement on several shards in the same extended-protocol group is not supported', { hint: 'Send a Sync before the Query.' }))
    }
    const conn = await this.group.server()
    // The server is still inside the group, with its implicit transaction open: the Query runs there, and the
    // server decides what that transaction becomes (a BEGIN keeps it open, a ROLLBACK undoes it), as on one server.
    // A group that ran nothing (asyncpg's prepare: Parse, Describe, Flush) ends there instead, with a Sync of the
    // proxy's own, and the Query goes where it belongs.
    if (conn?.tracker.inGroup && !this.group.leaveServer()) return this.queryOnGroupServer(conn, frame)
    this.group.end()
    return this.onQuery(frame)
  }

  /**
   * A Query for the server whose pipeline it follows (queryInGroup). One that needs another shard is refused,
   * and, as its error would on one server, aborts the pipeline's implicit transaction there.
   */
  private async queryOnGroupServer(conn: ServerConnection, frame: Frame): Promise<void> {
    const analyzed = this.routing.analyze(decodeQuery(frame.body))
    this.stats.queries++
    this.notRetryable()
    const route = this.routing.route(analyzed, (n) => literalParam(analyzed, n))
    const tables = analyzed.plan?.tables.length ?? 0
    if (tables > 0 && (route.kind !== 'shard' || route.shard !== this.attached?.placement.shard)) {
      this.group.refuse(new PgError(SqlState.FEATURE_NOT_SUPPORTED, 'a simple Query for another shard right after extended-protocol messages without their Sync is not supported', { hint: 'Send a Sync before the Query.' }))
      conn.tracker.push({ expect: Expect.Sync, mode: 'forward', done: (ok) => this.settlePortals(ok) })
      this.group.end()
      return this.send(conn, SYNC)
    }
    this.group.end()
    conn.tracker.push({ expect: Expect.Query, mode: 'forward', done: this.completion(analyzed.plan, conn) })
    return this.send(conn, frame.raw)
  }

  private onQuery(frame: Frame): Promise<void> | void {
    this.stats.queries++
    return this.runQuery(decodeQuery(frame.body), frame.raw)
  }

  /** A simple query (`raw`: its Query message), as the client sent it or with keys pgshard drew written in. */
  private runQuery(sql: string, raw: Buffer, catalogRead = false): Promise<void> | void {
    this.tx.current = sql
    const analyzed = this.routing.analyze(sql)
    const listening = analyzed.plan && this.local.listen(analyzed.plan)
    if (listening) {
      return listening().then(
        (tag) => this.emitAfterPending(Buffer.concat([commandComplete(tag), readyForQuery(this.tx.status)])),
        (err: PgError) => this.refuseQuery(err),
      )
    }
    const local = analyzed.plan && this.local.statement(analyzed.plan, sql)
    if (local) {
      const tag = local()
      this.services.metrics.route('local')
      this.emitAfterPending(Buffer.concat([commandComplete(tag), readyForQuery(this.tx.status)]))
      return
    }
    if (analyzed.plan) this.resetAhead(analyzed.plan)
    const prepared = analyzed.plan?.session.find(isSqlPrepared)
    if (prepared && analyzed.plan!.multiStatement) {
      return runsOneByOne(analyzed.plan!) ? this.runOneByOne(sql, analyzed.plan!.statements!, sqlPrepareAmongOthers(prepared)) : this.refuseQuery(sqlPrepareAmongOthers(prepared))
    }
    if (prepared) return this.onSqlPrepared(sql, analyzed, prepared)
    if (analyzed.plan && this.spanning.commits(analyzed.plan)) {
      return this.endAcrossShards(analyzed.plan).then((outcome) => this.toClient(Buffer.concat([outcome.reply, readyForQuery('I')])))
    }
    const param = (n: number) => literalParam(analyzed, n)
    const route = this.routing.route(analyzed, param)
    // Refused for want of a table made moments ago: routed again, once, after a read of the catalogs (if one ran).
    if (route.kind === 'error' && route.catalog && !catalogRead) return this.services.catalogAfterDdl().then(() => this.runQuery(sql, raw, true))
    if (route.kind === 'error' && analyzed.plan && runsOneByOne(analyzed.plan)) return this.runOneByOne(sql, analyzed.plan.statements!, routeError(route))
    if (route.kind === 'evaluate') {
      return this.answers.written(route, analyzed, { sql }).then(
        (written) => this.runQuery(written, encodeQuery(written)),
        (err: unknown) => this.refuseQuery(asStatementError(err)),
      )
    }
    if (route.kind !== 'locate') return this.runRoutedQuery(sql, raw, analyzed, route)
    return this.locatedRoute(route, analyzed, param, { sql }).then(
      (located) => this.runRoutedQuery(sql, raw, analyzed, located),
      (err: unknown) => this.refuseQuery(asStatementError(err)),
    )
  }

  /**
   * A query of several statements that cannot run together (they need different shards, one reads several and
   * its rows must be merged, one is pgshard's own to answer): each runs as a query of its own, in turn, as a
   * server runs them, and the client gets one ReadyForQuery at the end. Outside a transaction block they form one
   * implicit transaction, as on a server (an error undoes the statements before it), unless they only read:
   * then each reads on its own, which READ COMMITTED cannot tell apart. A BEGIN among them makes that
   * transaction the client's; a COMMIT or ROLLBACK ends it, and the statements after it begin another.
   */
  private async runOneByOne(sql: string, plans: StatementPlan[], together: PgError): Promise<void> {
    // Cut from the client's text, which parsed as the analysed one did: should the two disagree, the query is
    // refused as it would have been together.
    const texts = splitText(sql)
    if (texts?.length !== plans.length) return this.refuseQuery(together)
    this.notRetryable()
    const replies = new PartReplies((bytes) => this.writeClient(bytes))
    this.oneByOne = replies
    const reads = plans.every((p) => (p.kind === 'select' || p.kind === 'show') && p.session.length === 0 && !this.services.mayWrite(p))
    // A statement, or the refusal that takes its place.
    const part = async (statement: string | PgError, quiet: boolean): Promise<boolean> => {
      // Each is routed as if the client had sent it: it waits at the routing gate (RESHARD) as one would.
      if (this.services.gate.closed && this.holdsNoServer()) await this.parkAtGate()
      this.clearIdleInTxTimer()
      const ended = replies.expect(quiet)
      try {
        if (statement instanceof PgError) throw statement
        await this.runQuery(statement, encodeQuery(statement))
      } catch (err) {
        if (!(err instanceof PgError) || err.severity !== 'ERROR') throw err
        await this.refuseQuery(err)
      }
      return (await ended).ok
    }
    try {
      for (let i = 0; i < texts.length && !this.closed; i++) {
        const plan = plans[i]!
        if (this.tx.ofOneQuery && plan.tx === 'begin') {
          // As on a server, the statements so far become part of the client's transaction: one whose BEGIN sets
          // what must be set before them is refused.
          if (plan.txReadOnly || plan.txIsolation !== undefined) {
            await part(beginAfterStatements(), false)
            break
          }
          this.tx.ofOneQuery = false
          this.toClient(commandComplete('BEGIN'))
          continue
        }
        if (!reads && plan.kind !== 'transaction' && this.tx.status === 'I') {
          if (!(await part('BEGIN', true))) break
          this.tx.ofOneQuery = true
        }
        const ok = await part(texts[i]!, false)
        if (this.tx.status === 'I') this.tx.ofOneQuery = false
        if (!ok) break
      }
      if (this.tx.ofOneQuery && !this.closed) await part(this.tx.status === 'T' ? 'COMMIT' : 'ROLLBACK', true)
    } finally {
      this.tx.ofOneQuery = false
      this.oneByOne = null
    }
    this.toClient(readyForQuery(this.tx.status))
  }

  /** A simple query's statement where its route sends it. */
  private runRoutedQuery(sql: string, raw: Buffer, analyzed: Analyzed, route: SessionRoute): Promise<void> | void {
    if (route.kind === 'error') return this.refuseQuery(routeError(route))
    if (route.kind === 'locate' || route.kind === 'evaluate') return this.refuseQuery(new PgError(SqlState.INTERNAL_ERROR, 'a statement pgshard routed again needs more done first'))
    if (route.kind === 'keys') {
      return this.keys.insertWithMadeKeys(route, analyzed).then(
        (keyed) => this.runQuery(keyed, encodeQuery(keyed)),
        (err: unknown) => this.refuseQuery(asStatementError(err)),
      )
    }
    if (route.kind === 'drawn') {
      const answer = drawnValueQuery(route, 0)
      return this.runQuery(answer, encodeQuery(answer))
    }
    if (route.kind === 'draw') {
      return this.keys.drawForClient(route).then(
        (drawn) => this.runRoutedQuery(sql, raw, analyzed, drawn),
        (err: unknown) => this.refuseQuery(asStatementError(err)),
      )
    }
    if (route.kind !== 'shard') {
      return this.runMultiShard(route, analyzed, { sql }, { describe: true, execute: true }, (n) => literalParam(analyzed, n)).then(
        (outcome) => {
          if (outcome !== 'copy') this.emitAfterPending(readyForQuery(this.tx.status))
        },
      )
    }
    if (route.role !== 'replica') this.notRetryable()
    // set_config(…, true) before the transaction reached a server: shards that join later run it too.
    if (analyzed.plan && this.tx.pendingBegin !== null && setsLocally(analyzed.plan)) this.tx.follow(analyzed.plan, sql)
    const send = (conn: ServerConnection) => {
      conn.tracker.push({ expect: Expect.Query, mode: 'forward', done: this.completion(analyzed.plan, conn) })
      return this.send(conn, raw)
    }
    if (analyzed.plan && this.shapeTransaction(analyzed.plan, sql)) return this.spanning.runAside(sql).then(() => this.connFor(route.shard, route.role)).then(send)
    // Most statements find their server at once (the attached one, an idle one in the pool): no await then.
    const ready = this.connNow(route.shard, route.role)
    return ready ? send(ready) : this.connFor(route.shard, route.role).then(send)
  }

  /**
   * SQL-level PREPARE / EXECUTE / DEALLOCATE. The statement is prepared on servers under the proxy's own name
   * (shared by identical PREPAREs), re-prepared on whichever connection runs an EXECUTE, and DEALLOCATE only
   * forgets the client's name, so no client sees or collides with another's statements.
   */
  private async onSqlPrepared(sql: string, analyzed: Analyzed, e: SqlPreparedEffect): Promise<void> {
    const tag = analyzed.plan!.commandTag
    if (e.kind === 'deallocate') {
      if (e.name === null) this.statements.deallocateAll()
      else if (!this.statements.delete(e.name)) return this.refuseQuery(missingStatement(e.name))
      this.answerLocally(tag)
      return
    }
    if (e.kind === 'prepare' && this.statements.has(e.name)) return this.refuseQuery(duplicateStatement(e.name))
    if (e.kind === 'prepare' && this.statements.full) return this.refuseQuery(tooManyStatements())
    const known = e.kind === 'execute' ? this.statements.getSql(e.name) : undefined
    if (e.kind === 'execute' && !known) return this.refuseQuery(this.noStatement(e.name, 'EXECUTE'))
    // EXECUTE names no table: it goes where the prepared query would go with EXECUTE's arguments.
    // (PREPARE itself may run on any shard: every shard has the same schema.)
    const prepared = e.kind === 'execute' ? known!.plan : null
    const route = prepared
      ? this.routing.route({ plan: prepared, literals: [], firstParam: prepared.paramCount + 1 }, (n) => executeArg(e.kind === 'execute' ? e.args[n - 1] : undefined))
      : this.routing.route(analyzed, () => undefined)
    if (route.kind === 'error') return this.refuseQuery(routeError(route))
    if (route.kind !== 'shard')
      return this.refuseQuery(
        new PgError(SqlState.FEATURE_NOT_SUPPORTED, `a statement run with SQL PREPARE/EXECUTE must run on one shard; this one needs several (${route.reason})`, {
          hint: 'Pin its key, or run it without PREPARE (pgshard merges across shards only for plain statements).',
        }),
      )
    const conn = await this.connFor(route.shard, 'primary')
    const entry = known ?? sqlStatementFor(sql, e.nameLocation, analyzed.plan!.prepared ?? null, this.services.statementNames)
    if (e.kind === 'prepare') {
      const name = e.name
      if (holdsPrepared(conn, entry.serverName)) {
        this.statements.setSql(name, entry)
        this.answerLocally(tag)
        return
      }
      conn.tracker.push({
        expect: Expect.Query,
        mode: 'forward',
        done: (ok) => (ok ? this.statements.setSql(name, entry) : conn.prepared.delete(entry.serverName)),
      })
      await this.send(conn, encodeQuery(entry.prepareSql))
      return
    }
    if (!holdsPrepared(conn, entry.serverName)) {
      conn.tracker.push({ expect: Expect.Query, mode: 'suppress', done: (ok) => ok || conn.prepared.delete(entry.serverName) })
      conn.write(encodeQuery(entry.prepareSql))
    }
    conn.tracker.push({ expect: Expect.Query, mode: 'forward', done: this.completion(null, conn), sawError: (body) => forgetIfReplanRefused(conn, entry.serverName, body, this.services.serverConnections) })
    await this.send(conn, encodeQuery(replaceIdentifierAt(sql, e.nameLocation, entry.serverName)))
  }

  /**
   * SQL DEALLOCATE through the extended protocol (psycopg sends it when it empties its statement cache): it
   * forgets the client's names as in a simple query, and never reaches a server, where it would drop the
   * statements that other clients share there. SQL PREPARE and EXECUTE are only followed in simple queries:
   * refused here rather than run on a server connection under the client's own name.
   */
  private bindSqlPrepared(portal: string, plan: StatementPlan, e: SqlPreparedEffect): void {
    if (e.kind !== 'deallocate' || plan.multiStatement) {
      return this.group.refuse(new PgError(SqlState.FEATURE_NOT_SUPPORTED, `SQL ${plan.commandTag || e.kind.toUpperCase()} through the extended protocol is not supported`, {
        hint: 'Send it as a simple query, or prepare the statement with the protocol (Parse) instead.',
      }))
    }
    if (e.name !== null && !this.statements.has(e.name)) return this.group.refuse(missingStatement(e.name))
    this.localPortals.set(portal, () => {
      if (e.name === null) this.statements.deallocateAll()
      else this.statements.delete(e.name)
      return plan.commandTag
    })
    this.group.add({ kind: 'synth', bytes: BIND_COMPLETE })
  }

  /** A statement the proxy answered itself: its tag and ReadyForQuery, then the server goes back if idle. */
  private answerLocally(tag: string): void {
    this.emitAfterPending(Buffer.concat([commandComplete(tag), readyForQuery(this.tx.status)]))
    const a = this.attached
    if (a && a.conn.tracker.idle && a.conn.tracker.status === 'I' && !this.sessionMode && !this.pinnedBy) this.detach()
  }

  /** A refused simple query: the client gets the error and ReadyForQuery, and an open transaction aborts. */
  private async refuseQuery(err: PgError): Promise<void> {
    this.services.metrics.error(err.code)
    const a = this.attached
    if (a && a.conn.tracker.status !== 'I') {
      // Make the server abort the transaction, so that a later COMMIT cannot commit half of it.
      a.conn.tracker.push({ expect: Expect.Query, mode: 'forward', replaceError: errorResponse(err) })
      await this.send(a.conn, encodeQuery('pgshard refused this statement'))
      return
    }
    if (this.tx.pendingBegin !== null) this.tx.status = 'E'
    this.emitAfterPending(Buffer.concat([errorResponse(err), readyForQuery(this.tx.status)]))
  }

  // ---------------------------------------------------------------- extended protocol

  private onParse(frame: Frame): Promise<void> | void {
    const p = decodeParse(frame.body)
    if (this.replaying && p.name !== '') this.statements.delete(p.name)
    if (p.name !== '' && this.statements.has(p.name)) return this.group.refuse(duplicateStatement(p.name))
    const analyzed = this.routing.analyze(p.text)
    const stmt: ClientStatement = {
      text: p.text,
      paramTypes: p.paramTypes,
      tail: p.tail,
      serverName: p.name === '' ? '' : this.services.statementNames.nameFor(p.text, p.paramTypes),
      plan: analyzed.plan,
      literals: analyzed.literals,
      sources: analyzed.sources ?? [],
      firstParam: analyzed.firstParam,
    }
    if (!this.statements.set(p.name, stmt)) return this.group.refuse(tooManyStatements())
    const name = p.name
    const forget = (ok: boolean) => {
      if (!ok && this.statements.get(name) === stmt) this.statements.delete(name)
    }
    return this.group.add({
      kind: 'server',
      needsServer: false,
      // A group that only prepares (Parse, Sync) is acknowledged without borrowing a server: the statement is
      // prepared on whichever server first executes it. The real grammar accepted it; errors the server would
      // find (an unknown table) surface at that first execution.
      synthWithoutServer: stmt.plan ? PARSE_COMPLETE : undefined,
      send: (conn) => {
        if (name === '') {
          conn.unnamedOwner = stmt
          conn.tracker.push({ expect: Expect.Parse, mode: 'forward', done: forget })
          const tail = conn.parseTail(stmt.tail)
          conn.write(tail === stmt.tail ? frame.raw : renameParse('', tail))
          return
        }
        if (holdsPrepared(conn, stmt.serverName)) {
          conn.tracker.push({ expect: Expect.Parse, mode: 'synth', bytes: PARSE_COMPLETE })
          return
        }
        conn.tracker.push({
          expect: Expect.Parse,
          mode: 'forward',
          done: (ok) => {
            if (!ok) conn.prepared.delete(stmt.serverName)
            forget(ok)
          },
        })
        conn.write(renameParse(stmt.serverName, conn.parseTail(stmt.tail)))
      },
    })
  }

  private async onBind(frame: Frame): Promise<void> {
    const b = decodeBind(frame.body)
    if (this.suspended.size > 0) await this.endSuspended((portal) => portal === b.portal)
    if (this.boundPortals.size > 0) this.boundPortals.delete(b.portal)
    const stmt = this.statements.get(b.statement)
    if (!stmt) return this.group.refuse(this.noStatement(b.statement, 'Bind'))
    this.stats.queries++
    const sqlPrepared = stmt.plan?.session.find(isSqlPrepared)
    if (sqlPrepared) return this.bindSqlPrepared(b.portal, stmt.plan!, sqlPrepared)
    // postgres.js's sql.listen() sends its LISTEN so: served by the hub too when nothing of the group is on a server.
    const local = stmt.plan && ((!this.group.conn && this.local.listen(stmt.plan)) || this.local.statement(stmt.plan, stmt.text))
    if (local) {
      this.localPortals.set(b.portal, local)
      return this.group.add({ kind: 'synth', bytes: BIND_COMPLETE })
    }
    this.localPortals.delete(b.portal)
    // A COMMIT across shards runs at its Execute, from the proxy. After other statements of its pipeline
    // (psycopg's commit() in pipeline mode), what ran before it ends on its server first, with a Sync of the
    // proxy's own (which ends no transaction); if that failed, the COMMIT is skipped as a server would skip it.
    if (stmt.plan && !this.multi && this.spanning.commits(stmt.plan)) {
      if (this.group.bound && !(await this.group.endPart((ok) => this.settlePortals(ok)))) {
        this.tx.status = 'E'
        return
      }
      this.commitPortal = { name: b.portal, plan: stmt.plan }
      return this.group.add({ kind: 'synth', bytes: BIND_COMPLETE })
    }
    const analyzed: Analyzed = { plan: stmt.plan, literals: stmt.literals, sources: stmt.sources, firstParam: stmt.firstParam, text: stmt.text }
    this.tx.current = stmt.text
    // Another statement after one on several shards (pgjdbc's rewritten batch): the pipeline becomes a transaction.
    const pending = this.multi
    if (pending && pending.shape.execute && (!('role' in pending.route) || pending.route.role === 'primary') && stmt.plan?.kind !== 'transaction' && this.mayBecomeTransaction()) {
      this.tx.holdImplicitBegin()
      if (!(await this.runMultiNow())) return
    }
    const param = (n: number) => bindParam(stmt, b, n)
    let route = this.routing.route(analyzed, param)
    if (route.kind === 'error' && route.catalog && (await this.services.catalogAfterDdl())) route = this.routing.route(analyzed, param)
    // The subqueries' reads would not see the statements of the pipeline before this one, still in the implicit
    // transaction of their Sync; a Parse or Describe before it (postgres.js) ends on its server first.
    if (route.kind === 'evaluate' && this.group.conn !== null) {
      if (this.group.bound) return this.group.refuse(afterPipelinedStatements(route.reason))
      if (!(await this.group.endPart((ok) => this.settlePortals(ok)))) {
        this.tx.status = 'E'
        return
      }
    }
    if (route.kind === 'evaluate' || route.kind === 'locate') {
      try {
        if (route.kind === 'evaluate') return this.bindInstead(frame, b, stmt, await this.answers.written(route, analyzed, bindStatement(stmt, b)))
        route = await this.locatedRoute(route, analyzed, param, bindStatement(stmt, b))
      } catch (err) {
        return this.group.refuse(asStatementError(err))
      }
    }
    if (route.kind === 'keys') return this.bindWithMadeKeys(frame, b, analyzed, stmt, route)
    if (route.kind === 'draw') {
      try {
        route = await this.keys.drawForClient(route)
      } catch (err) {
        return this.group.refuse(asStatementError(err))
      }
    }
    if (route.kind === 'drawn') return this.bindInstead(frame, b, stmt, drawnValueQuery(route, b.params.length))
    return this.bindRouted(frame, b, analyzed, stmt, route)
  }

  /** A Bind of an INSERT that leaves out values pgshard makes: the INSERT with them written in runs instead. */
  private async bindWithMadeKeys(frame: Frame, b: BindMessage, analyzed: Analyzed, stmt: ClientStatement, route: KeysRoute): Promise<void> {
    let keyed: string
    try {
      keyed = await this.keys.insertWithMadeKeys(route, analyzed)
    } catch (err) {
      return this.group.refuse(asStatementError(err))
    }
    return this.bindInstead(frame, b, stmt, keyed)
  }

  /**
   * A Bind that runs `text` in place of the client's statement (an INSERT with the keys pgshard drew written in,
   * the answer to lastval() with one, subqueries' answers): prepared on the server as the unnamed statement, the client's parameters
   * bound to it unchanged.
   */
  private bindInstead(frame: Frame, b: BindMessage, stmt: ClientStatement, text: string): Promise<void> | void {
    const a = this.routing.analyze(text)
    // A parameter only a subquery read first used is in no text now: given a type, Postgres need not infer one.
    const used = usedParams(text)
    const paramTypes = b.params.map((_, i) => (used.has(i + 1) || stmt.paramTypes[i] ? (stmt.paramTypes[i] ?? 0) : paramFormat(b.paramFormats, i) === 1 ? TypeOid.bytea : TypeOid.text))
    const keyed: ClientStatement = {
      text,
      paramTypes,
      tail: parseTail(text, paramTypes),
      serverName: '',
      plan: a.plan,
      literals: a.literals,
      sources: a.sources ?? [],
      firstParam: a.firstParam,
    }
    const analyzedKeyed: Analyzed = { plan: a.plan, literals: a.literals, sources: a.sources, firstParam: a.firstParam, text: a.text }
    const param = (n: number) => bindParam(keyed, b, n)
    const routed = this.routing.route(analyzedKeyed, param)
    // Subqueries' answers written in, a write without its key: its rows are found first.
    if (routed.kind === 'locate') {
      return this.locatedRoute(routed, analyzedKeyed, param, bindStatement(keyed, b)).then(
        (located) => this.bindWritten(frame, b, analyzedKeyed, keyed, located),
        (err: unknown) => this.group.refuse(asStatementError(err)),
      )
    }
    return this.bindWritten(frame, b, analyzedKeyed, keyed, routed)
  }

  private bindWritten(frame: Frame, b: BindMessage, analyzed: Analyzed, written: ClientStatement, routed: SessionRoute): Promise<void> | void {
    // A second column pgshard makes (a drawn id, then the key): written in the same way.
    if (routed.kind === 'keys') return this.bindWithMadeKeys(frame, b, analyzed, written, routed)
    if (routed.kind === 'drawn' || routed.kind === 'draw' || routed.kind === 'locate' || routed.kind === 'evaluate') return this.group.refuse(new PgError(SqlState.INTERNAL_ERROR, 'a statement pgshard wrote in place of the client\'s needs rewriting again'))
    return this.bindRouted(frame, b, analyzed, written, routed)
  }

  /** The route of a write (or locking read) without its key, once the shards that hold its rows are found. */
  private async locatedRoute(
    route: LocateRoute,
    analyzed: Analyzed,
    param: (n: number) => BoundParam | undefined,
    whole: ShardStatement,
  ): Promise<Exclude<SessionRoute, LocateRoute | EvaluateRoute>> {
    const shards = await this.keys.located(route, analyzed, whole)
    let located = this.routing.route(analyzed, param, shards)
    // A table made moments ago (a migration, then a bulk UPDATE): its unique indexes are read now rather than refused.
    if (located.kind === 'error' && located.catalog && (await this.services.catalogAfterDdl())) located = this.routing.route(analyzed, param, shards)
    if (located.kind === 'locate' || located.kind === 'evaluate') throw new PgError(SqlState.INTERNAL_ERROR, 'a write whose rows pgshard found still needs them found')
    return located
  }

  /** A Bind whose statement is routed: to one shard's server, or held to run on several at its Execute. */
  private async bindRouted(frame: Frame, b: BindMessage, analyzed: Analyzed, stmt: ClientStatement, route: Exclude<SessionRoute, KeysRoute | LocateRoute | EvaluateRoute | DrawnValueRoute | SequenceDrawRoute>): Promise<void> {
    if (route.kind === 'error') return this.group.refuse(routeError(route))
    if (this.multi) return this.group.refuse(notAloneBetweenSyncs(this.sessionMode))
    if (route.kind !== 'shard') {
      if (this.group.conn && !this.group.leaveServer()) {
        const upgrade = this.group.bound && !this.mayJoinShards && this.mayBecomeTransaction() && this.attached?.placement.role === 'primary'
        // Held on the server of a transaction (or pinned session) it cannot leave: the reason is that, not the Syncs.
        const held = this.group.bound ? null : this.notInThisSession(route, this.inTransaction)
        if (held) return this.group.refuse(held)
        if (!this.group.bound || (!this.mayJoinShards && !upgrade))
          return this.group.refuse(notAloneBetweenSyncs(this.sessionMode))
        // In a transaction across shards (or a pipeline becoming one), what ran so far ends on its shard first.
        if (upgrade) {
          if (!(await this.beginImplicitTransaction(this.group.conn))) return
        } else if (!(await this.group.endPart((ok) => this.settlePortals(ok)))) {
          this.tx.status = 'E'
          return
        }
      }
      this.multi = { route, analyzed, stmt, bind: b, shape: { describe: false, execute: false } }
      return this.group.add({ kind: 'synth', bytes: BIND_COMPLETE })
    }
    if (route.role !== 'replica') this.notRetryable()
    if (this.tx.implicit && stmt.plan?.kind === 'transaction')
      return this.group.refuse(new PgError(SqlState.FEATURE_NOT_SUPPORTED, `${stmt.plan.commandTag} inside a pipeline that runs on several shards outside a transaction is not supported`, { hint: 'Begin the transaction before the pipeline, or send a Sync first.' }))
    // postgres.js, pgjdbc and psycopg send their savepoints this way: they must reach every shard as in a Query.
    // A set_config(…, true) query replays on other shards as SET LOCAL with the bound values.
    const replay = stmt.plan && setsLocally(stmt.plan) ? localSettings(boundPlan(stmt, b)) : stmt.text
    if (stmt.plan && replay !== null && this.tx.pendingBegin !== null && setsLocally(stmt.plan)) this.tx.follow(stmt.plan, replay)
    if (stmt.plan && replay !== null && this.shapeTransaction(stmt.plan, replay)) await this.spanning.runAside(replay)
    let conn = this.group.conn
    if (conn && this.attached && this.attached.placement.shard !== route.shard) {
      // In a transaction that may go on to other shards, a pipeline may too: what ran so far ends there first.
      if (this.group.bound && this.mayJoinShards) {
        if (!(await this.group.endPart((ok) => this.settlePortals(ok)))) {
          this.tx.status = 'E'
          return
        }
      } else if (this.group.bound && stmt.plan?.kind !== 'transaction' && this.mayBecomeTransaction() && this.attached?.placement.role === 'primary') {
        if (!(await this.beginImplicitTransaction(conn))) return
      } else if (!this.group.leaveServer())
        return this.group.refuse(
          // Not bound yet: what holds the group on its server is the transaction (or a pinned session), not the Syncs.
          this.group.bound
            ? new PgError(SqlState.FEATURE_NOT_SUPPORTED, `statements up to one Sync run on one shard; this one needs another shard than the group's first`, {
                hint: `Send a Sync between statements for different shards${pipelineHint(this.sessionMode)}`,
              })
            : this.pinnedElsewhere(this.attached),
        )
      conn = null
    }
    if (!conn) {
      conn = this.connNow(route.shard, route.role) ?? (await this.connFor(route.shard, route.role))
      this.group.conn = conn
    }
    if (b.portal !== '' && this.mayJoinShards) this.portalShards.set(b.portal, { shard: route.shard, role: route.role })
    // What the group held back (its Parse, a Describe) goes first, in the order the client sent it.
    this.group.flushHeld(conn)
    ensurePrepared(conn, stmt)
    this.group.bound = true
    // The statement is done when its Execute is: metrics and session effects wait for that.
    const completion = this.completion(boundPlan(stmt, b), conn)
    this.portalCompletion.set(b.portal, completion)
    conn.tracker.push({
      expect: Expect.Bind,
      mode: 'forward',
      done: (ok) => ok || this.failPortal(b.portal, completion),
      sawError: (body) => forgetIfReplanRefused(conn, stmt.serverName, body, this.services.serverConnections),
    })
    await this.send(conn, stmt.serverName === b.statement ? frame.raw : renameBind(frame.body, b, stmt.serverName))
  }

  /** At Sync: statements bound but never executed are over too. */
  private settlePortals(ok: boolean): void {
    for (const done of this.portalCompletion.values()) done(ok)
    this.portalCompletion.clear()
  }

  /** A Bind that failed: its statement is over (its Execute will be skipped by the server). */
  private failPortal(portal: string, completion: (ok: boolean) => void): void {
    if (this.portalCompletion.get(portal) === completion) this.portalCompletion.delete(portal)
    completion(false)
  }

  private onDescribe(frame: Frame): Promise<void> | void {
    const d = decodeTarget(frame.body, 'Describe')
    if (d.kind === 'P') {
      if (this.localPortals.has(d.name) || d.name === this.commitPortal?.name) return this.group.add({ kind: 'synth', bytes: NO_DATA })
      // A SQL cursor across shards described as a portal (psycopg does so after its DECLARE).
      const cursorRows = this.shardCursors.description(d.name)
      if (cursorRows) return this.group.add({ kind: 'synth', bytes: cursorRows })
      if (this.multi && this.multi.bind.portal === d.name) {
        this.multi.shape.describe = true
        return
      }
      return this.addForPortal(d.name, {
        kind: 'server',
        needsServer: true,
        portal: true,
        send: (conn) => {
          conn.tracker.push({ expect: Expect.DescribePortal, mode: 'forward' })
          conn.write(frame.raw)
        },
      })
    }
    const stmt = this.statements.get(d.name)
    if (!stmt) return this.group.refuse(this.noStatement(d.name, 'Describe'))
    return this.group.add({
      kind: 'server',
      needsServer: true,
      send: (conn) => {
        ensurePrepared(conn, stmt)
        conn.tracker.push({ expect: Expect.DescribeStatement, mode: 'forward' })
        conn.write(stmt.serverName === '' ? frame.raw : encodeTarget('Describe', 'S', stmt.serverName))
      },
    })
  }

  private onExecute(frame: Frame): Promise<void> | void {
    const { portal, maxRows } = decodeExecute(frame.body)
    const local = this.localPortals.get(portal)
    if (local) {
      const tag = local()
      if (typeof tag === 'string') return this.group.add({ kind: 'synth', bytes: commandComplete(tag) })
      return tag.then(
        (t) => this.group.add({ kind: 'synth', bytes: commandComplete(t) }),
        (err: PgError) => this.group.refuse(err),
      )
    }
    const commit = this.commitPortal
    if (commit && portal === commit.name) {
      this.commitPortal = null
      return this.commitInGroup(commit.plan)
    }
    const bound = this.multi ? undefined : this.boundPortals.get(portal)
    if (bound) {
      this.boundPortals.delete(portal)
      this.multi = bound
    }
    if (this.multi?.bind.portal === portal && this.multi.shape.execute && !this.mayJoinShards) {
      // A second Execute of it before any Flush or Sync: the first one's rows go first.
      return this.runMultiAtFlush().then(() => (this.group.skipToSync ? undefined : this.onExecute(frame)))
    }
    if (this.multi && this.multi.bind.portal === portal) {
      // pgjdbc asks for one row of the statements whose results it ignores (a batch): a write without
      // RETURNING answers none, so the limit does not matter. A read across shards gives the first rows
      // (asyncpg's fetchval and fetchrow, pgjdbc's setMaxRows); a write's RETURNING rows cannot be cut so.
      const plan = this.multi.analyzed.plan
      if (maxRows > 0 && this.multi.route.kind === 'scatter') this.multi.shape.maxRows = maxRows
      else if (maxRows > 0 && (plan === null || plan.kind === 'select' || plan.returning === true))
        return this.group.refuse(new PgError(SqlState.FEATURE_NOT_SUPPORTED, 'fetching part of the rows a write across shards returns (Execute with a row limit) is not supported', { hint: 'Fetch the whole result, or pin the key to one shard.' }))
      this.multi.shape.execute = true
      if (this.mayJoinShards) return this.runMultiNow().then(() => undefined)
      return
    }
    const suspended = this.suspended.get(portal)
    // Its rows go to the client now: nothing of the group may still be waiting for a server's answer.
    if (suspended && this.group.held.length === 0 && (this.group.conn?.tracker.idle ?? true)) {
      this.suspended.delete(portal)
      return this.lease.whenIdle().then(() => suspended.scatter.more(maxRows)).then((ok) => {
        if (!ok) this.group.skipToSync = true
      })
    }
    return this.addForPortal(portal, {
      kind: 'server',
      needsServer: true,
      portal: true,
      send: (conn) => {
        const done = this.portalCompletion.get(portal)
        this.portalCompletion.delete(portal)
        conn.tracker.push({ expect: Expect.Execute, mode: 'forward', done })
        conn.write(frame.raw)
      },
    })
  }

  /**
   * A COMMIT across shards at its Execute. What its group sent to a server before it (pgjdbc closes its finished
   * portal there) ends first with a Sync of the proxy's own, which ends no transaction: without it the server
   * would keep those replies until the client's Sync. If that part failed, the COMMIT is skipped as a server
   * skips the rest of a failed group, and the transaction is aborted.
   */
  private async commitInGroup(plan: StatementPlan): Promise<void> {
    if (this.group.conn && !(await this.group.endPart((ok) => this.settlePortals(ok)))) {
      this.tx.status = 'E'
      return
    }
    const outcome = await this.endAcrossShards(plan)
    if (outcome.outcome === 'committed') this.group.add({ kind: 'synth', bytes: outcome.reply })
    else this.group.fail(outcome.reply)
  }

  private onClose(frame: Frame): Promise<void> | void {
    const c = decodeTarget(frame.body, 'Close')
    if (c.kind === 'S') {
      // The server-side statement is shared with other clients and stays; only this client's name goes.
      this.statements.delete(c.name)
      return this.group.add({ kind: 'synth', bytes: CLOSE_COMPLETE })
    }
    if (this.suspended.has(c.name)) return this.endSuspended((portal) => portal === c.name).then(() => this.group.add({ kind: 'synth', bytes: CLOSE_COMPLETE }))
    if (this.boundPortals.delete(c.name)) return this.group.add({ kind: 'synth', bytes: CLOSE_COMPLETE })
    if (this.multi?.bind.portal === c.name) {
      // Executed already (pgjdbc closes its portal before the Sync): answered after the statement's rows.
      if (this.multi.shape.execute) {
        this.multi.closed = true
        return
      }
      this.multi = null
    }
    // Closing a portal that cannot exist (no server holds anything for this client) is not an error.
    if (c.name === this.commitPortal?.name) this.commitPortal = null
    if (this.localPortals.delete(c.name) || !(this.group.conn ?? this.attached))
      return this.group.add({ kind: 'synth', bytes: CLOSE_COMPLETE })
    const closed = this.addForPortal(c.name, {
      kind: 'server',
      needsServer: true,
      portal: true,
      send: (conn) => {
        conn.tracker.push({ expect: Expect.Close, mode: 'forward' })
        conn.write(frame.raw)
      },
    })
    this.portalShards.delete(c.name)
    return closed
  }

  /**
   * A message for a portal bound earlier goes where the portal lives. In a transaction across shards that is
   * the connection of the shard where it was bound, which may wait aside by now (pgjdbc reads with a fetch size
   * while it writes to another shard): that connection is taken back first, and serves the group.
   */
  private addForPortal(portal: string, item: Held): Promise<void> | void {
    const home = this.portalShards.get(portal)
    if (!home || this.attached?.placement.shard === home.shard || !this.lease.inTransaction(home.shard)) return this.group.add(item)
    return this.toPortalShard(home).then((ok) => {
      if (ok) this.group.add(item)
    })
  }

  /** The group goes on on the shard of a portal: what it sent elsewhere ends there first. False when that failed. */
  private async toPortalShard(home: { shard: number; role: Role }): Promise<boolean> {
    if (this.group.bound) {
      if (!(await this.group.endPart((ok) => this.settlePortals(ok)))) {
        this.tx.status = 'E'
        return false
      }
    } else this.group.leaveServer()
    this.group.conn = await this.spanning.join(home.shard, home.role)
    return true
  }

  private async onSync(): Promise<void> {
    this.commitPortal = null
    if (this.suspended.size > 0) await this.endSuspended((_, s) => !s.inTx)
    if (this.tx.implicit) return this.endImplicitTransaction(true)
    if (this.group.skipToSync) {
      this.group.end()
      this.multi = null
      this.emitAfterPending(readyForQuery(this.tx.status))
      return
    }
    const multi = this.multi
    // Bound, not executed, in a transaction block: the portal outlives the Sync, and runs at its Execute.
    if (multi && !multi.shape.execute && !multi.shape.describe && this.tx.status === 'T' && this.mayJoinShards && multi.route.kind === 'scatter') {
      this.multi = null
      this.boundPortals.set(multi.bind.portal, multi)
    } else if (multi) {
      this.multi = null
      // What the group sent to a server before its Bind (postgres.js's Parse and Describe) ends there first.
      if (await this.group.server()) this.group.leaveServer()
      this.group.end()
      this.localPortals.clear()
      const outcome = await this.runMultiShard(multi.route, multi.analyzed, bindStatement(multi.stmt, multi.bind), multi.shape, (n) => bindParam(multi.stmt, multi.bind, n))
      if (outcome === 'copy') return
      if (multi.closed && outcome === 'done') this.emitAfterPending(CLOSE_COMPLETE)
      this.emitAfterPending(readyForQuery(this.tx.status))
      return
    }
    const conn = await this.group.server()
    this.group.end()
    this.localPortals.clear()
    if (conn) {
      conn.tracker.push({ expect: Expect.Sync, mode: 'forward', done: (ok) => this.settlePortals(ok) })
      await this.send(conn, SYNC)
      return
    }
    this.emitAfterPending(readyForQuery(this.tx.status))
  }

  private async onFlush(frame: Frame): Promise<void> {
    const conn = await this.group.server()
    if (conn) await this.send(conn, frame.raw)
  }

  private async onFunctionCall(frame: Frame): Promise<void> {
    const conn = this.currentServer() ?? (await this.connFor(this.routing.defaultShard(), 'primary'))
    conn.tracker.push({ expect: Expect.FunctionCall, mode: 'forward' })
    await this.send(conn, frame.raw)
  }

  /** A server that must serve the next message whatever its route: inside a transaction or a pinned session. */
  private currentServer(): ServerConnection | null {
    const a = this.attached
    if (!a) return null
    if (this.pinnedBy || a.conn.tracker.status !== 'I') return a.conn
    // A transaction whose BEGIN reached this server but whose ReadyForQuery is still on its way.
    if (this.tx.status !== 'I' && this.tx.pendingBegin === null) return a.conn
    return null
  }

  /**
   * Why a statement cannot be used: it does not exist (26000), or it is of the other kind. Postgres lets EXECUTE
   * run a Parse'd statement and Bind a PREPAREd one; pgshard keeps the two apart and says so (0A000).
   */
  private noStatement(name: string, use: 'EXECUTE' | 'Bind' | 'Describe'): PgError {
    return name === '' || !this.statements.has(name) ? missingStatement(name) : otherKindOfStatement(name, use)
  }

  // ---------------------------------------------------------------- several shards

  /**
   * Runs a statement that needs several shards, outside any server connection of the session. Not inside a
   * read-write transaction: its parts would commit apart from it. 'copy' when it opened a COPY FROM STDIN: the
   * client's data comes next, and ReadyForQuery when the COPY ends; 'failed' when the client got an error.
   */
  private async runMultiShard(
    route: MultiRoute,
    analyzed: Analyzed,
    stmt: ShardStatement,
    shape: ReplyShape,
    param: (n: number) => BoundParam | undefined,
    onSuspend?: (scatter: SuspendedScatter) => void,
  ): Promise<'done' | 'failed' | 'copy'> {
    const output = {
      emit: (bytes: Buffer) => {
        this.toClient(bytes)
        return this.client.writableLength < this.client.writableHighWaterMark
      },
      drained: () => new Promise<void>((resolve) => (this.client.writableNeedDrain ? this.client.once('drain', resolve) : resolve())),
    }
    if (route.kind === 'aside') return this.runAside(route, stmt, shape, output)
    const inTx = this.inTransaction
    const plan = analyzed.plan!
    // In a transaction that may span shards, the statement runs on the transaction's connections (the router
    // let through only what such a transaction may run: in a READ ONLY one without two-phase commit, reads and locks).
    const joins = inTx && this.mayJoinShards
    if (joins && this.tx.status === 'E') {
      this.emitError(new PgError(SqlState.IN_FAILED_SQL_TRANSACTION, 'current transaction is aborted, commands ignored until end of transaction block'))
      return 'failed'
    }
    const refusal = joins ? null : this.notInThisSession(route, inTx)
    if (refusal) {
      this.emitError(refusal)
      return 'failed'
    }
    if (this.attached && !inTx) {
      await this.lease.whenIdle()
      this.detach()
    }
    // count(*) of a subquery whose rows pgshard counts: the client gets the count of the subquery's merged rows.
    const counted = route.kind === 'scatter' ? route.plan.countRows : undefined
    const answer = counted ? countedRowsOutput(output, counted.name, stmt.bind?.resultFormats[0] === 1 ? 1 : 0) : output
    const executor = this.executorFor(answer)
    const restore = (sql: string) => restoreLiterals(sql, analyzed.firstParam, analyzed.sources ?? [])
    const shards = this.services.config().shards.map((_, i) => i)
    const onShards = async (): Promise<'done' | 'failed' | 'copy'> => {
      if (plan.kind === 'copy_from' && (route.kind === 'broadcast' || route.kind === 'copy_split')) {
        if (plan.multiStatement || stmt.bind)
          throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `COPY FROM STDIN on several shards must come as a simple query of its own (${route.reason})`)
        const split = route.kind === 'copy_split' ? route : null
        const made = split?.made
        const sql = made ? withCopyColumn(stmt.sql, made.column) : stmt.sql
        this.copyIn = await CopyInFanout.open(executor, output.emit, shards, sql, split && this.keys.copySplit(split), this.cancelSignal.signal)
        return this.copyIn !== null ? 'copy' : 'failed'
      }
      if (route.kind === 'copy_split' && route.source !== undefined) return (await this.insertSelect(route, restore(route.source), stmt, joins, output)) ? 'done' : 'failed'
      if (route.kind === 'cursor') {
        // The cursor's shards read on the transaction's connections, and its rows follow every reply in flight.
        await this.lease.whenIdle()
        return (await this.shardCursors.run(route, executor, shards, stmt, shape, restore, param)) ? 'done' : 'failed'
      }
      if (route.kind === 'copy_out') {
        await executor.copyOut(shards, route.role, stmt.sql, plan.copy?.header === true)
        return 'done'
      }
      if (route.kind === 'scatter' && route.plan.explain !== undefined) {
        // Its shards' text as the merge would run it: a subquery's rows written in later, or counted here, are not.
        if (route.plan.limited !== undefined || route.plan.countRows !== undefined) throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `EXPLAIN of a read that pgshard runs in more than one step (${route.reason})`, { hint: 'EXPLAIN the statement with its key pinned, or on one shard: /* pgshard: shard=NAME */' })
        const shardSql = restore(route.plan.shardSql)
        const explained = { ...stmt, sql: `${route.plan.explain} ${shardSql}` }
        return (await explainAcrossShards(executor, output, shards, route.role, explained, shardSql, route.plan, route.reason, shape)) ? 'done' : 'failed'
      }
      if (route.kind === 'scatter' && route.plan.lockingLimit && executor.inTransaction && shape.execute) {
        return (await lockingLimitRead(executor, shards, route.role, route.plan, stmt, restore, param, shape)) ? 'done' : 'failed'
      }
      if (route.kind === 'scatter') {
        return (await scatterRead(executor, shards, route.role, counted?.plan ?? route.plan, stmt, restore, param, shape, counted !== undefined, onSuspend)) ? 'done' : 'failed'
      }
      if (route.kind === 'broadcast' && route.explain) {
        return (await explainAcrossShards(executor, output, route.shards ?? shards, route.role, stmt, null, null, route.reason, shape)) ? 'done' : 'failed'
      }
      const transactional = plan.outsideTransactionBlock !== true
      // Each shard's server session now holds its own sequence values (lastval() answers for one only).
      if (joins && mayCallNextval(plan)) for (const s of route.kind === 'split' ? route.parts.map((p) => p.shard) : shards) this.tx.sequenceShards.add(s)
      if (route.kind === 'broadcast') {
        // Said ahead of the statement's answer, as a server's WARNING would be (DDL whose uniqueness holds per shard).
        if (shape.execute) for (const warning of route.warnings ?? []) output.emit(noticeResponse(warning, '01000', 'WARNING'))
        return (await executor.write((route.shards ?? shards).map((shard) => ({ shard, stmt })), route.tag, shape, transactional, route.role)) ? 'done' : 'failed'
      }
      if (route.kind === 'copy_split') throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `only COPY FROM STDIN splits its rows (${route.reason})`)
      const parts = route.parts.map((p) => ({ shard: p.shard, stmt: splitPart(restore(p.sql), stmt) }))
      return (await executor.write(parts, 'sum', shape, true, 'primary', route.rowShards)) ? 'done' : 'failed'
    }
    let outcome: 'done' | 'failed' | 'copy' = 'failed'
    try {
      outcome = await onShards()
      return outcome
    } catch (err) {
      // A FATAL one (a connection of the transaction was lost) ends the client, as in the pump.
      if (!(err instanceof PgError) || err.severity !== 'ERROR') throw err
      this.emitError(err)
      return 'failed'
    } finally {
      if (joins) {
        this.spanning.afterStatement()
        if (outcome === 'failed') this.failTransaction()
      }
    }
  }

  /**
   * An executor for a statement of the client on several shards, or read by pgshard first: on the transaction's
   * connections when it may span shards, else on connections of the pools.
   */
  private executorFor(out: ClientOutput, cancel: AbortSignal = this.cancelSignal.signal): MultiShardExecutor {
    const joins = this.inTransaction && this.mayJoinShards
    return new MultiShardExecutor(this.services, this.identity, this.settings, out, cancel, joins ? this.spanning : null, this.lease.holdsConnections, this.placeRead)
  }

  /**
   * INSERT … SELECT into a sharded table whose rows' keys come from its SELECT: the SELECT, as `COPY (query) TO
   * STDOUT`, is routed as the client's own would be (one shard, or every shard's rows), and its rows go to their
   * shards as a COPY into the table (InsertSelectCopy). In a transaction across shards they are read first.
   */
  private async insertSelect(route: Extract<MultiRoute, { kind: 'copy_split' }>, sql: string, stmt: ShardStatement, joins: boolean, output: ClientOutput): Promise<boolean> {
    // COPY (query) TO STDOUT takes no parameters: the client's are written into the query.
    sql = withParamsWritten(sql, stmt.bind)
    const read = this.routing.route(this.routing.analyze(sql), () => undefined)
    if (read.kind === 'error') throw routeError(read)
    if (read.kind !== 'shard' && read.kind !== 'copy_out') throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `pgshard cannot read the rows of this INSERT … SELECT: ${read.reason}`)
    const shards = this.services.config().shards.map((_, i) => i)
    const made = route.made
    const transaction = joins ? this.spanning : null
    const executor = (out: ClientOutput, holding: boolean) =>
      new MultiShardExecutor(this.services, this.identity, this.settings, out, this.cancelSignal.signal, transaction, holding, this.placeRead)
    return insertSelectRows({
      writer: (out) => executor(out, this.lease.holdsConnections),
      reader: (out) => executor(out, true),
      client: output,
      shards,
      copy: made ? withCopyColumn(copyInto(route.copy), made.column) : copyInto(route.copy),
      split: this.keys.copySplit(route),
      source: { sql, shards: read.kind === 'shard' ? [read.shard] : shards, role: 'primary' },
      readFirst: joins ? this.services.config().listen.max_message_size : null,
      cancel: this.cancelSignal.signal,
    })
  }

  /**
   * A catalog read outside the transaction whose BEGIN is held back, on a connection of the pool for the time
   * of it. Its error fails the client's transaction, as it would have inside it.
   */
  private async runAside(route: AsideRoute, stmt: ShardStatement, shape: ReplyShape, output: ClientOutput): Promise<'done' | 'failed'> {
    const executor = new MultiShardExecutor(this.services, this.identity, this.settings, output, this.cancelSignal.signal, null, this.lease.holdsConnections)
    if (await executor.write([{ shard: route.shard, stmt }], 'first', shape, false, 'primary')) return 'done'
    this.tx.status = 'E'
    return 'failed'
  }

  /**
   * A statement of the transaction failed in pgshard rather than on a server (a merge, a refusal at its Execute):
   * the transaction fails as a server's error fails it. The attached server's transaction is made to fail too
   * (an error of the proxy's own, unseen), so that statements until ROLLBACK get 25P02 from it and a COMMIT
   * rolls back, as the client was told.
   */
  private failTransaction(): void {
    this.tx.status = 'E'
    const a = this.attached
    if (this.closed || !a || a.conn.closed || a.conn.tracker.status !== 'T') return
    a.conn.tracker.push({ expect: Expect.Query, mode: 'suppress', replaceError: NOTHING })
    a.conn.write(encodeQuery('pgshard failed this transaction'))
  }

  /**
   * Why a statement on several shards cannot run in this session now (it does not join the transaction's shards):
   * inside a read-write transaction (a READ ONLY one may read every shard), or a pinned session.
   */
  private notInThisSession(route: MultiRoute, inTx: boolean): PgError | null {
    const read = route.kind === 'scatter' || route.kind === 'copy_out'
    if (!((inTx && !(read && this.tx.readOnly)) || this.pinnedBy)) return null
    const what = read ? 'a read from every shard' : 'a write to several shards'
    return new PgError(SqlState.FEATURE_NOT_SUPPORTED, `${what} cannot run inside ${this.pinnedBy ? `a session pinned by ${this.pinnedBy}` : 'a read-write transaction'}: ${route.reason}`, {
      hint: this.pinnedBy ? pinnedSessionHint(this.pinnedBy) : read ? 'Run it outside the transaction, in a READ ONLY transaction, or pin the key to one shard.' : 'Run it outside the transaction (it is all or nothing by itself), or pin the key to one shard.',
    })
  }

  /**
   * A client message while its COPY data goes to several shards: the COPY ends with CopyDone or CopyFail, or, as
   * on a server, with an error at any other message (Flush and Sync are ignored during COPY).
   */
  private feedCopy(copy: CopyInFanout, frame: Frame): Promise<void> | void {
    if (frame.type === FE.flush || frame.type === FE.sync) return
    if (frame.type === FE.terminate) return this.close()
    if (frame.type === FE.copyData && !copy.failed) {
      const wait = copy.send(frame.raw, frame.body)
      if (!copy.failed) return wait
    }
    if (frame.type !== FE.copyData && frame.type !== FE.copyDone && frame.type !== FE.copyFail)
      copy.abort(new PgError(SqlState.PROTOCOL_VIOLATION, `unexpected message type ${printable(frame.type)} during COPY from stdin`))
    this.copyIn = null
    return copy.finish(frame.type === FE.copyFail ? decodeCopyFail(frame.body) : null).then(() => {
      if (copy.inTransaction) this.spanning.afterStatement()
      this.emitAfterPending(readyForQuery(this.tx.status))
    })
  }

  private emitError(err: PgError): void {
    this.errorsSent++
    this.services.metrics.error(err.code)
    this.emitAfterPending(errorResponse(err))
  }

  // ---------------------------------------------------------------- server connections

  /**
   * The server for a statement when it is at hand without waiting: the attached connection if it fits, or an
   * idle one of the pool. Null when getting one means waiting (connFor then does the whole job).
   */
  private connNow(shard: number, wanted: Role): ServerConnection | null {
    const role = this.readYourWrites.roleFor(shard, wanted)
    const a = this.attached
    if (a) {
      const fits = a.placement.shard === shard && (a.placement.role === 'primary' || role === 'replica')
      if (!fits && !(this.currentServer() && a.placement.shard === shard)) return null
    }
    const conn = a ? a.conn : this.lease.tryTake(shard, role, this.pickOptions(shard, role))
    if (conn) this.startPendingBegin(conn)
    return conn
  }

  /** The transaction the client opened starts here, on the shard its first statement needs. */
  private startPendingBegin(conn: ServerConnection): void {
    const started = this.tx.start()
    if (!started) return
    conn.tracker.push({ expect: Expect.Query, mode: 'suppress' })
    conn.write(encodeQuery(started.begin))
    for (const { sql, plan } of started.following) {
      conn.tracker.push({
        expect: Expect.Query,
        mode: 'suppress',
        captureError: (body) => conn.tracker.carryError(body),
        done: (ok) => ok && plan.kind === 'transaction' && this.settingsUndo.onTransactionStatement(plan, conn),
      })
      conn.write(encodeQuery(sql))
    }
  }

  private async connFor(shard: number, role: Role): Promise<ServerConnection> {
    const conn = await this.serverFor(shard, role)
    this.startPendingBegin(conn)
    return conn
  }

  /**
   * A savepoint or SET LOCAL shapes the transaction for shards that join it later (SpanningTransaction.shape);
   * a ROLLBACK TO also ends the cursors across shards declared since its savepoint. True when connections aside
   * must run it too, as they must a CLOSE ALL (the transaction's cursors are on every shard it holds).
   */
  private shapeTransaction(plan: StatementPlan, sql: string): boolean {
    const depth = plan.tx === 'rollback_to' ? this.tx.opening.depthOf(plan.savepoint) : 0
    const aside = this.spanning.shape(plan, sql)
    if (depth > 0) this.shardCursors.rolledBackTo(depth)
    const closeAll = plan.cursor?.use === 'close' && plan.cursor.name === null && !plan.multiStatement
    return aside || (closeAll && this.lease.spansShards)
  }

  /** In a transaction: the session's status, not only the attached server's (a BEGIN sent in this group has no ReadyForQuery yet). */
  get inTransaction(): boolean {
    return this.tx.pendingBegin !== null || this.tx.status !== 'I' || (this.attached !== null && this.attached.conn.tracker.status !== 'I')
  }

  private get twoPhase(): boolean {
    return this.services.config().sharding.cross_shard_transactions === 'two_phase'
  }

  /**
   * A transaction (in transaction pooling, begun by a BEGIN pgshard held back) may go on to other shards: each
   * joins it at its first statement there and keeps its snapshot until COMMIT or ROLLBACK. Without two-phase
   * commit, the router lets a read-write one write only one of them.
   */
  get mayJoinShards(): boolean {
    return !this.sessionMode && !this.pinnedBy && this.tx.spans(this.twoPhase, this.settings.serializableByDefault)
  }

  /**
   * Outside a transaction, with two-phase commit on: a pipeline may become a transaction across shards (when what
   * it ran so far ran on a primary: a replica cannot take part in two-phase commit).
   */
  private mayBecomeTransaction(): boolean {
    return this.twoPhase && !this.sessionMode && !this.pinnedBy && this.tx.none
  }

  /**
   * A Flush after the Execute of a statement on several shards (pg-cursor reads so): the client waits for its
   * rows now, not at a Sync. After a failure the rest of the group is skipped up to Sync, as after a server's error.
   */
  private async runMultiAtFlush(): Promise<void> {
    const multi = this.multi!
    this.multi = null
    if (await this.group.server()) this.group.leaveServer()
    this.group.end()
    const portal = multi.bind.portal
    const outcome = await this.runMultiShard(multi.route, multi.analyzed, bindStatement(multi.stmt, multi.bind), multi.shape, (n) => bindParam(multi.stmt, multi.bind, n), (scatter) => {
      this.suspended.set(portal, { scatter, inTx: false })
    })
    if (outcome !== 'done') this.group.skipToSync = true
    else if (multi.closed) {
      await this.endSuspended((p) => p === portal)
      this.emitAfterPending(CLOSE_COMPLETE)
    }
  }

  /** Ends the suspended reads across shards that `which` picks (all by default): their portals are gone. */
  private async endSuspended(which: (portal: string, s: SuspendedPortal) => boolean = () => true): Promise<void> {
    if (this.suspended.size === 0) return
    const ending = [...this.suspended].filter(([portal, s]) => which(portal, s))
    if (ending.length === 0) return
    for (const [portal] of ending) this.suspended.delete(portal)
    // In a transaction the shards' portals are closed on its connections: nothing forwarded may be in flight there.
    await this.lease.whenIdle()
    await Promise.all(ending.map(([, s]) => s.scatter.close()))
  }

  /**
   * In a transaction that may span shards, a statement on several shards runs at its Execute, on the
   * transaction's connections, so that the pipeline goes on after it. False when it failed: the rest of the
   * group is skipped up to Sync, as after a server's error.
   */
  private async runMultiNow(): Promise<boolean> {
    const multi = this.multi!
    this.multi = null
    if (await this.group.server()) this.group.leaveServer()
    this.group.end()
    const errors = this.errorsSent
    const portal = multi.bind.portal
    const outcome = await this.runMultiShard(multi.route, multi.analyzed, bindStatement(multi.stmt, multi.bind), multi.shape, (n) => bindParam(multi.stmt, multi.bind, n), (scatter) => {
      this.suspended.set(portal, { scatter, inTx: true })
    })
    if (this.tx.status !== 'E' && this.errorsSent === errors && outcome !== 'failed') return true
    this.tx.status = 'E'
    this.group.skipToSync = true
    return false
  }

  /**
   * A pipeline outside a transaction (pgjdbc's executeBatch, psycopg's executemany) goes on to another shard.
   * Postgres runs a pipeline as one implicit transaction, all or nothing at its Sync; a BEGIN on the connection
   * it ran on so far turns that into a regular transaction (what ran stays in it, uncommitted), and the pipeline
   * goes on as a transaction across shards that ends at the client's Sync (endImplicitTransaction). False when
   * the part so far failed: the rest is skipped up to the Sync, as on one server.
   */
  private async beginImplicitTransaction(conn: ServerConnection): Promise<boolean> {
    conn.unnamedOwner = null
    let begun = false
    conn.tracker.push({ expect: Expect.Parse, mode: 'suppress' })
    conn.tracker.push({ expect: Expect.Bind, mode: 'suppress' })
    conn.tracker.push({ expect: Expect.Execute, mode: 'suppress', done: (ok) => (begun = ok) })
    conn.write(IMPLICIT_BEGIN)
    this.tx.beginImplicit()
    // An implicit transaction that failed ends at the Sync (status I, not E): the BEGIN's own answer tells.
    if ((await this.group.endPart((ok) => this.settlePortals(ok))) && begun) return true
    this.group.skipToSync = true
    this.tx.status = 'E'
    return false
  }

  /**
   * The end of a pipeline that became a transaction across shards, at the client's Sync (`sync`: answered with
   * ReadyForQuery) or a Query: committed on every shard with two-phase commit if every statement succeeded, else
   * rolled back everywhere, as one server ends an implicit transaction. A failed commit's error goes to the client.
   */
  private async endImplicitTransaction(sync: boolean): Promise<void> {
    const multi = this.multi
    this.multi = null
    let failed = this.group.skipToSync
    if (!failed && multi) {
      if (await this.group.server()) this.group.leaveServer()
      this.group.end()
      await this.runMultiShard(multi.route, multi.analyzed, bindStatement(multi.stmt, multi.bind), multi.shape, (n) => bindParam(multi.stmt, multi.bind, n))
    } else {
      const conn = await this.group.server()
      if (conn && !(await this.group.endPart((ok) => this.settlePortals(ok)))) failed = true
    }
    this.group.end()
    this.localPortals.clear()
    const parts = this.lease.transactionConnections()
    failed ||= this.tx.status === 'E' || parts.length === 0 || parts.some((c) => c.tracker.status === 'E')
    const out: Buffer[] = []
    if (failed) {
      await this.spanning.rollback()
      this.endTransaction(false)
    } else {
      const outcome = await this.endAcrossShards(this.routing.analyze('COMMIT').plan!)
      if (outcome.outcome !== 'committed') out.push(outcome.reply)
    }
    if (sync) out.push(readyForQuery('I'))
    if (out.length > 0) this.emitAfterPending(Buffer.concat(out))
  }

  /** For the detector of deadlocks across shards: the connections of a transaction that holds several shards. */
  spanningConnections(): ServerConnection[] {
    return this.spanning.connections()
  }

  /** Chosen to break a deadlock across shards (SpanningTransaction.breakDeadlock). */
  breakDeadlock(conn: ServerConnection, detail: string): void {
    this.spanning.breakDeadlock(conn, detail)
  }

  /**
   * Ends a read-write transaction on several shards all or nothing (TwoPhaseCommit), then gives every
   * connection back; what the client gets is COMMIT, or the error that rolled it back everywhere.
   */
  private async endAcrossShards(plan: StatementPlan): Promise<CommitOutcome> {
    this.group.conn = null
    const outcome = await this.spanning.commit(plan)
    this.tx.writesDone()
    this.unit = null
    this.avoid = undefined
    this.endTransaction(outcome.outcome === 'committed')
    return outcome
  }

  /**
   * A server connection for this shard and role: the one attached when it fits, else (once every reply of the
   * attached one has arrived) a fresh one from the pool, brought to this client's session state.
   */
  private async serverFor(shard: number, wanted: Role): Promise<ServerConnection> {
    const role = this.readYourWrites.roleFor(shard, wanted)
    const fits = (a: Attachment) => a.placement.shard === shard && (a.placement.role === 'primary' || role === 'replica')
    if (this.attached) {
      if (fits(this.attached) || (this.currentServer() && this.attached.placement.shard === shard)) return this.attached.conn
      await this.lease.whenIdle()
      const a = this.attached
      if (a && (a.conn.tracker.status !== 'I' || this.pinnedBy)) {
        if (a.placement.shard === shard) return a.conn
        // An aborted transaction answers on the shard where it failed: 25P02, as a server would.
        if (this.mayJoinShards) return this.tx.status === 'E' ? a.conn : this.spanning.join(shard, role)
        throw this.pinnedElsewhere(a)
      }
      this.detach()
    }
    return this.lease.take(shard, role, this.pickOptions(shard, role), this.cancelSignal.signal, () => this.closed)
  }

  /** A statement for another shard than the one the client's transaction (or pinned session) is held on. */
  private pinnedElsewhere(a: Attachment): PgError {
    return new PgError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `this ${this.pinnedBy ? `session is pinned to shard ${a.placement.shardName} by ${this.pinnedBy}` : `transaction is pinned to shard ${a.placement.shardName} by its first statement${startedByNote(this.tx.startedBy)}`}; the statement needs another shard`,
      {
        hint: this.pinnedBy
          ? pinnedSessionHint(this.pinnedBy)
          : this.sessionMode
            ? 'Keep each transaction on one shard: in session pooling a transaction stays on the shard of its first statement (transaction pooling lets a transaction read any shard, and with sharding.cross_shard_transactions: two_phase write several).'
            : 'Keep each transaction on one shard, or set sharding.cross_shard_transactions: two_phase (docs/routing.md).',
      },
    )
  }

  /** A shard's node for a statement run on several shards: read-your-writes and the avoided node apply as to one. */
  private readonly placeRead = (shard: number, wanted: Role): Placement => {
    const role = this.readYourWrites.roleFor(shard, wanted)
    return this.services.place(shard, role, this.identity, this.pickOptions(shard, role))
  }

  /** Read-your-writes: a replica must have replayed this client's last write on the shard; a failed node is avoided. */
  private pickOptions(shard: number, role: Role): PickOptions {
    if (role !== 'replica' || !this.identity.readYourWrites) return { exclude: this.avoid }
    return { exclude: this.avoid, minLsn: this.readYourWrites.minLsn(shard) }
  }

  /** Gives the attached connection back (transaction pooling) or parks it (session pooling). */
  private detach(): void {
    if (!this.attached) return
    this.group.conn = null
    this.lease.release()
  }

  // ---------------------------------------------------------------- statements the proxy answers itself

  /**
   * A notification for a channel the client listens on (NotificationHub), after any reply it still waits for.
   * A client that stops reading them is ended before its backlog grows past a bound: memory stays bounded.
   */
  notify(message: Buffer): void {
    if (this.closed) return
    if (this.client.writableLength > NOTIFICATION_BACKLOG_LIMIT) {
      this.fatal(PgError.fatal(SqlState.PROGRAM_LIMIT_EXCEEDED, `more than ${NOTIFICATION_BACKLOG_LIMIT} bytes of notifications are waiting for this client to read them`, 'Read notifications as they come, or UNLISTEN channels the client does not follow.'))
      return
    }
    this.emitAfterPending(message)
  }

  /** LocalSession: a transaction whose BEGIN never reached a server ended (its COMMIT or ROLLBACK answered here). */
  endHeldTransaction(committed: boolean): void {
    this.endTransaction(committed)
  }

  /** LocalSession: the client began a transaction (its BEGIN answered here). */
  transactionBegun(): void {
    this.stats.transactions++
  }

  private endTransaction(committed: boolean): void {
    this.lease.endAside(committed ? 'COMMIT' : 'ROLLBACK')
    this.tx.end()
    this.portalShards.clear()
    // Its shards' portals ended with the transaction.
    for (const [portal, s] of this.suspended) if (s.inTx) this.suspended.delete(portal)
    this.boundPortals.clear()
    this.routing.endTransaction(committed)
    this.pins.transactionEnded(committed)
  }

  /** What happens when the server answered a statement: metrics, and the session state it changed. */
  private completion(plan: StatementPlan | null, conn: ServerConnection): (ok: boolean) => void {
    const started = performance.now()
    const placement = this.attached!.placement
    const effects = this.sessionEffects(plan, conn)
    const ends = plan?.kind === 'transaction' && (plan.tx === 'commit' || plan.tx === 'rollback') ? plan.tx : null
    const aborted = this.tx.status === 'E'
    const node = placement.node
    const reads = plan !== null && !plan.writes
    if (!reads && placement.role === 'primary') this.tx.wrote = true
    if (plan !== null && mayCallNextval(plan)) this.tx.sequenceShards.add(placement.shard)
    node.outstanding++
    // query_timeout: a statement still running then is cancelled on its server (the client gets 57014).
    const limit = this.services.config().pool.query_timeout
    const timer = limit > 0 ? setTimeout(() => this.services.cancel(placement.nodeName, conn), limit) : null
    return (ok) => {
      if (timer) clearTimeout(timer)
      if (ok && plan?.kind === 'transaction') this.settingsUndo.onTransactionStatement(plan, conn)
      node.outstanding--
      if (reads) node.reads++
      else node.writes++
      this.services.metrics.query(placement.shardName, placement.role, ok, (performance.now() - started) / 1000)
      if (ends) this.services.metrics.transaction(ends === 'commit' && ok && !aborted)
      // Read when ReadyForQuery closes the transaction; a COMMIT after an error rolls back.
      if (ends && ok) this.tx.committed = ends === 'commit' && this.tx.status !== 'E'
      effects?.(ok)
    }
  }

  /**
   * RESET, RESET ALL and DISCARD ALL between transactions leave the client's record before a server is chosen
   * (and again when the server confirms): a setting that servers refuse to take (a role dropped since SET ROLE)
   * must not stand in the way of the statement that resets it.
   */
  private resetAhead(plan: StatementPlan): void {
    if (plan.multiStatement || this.attached || this.tx.status !== 'I') return
    for (const e of plan.session) {
      if (e.kind === 'reset') this.settings.reset(e.name)
      else if (e.kind === 'reset_all' || e.kind === 'discard_all') this.settings.resetAll()
    }
  }

  /** Session state the statement changes, applied when the server says it succeeded. */
  private sessionEffects(plan: StatementPlan | null, conn: ServerConnection): ((ok: boolean) => void) | undefined {
    if (!plan) return undefined
    // CLOSE of a WITH HOLD cursor may end what pins the session.
    const closing = plan.cursor?.use === 'close' && this.pinnedBy !== null ? plan.cursor.name : undefined
    if (plan.session.length === 0 && closing === undefined) return undefined
    return (ok) => {
      // Several statements with a COMMIT or ROLLBACK among them, or failing part way: the server may keep some
      // of their settings and not others. The connection is reset before anyone else gets it.
      if (plan.multiStatement && (!ok || plan.multiStatementTx)) conn.dirty = true
      if (!ok) return
      if (closing !== undefined) this.pins.closeCursor(closing)
      // UNLISTEN (or DISCARD ALL, which includes UNLISTEN *) that went to a server ends the hub's listening too.
      for (const e of plan.session) {
        if (e.kind === 'unlisten') this.services.notifications.unlisten(this, e.channel)
        else if (e.kind === 'discard_all') this.services.notifications.unlisten(this, null)
        else if (this.tx.status !== 'I' && ((e.kind === 'set' && e.local && plan.kind !== 'set' && !setsLocally(plan)) || e.kind === 'unknown_set_config')) {
          this.tx.settingByFunction = e.kind === 'set' ? e.name : 'a setting'
        }
      }
      this.settingsUndo.beforeChange(conn)
      const outcome = applySessionEffects(plan.session, this.settings, conn)
      if (outcome.discardAll) {
        this.statements.clear()
        this.pins.clear()
        this.shardCursors.closeAll()
      }
      if (outcome.unlocksAdvisory) this.pins.release(ADVISORY_LOCK)
      if (this.sessionMode || (outcome.pinReason === null && !outcome.holdsCursor)) return
      // A pinned connection carries state no other client may inherit: reset before anyone else gets it.
      conn.dirty = true
      if (outcome.pinReason !== null) this.pins.add(outcome.pinReason)
      if (outcome.holdsCursor) this.pins.holdCursor(plan.cursor?.use === 'declare' ? plan.cursor.name : null, this.tx.status !== 'I')
    }
  }

  // ---------------------------------------------------------------- replies

  /** Bytes the proxy makes up, delivered after every reply the client is still waiting for. */
  private emitAfterPending(bytes: Buffer): void {
    const a = this.attached
    if (a && !a.conn.tracker.idle) {
      a.conn.tracker.push({ expect: Expect.Sync, mode: 'synth', bytes })
      return
    }
    this.toClient(bytes)
  }

  toClient(bytes: Buffer): void {
    if (this.oneByOne) this.oneByOne.write(bytes)
    else this.writeClient(bytes)
  }

  private writeClient(bytes: Buffer): void {
    if (this.closed) return
    this.stats.bytesOut += bytes.length
    this.services.metrics.clientBytes(0, bytes.length)
    if (!this.client.write(bytes)) this.lease.pauseAttached()
  }

  onReady(status: TxStatus, idle: boolean, forwarded: boolean): void {
    const a = this.attached
    if (!a) return
    // A connection joining the client's transaction answers the proxy's own statements outside it first: that
    // transaction is not over.
    if (status === 'I' && (forwarded || this.tx.status === 'I')) this.settingsUndo.onIdle()
    if (forwarded) {
      if (status === 'I' && this.tx.status !== 'I') this.endTransaction(this.tx.committed)
      else if (status !== 'I' && this.tx.status === 'I') this.stats.transactions++
      this.tx.status = status
    }
    if (status === 'I') this.tx.committed = true
    if (!idle) return
    this.lease.wakeIdleWaiters()
    if (status !== 'I') {
      this.armIdleInTxTimer()
      return
    }
    this.unit = null
    this.avoid = undefined
    if (this.tx.wrote && this.identity.readYourWrites && a.placement.role === 'primary') {
      this.tx.writesDone()
      this.readYourWrites.capture(a.conn, a.placement.shard)
      return
    }
    this.tx.writesDone()
    if (!this.sessionMode && !this.pinnedBy && this.group.held.length === 0 && this.group.conn === null) this.detach()
    if (this.draining && !this.running && this.atBoundary()) this.fatal(shutdownError())
  }

  /**
   * A reported parameter (TimeZone, application_name, DateStyle, …) changed on the attached connection while it
   * ran this client's request: by the client's SET, or inside a function or DO block pgshard cannot see into.
   * Recorded as the client's setting, so that it follows the client and no other client inherits it.
   */
  onParameterStatus(name: string, value: string): void {
    const conn = this.attached?.conn
    const key = name.toLowerCase()
    if (!conn || !REPORTED_SETTINGS.has(key)) return
    const sql = setConfigSql(name, value)
    if (this.settings.wanted.get(key) === sql && conn.settings.get(key) === sql) return
    this.settingsUndo.beforeChange(conn)
    this.settings.set(key, sql)
    conn.settings.set(key, sql)
  }

  onError(code: string, fatal: boolean, provoked: boolean): void {
    // Either way the server's transaction is aborted.
    this.settingsUndo.onError()
    // A provoked error is the proxy's own refusal, which counted itself.
    if (provoked) return
    this.services.metrics.error(code)
    if (fatal && this.attached) this.services.serverFailed(this.attached.placement.nodeName, new PgError(code, 'server sent FATAL'))
  }

  private armIdleInTxTimer(): void {
    const ms = this.services.config().pool.idle_in_transaction_timeout
    if (ms <= 0 || this.idleInTxTimer) return
    this.idleInTxTimer = setTimeout(() => {
      this.idleInTxTimer = null
      this.fatal(PgError.fatal(SqlState.IDLE_IN_TRANSACTION_TIMEOUT, `terminating connection due to idle-in-transaction timeout (${ms} ms)`))
    }, ms)
  }

  private clearIdleInTxTimer(): void {
    if (this.idleInTxTimer) {
      clearTimeout(this.idleInTxTimer)
      this.idleInTxTimer = null
    }
  }

  // ---------------------------------------------------------------- cancel and end

  /**
   * A CancelRequest carrying this session's key: cancel what its server is running now, and stop whatever waits
   * for a connection or runs on several shards. A cancel with nothing running does nothing, as on a server.
   */
  cancelRunning(): void {
    const a = this.attached
    if (a && !a.conn.tracker.idle) this.services.cancel(a.placement.nodeName, a.conn)
    this.cancelSignal.abort()
    this.cancelSignal = new AbortController()
  }

  /** Sends a FATAL error and disconnects (anything that is not a PgError becomes an internal error). */
  fatal(err: unknown): void {
    if (this.closed) return
    const e =
      err instanceof PgError
        ? err
        : new PgError(SqlState.INTERNAL_ERROR, `internal error in pgshard: ${err instanceof Error ? err.message : String(err)}`)
    this.client.end(errorResponse(e.severity === 'FATAL' ? e : PgError.fatal(e.code, e.message, e.options.hint)))
    this.close()
  }

  /**
   * The attached server connection broke. A read on a replica outside any transaction whose answer has not
   * started reaching the client runs again on another node; anything else ends the client (08006), as a
   * server crash would.
   */
  onServerClosed(err: Error | null): void {
    const a = this.lease.lost()
    if (!a) return
    this.group.conn = null
    this.services.serverFailed(a.placement.nodeName, err ?? new Error('server closed the connection'))
    const unit = this.unit
    if (unit?.frames && unit.bytesOut === this.stats.bytesOut && !this.closed) {
      this.unit = null
      this.group.held = []
      this.avoid = a.placement.nodeName
      this.replay.push(...unit.frames)
      this.lease.wakeIdleWaiters()
      void this.pump()
      return
    }
    this.fatal(PgError.fatal(SqlState.CONNECTION_FAILURE, `lost the connection to server ${a.placement.nodeName}${err ? `: ${err.message}` : ''}`))
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.clearIdleInTxTimer()
    this.oneByOne?.abandon()
    this.settlePortals(false)
    // A transaction's connections go back (rolled back) below: its shards' portals end there, untouched here.
    for (const [portal, s] of this.suspended) if (s.inTx) this.suspended.delete(portal)
    void this.endSuspended()
    void this.copyIn?.finish('the client disconnected')
    this.shardCursors.end()
    this.lease.releaseAll(this.pinnedBy !== null)
    this.client.destroy()
    this.services.onSessionEnd(this)
  }
}

/**
 * Parameters the server reports when they change that a client may set; the others it reports (server_version,
 * is_superuser, in_hot_standby, session_authorization …) follow from the server or from statements tracked
 * otherwise, and cannot be replayed with set_config.
 */
const REPORTED_SETTINGS = new Set([
  'application_name', 'client_encoding', 'datestyle', 'intervalstyle', 'timezone', 'standard_conforming_strings',
  'default_transaction_read_only', 'search_path', 'scram_iterations',
])

let nextSerial = 0

/**
 * A query of several statements that may run one by one: not with a hint (meant for them all), nor with a COPY
 * FROM STDIN (its data would come while the client waits for the statements before it).
 */
function runsOneByOne(plan: StatementPlan): boolean {
  return plan.statements !== undefined && plan.hints.length === 0 && !plan.statements.some((p) => p.kind === 'copy_from' && p.copy?.stdin === true)
}

/** The statements of a query's text, or undefined when the parser refuses it. */
function splitText(sql: string): string[] | undefined {
  try {
    return statementTexts(sql)
  } catch (err) {
    if (err instanceof SqlAnalysisError) return undefined
    throw err
  }
}

/** A statement that may call nextval(): an INSERT or MERGE (a column default), or a call of nextval or setval. */
function mayCallNextval(plan: StatementPlan): boolean {
  if (plan.kind === 'insert' || plan.kind === 'merge') return true
  return plan.functions.length > 0 && (plan.functions.includes('nextval') || plan.functions.includes('setval'))
}

/** How a pipeline across shards can run as one transaction, for the refusals that say it cannot. */
function pipelineHint(sessionMode: boolean): string {
  return sessionMode
    ? '; in session pooling a pipeline runs on one shard (transaction pooling with sharding.cross_shard_transactions: two_phase runs one across shards as one transaction).'
    : '; with sharding.cross_shard_transactions: two_phase, a pipeline whose statements run on primaries runs as one transaction across shards.'
}

function notAloneBetweenSyncs(sessionMode: boolean): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, 'a statement that runs on several shards must be alone between two Syncs', { hint: `Send a Sync before and after it${pipelineHint(sessionMode)}` })
}

/** Bytes a client may send ahead while its session waits, before the proxy stops reading it. */
const READ_AHEAD_LIMIT = 256 * 1024
/** Bytes of notifications a client may leave unread before it is ended (NotificationHub). */
const NOTIFICATION_BACKLOG_LIMIT = 16 * 1024 * 1024

/** A unit (a Query, or a group up to Sync) with more messages than this is not kept for a retry. */
const MAX_REPLAYED_FRAMES = 64

type MultiRoute = Exclude<SessionRoute, { kind: 'shard' } | { kind: 'error' } | { kind: 'keys' } | LocateRoute | EvaluateRoute | DrawnValueRoute | SequenceDrawRoute>

function afterPipelinedStatements(reason: string): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, `a statement with ${reason} cannot follow other statements of a pipeline before their Sync: its read would not see them`, {
    hint: 'Send a Sync before it (psycopg: pipeline.sync(), or run it outside the pipeline).',
  })
}

/** The SET LOCAL statements a set_config(…, true) query amounts to, or null when a value is not known. */
function localSettings(plan: StatementPlan | null): string | null {
  const texts = plan?.session.map((e) => (e.kind === 'set' && sessionEffectParams(e).length === 0 ? e.text : null)) ?? [null]
  return texts.every((t) => t !== null) ? texts.join('; ') : null
}
