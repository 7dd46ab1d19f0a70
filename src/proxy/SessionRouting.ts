import { SqlState } from '../protocol/PgError.js'
import { sequenceText, type BoundParam, type Role, type Route, type RoutingContext } from '../router/Route.js'
import type { CursorUse, StatementPlan } from '../router/StatementPlan.js'
import { searchPathOf } from '../router/SearchPath.js'
import { qualifiedNameParts, quoteIdent, quoteLiteral, sameSequence } from '../router/SqlQuoting.js'
import type { ClientTransaction } from './ClientTransaction.js'
import { RoutingHints } from './RoutingHints.js'
import type { ServerLease } from './ServerLease.js'
import { ABORTED_TRANSACTION, AFTER_DRAWN_KEYS, SEQUENCE_STATE_ACROSS_SHARDS, SEQUENCE_STATE_IN_SPANNING_WRITE, UNRELIABLE_SEQUENCE_STATE } from './SessionErrors.js'
import type { Analyzed, Identity, SessionServices } from './SessionServices.js'
import type { SessionSettings } from './SessionSettings.js'
import { innerParam } from './StatementParams.js'
import type { CursorRoute } from './CursorStatements.js'
import type { ShardCursors } from './ShardCursors.js'

/** What routing reads of the session that owns it. */
export interface RoutedSession {
  /** Why the session keeps its server connection, if it does. */
  readonly pinnedBy: string | null
  /** The transaction may go on to other shards. */
  readonly mayJoinShards: boolean
}

/** Where a SQL cursor was declared; `hold`: WITH HOLD, it outlives its transaction. */
type Home = { shard: number; role: Role; hold: boolean }

/**
 * lastval() or currval() right after keys pgshard drew for the client's INSERT: no server session called
 * nextval() for them, so pgshard answers with the key it drew (its last row's), as the server would have.
 */
export type DrawnValueRoute = { kind: 'drawn'; value: string; column: string; reason: string }

/**
 * nextval() alone in a transaction: drawn on the default shard's primary outside the transaction (as every
 * nextval outside one is), then answered as a DrawnValueRoute. On the transaction's own shard it would draw from
 * that shard's copy of the sequence, whose values other shards give out too.
 */
export type SequenceDrawRoute = { kind: 'draw'; sequence: string; column: string; reason: string }

/** Where a statement goes for this session: the router's answer, or a statement on a cursor across shards. */
export type SessionRoute = Route | CursorRoute | AsideRoute | DrawnValueRoute | SequenceDrawRoute

/**
 * The query that answers a DrawnValueRoute on a server, so that every protocol (simple, extended, Describe)
 * gets the reply Postgres would make; it takes the client's `params` bound values and reads none of them.
 */
export function drawnValueQuery(route: DrawnValueRoute, params: number): string {
  const bound = Array.from({ length: params }, (_, i) => `$${i + 1}::text`).join(', ')
  return `SELECT ${quoteLiteral(route.value)}::int8 AS ${quoteIdent(route.column)}${params > 0 ? ` FROM (SELECT ${bound}) AS bound` : ''}`
}

/**
 * A read of system catalogs while the transaction's BEGIN is held back: it runs outside the transaction, which
 * stays free to begin on the shard of its first real statement (ActiveRecord reads a table's columns inside the
 * first transaction that uses it, which would otherwise begin on the default shard).
 */
export type AsideRoute = { kind: 'aside'; shard: number; reason: string }

/** FETCH, MOVE or CLOSE of a cursor across shards (forward only). */
function cursorStatement(cursor: CursorUse, name: string): SessionRoute {
  if (cursor.use === 'close') return { kind: 'cursor', op: 'close', name, reason: `cursor ${name} across shards` }
  const fetch = cursor.fetch!
  if (!fetch.forward)
    return { kind: 'error', code: SqlState.FEATURE_NOT_SUPPORTED, message: `cursor "${name}" reads several shards and only moves forward`, hint: 'Use FETCH NEXT, FETCH FORWARD n or FETCH ALL (and MOVE likewise).' }
  return { kind: 'cursor', op: 'fetch', name, count: fetch.count, move: fetch.move, reason: `cursor ${name} across shards` }
}

/**
 * Where one client's statements go: the router's answer for this session's state (its transaction, hints,
 * search_path, pinned shard), and what the session itself refuses before the router is asked (another client's
 * sequence state, a statement that cannot end a transaction on several shards). Keeps the SQL cursors of a
 * transaction across shards on the shard where each was declared.
 */
export class SessionRouting {
  readonly hints = new RoutingHints()
  /**
   * SQL cursors declared in a transaction that may span shards, or in session pooling (where the client keeps
   * a connection on each shard it used): the shard where each was declared.
   */
  private readonly cursorShards = new Map<string, Home>()
  private keysDrawnInSession = false
  /** Keys pgshard drew for the INSERT about to be routed: the sequence, and the key of its last row. */
  private drawing: { sequence: string; last: string } | null = null
  /** What lastval() answers: the last key drawn for the client's latest write; null when that write drew none. */
  private lastDrawn: string | null = null
  /** What currval() answers for each sequence pgshard drew from since the client last called nextval() or setval(). */
  private readonly drawnBySequence: { name: string[]; value: string }[] = []
  /** The search_path setting and server default last read, and their schemas (searchPath()). */
  private searchPathFrom: string | null = null
  private searchPathDefault: readonly string[] | null = null
  private searchPathNames: string[] | null = null

  constructor(
    private readonly services: SessionServices,
    private readonly identity: Identity,
    private readonly settings: SessionSettings,
    private readonly lease: ServerLease,
    private readonly tx: ClientTransaction,
    private readonly session: RoutedSession,
    private readonly cursors: ShardCursors,
  ) {}

  /**
   * pgshard drew keys from a sequence for the client's INSERT: lastval() and currval() would not answer them,
   * for the rest of the transaction, and of the session where it keeps its server connection.
   */
  keysDrawn(): void {
    this.tx.keysDrawn = true
    this.keysDrawnInSession = true
  }

  /** The keys drawn from `sequence` for the INSERT routed next; `last` is its last row's. */
  drew(sequence: string, last: string): void {
    this.drawing = { sequence, last }
  }

  /** The client's nextval() of `sequence` that pgshard drew (SequenceDrawRoute): lastval() and currval() answer it. */
  drewForClient(sequence: string, value: string): void {
    this.keysDrawn()
    this.drawing = null
    this.lastDrawn = value
    this.rememberDrawn(sequence, value)
  }

  analyze(sql: string): Analyzed {
    const a = this.services.analyze(sql)
    this.services.metrics.cacheLookup(a.hit === true)
    return a
  }

  /** The shard of a statement that names no table (a function call, the first of a group). */
  defaultShard(): number {
    const r = this.route({ plan: null, literals: [], firstParam: 1 }, () => undefined)
    return r.kind === 'shard' ? r.shard : 0
  }

  /** `located`: for a write whose `locate` route found the shards that hold its rows, those shards. */
  route(analyzed: Analyzed, param: (n: number) => BoundParam | undefined, located?: number[]): SessionRoute {
    // DDL or setval() may reset a sequence whose values pgshard keeps spare; DDL may change what a shared
    // prepared statement answers.
    if (analyzed.plan && (analyzed.plan.kind === 'ddl' || analyzed.plan.functions.includes('setval'))) this.services.sequenceKeys.forget()
    if (analyzed.plan?.kind === 'ddl') this.services.statementNames.forget()
    const aborted = this.abortedRefusal(analyzed.plan)
    if (aborted) return this.counted(aborted)
    if (analyzed.plan) {
      const draw = this.sequenceDraw(analyzed.plan, param)
      if (draw) return this.counted(draw)
      const drawn = this.drawnValue(analyzed.plan, param)
      if (drawn) return this.counted(drawn)
      this.noteSequenceUse(analyzed.plan)
    }
    const unreliable = this.sequenceStateRefusal(analyzed.plan) ?? this.spanningEndRefusal(analyzed.plan)
    if (unreliable) return this.counted(unreliable)
    const cursor = analyzed.plan?.cursor
    if (cursor?.name === null) this.cursors.closeAll()
    else if (cursor && cursor.use !== 'declare' && this.cursors.has(cursor.name)) return this.counted(cursorStatement(cursor, cursor.name))
    if (cursor && cursor.use !== 'declare') {
      const home = this.cursorHome(cursor.name, cursor.use === 'close')
      if (home) {
        this.services.metrics.route('single')
        return { kind: 'shard', shard: home.shard, role: home.role, reason: `cursor ${cursor.name} was declared there` }
      }
    }
    const a = this.lease.attached
    const pinnedBy = this.session.pinnedBy
    const inServerTx = a !== null && a.conn.tracker.status !== 'I'
    const ctx: RoutingContext = {
      shardHint: this.hints.shard,
      keyHint: this.hints.key,
      roleHint: this.hints.role,
      txShard: inServerTx || pinnedBy ? a!.placement.shard : undefined,
      txWriter: this.tx.writer,
      pinnedBy: pinnedBy && a ? pinnedBy : undefined,
      txStartedBy: this.tx.startedBy ?? undefined,
      inTransaction: inServerTx || this.tx.pendingBegin !== null,
      txReadOnly: this.tx.readOnly,
      ofOneQuery: this.tx.ofOneQuery || undefined,
      serializable: this.tx.isolation === undefined ? this.settings.serializableByDefault : this.tx.isolation === 'serializable',
      searchPath: this.searchPath(),
      located,
    }
    // WITH HOLD outside a transaction block, a cursor across shards keeps its own connections (HeldShardCursors).
    const heldOutside = cursor?.declare?.hold === true && !ctx.inTransaction && this.tx.status === 'I'
    const across = cursor?.use === 'declare' && (this.session.mayJoinShards || heldOutside) ? this.declareAcrossShards(cursor, param, ctx) : null
    if (across) return this.counted(across)
    const route = this.services.route(analyzed, param, ctx)
    if (route.kind === 'shard' && route.catalog && this.readsAsideNow(inServerTx)) {
      return this.counted({ kind: 'aside', shard: route.shard, reason: `${route.reason}, outside the transaction, whose BEGIN waits for its first statement` })
    }
    if (route.kind === 'shard' && route.write) {
      this.tx.writer ??= route.shard
      this.tx.writtenShards.add(route.shard)
    } else if (ctx.inTransaction && (route.kind === 'broadcast' || route.kind === 'split')) {
      const shards = route.kind === 'split' ? route.parts.map((p) => p.shard) : (route.shards ?? this.services.config().shards.map((_, i) => i))
      for (const shard of shards) this.tx.writtenShards.add(shard)
    }
    if (cursor?.use === 'declare' && cursor.name !== null && route.kind === 'shard' && (this.session.mayJoinShards || this.identity.mode === 'session')) {
      this.cursorShards.set(cursor.name, { shard: route.shard, role: route.role, hold: analyzed.plan!.session.some((e) => e.kind === 'hold_cursor') })
    }
    return this.counted(route)
  }

  /**
   * A catalog read may run outside the transaction now: its BEGIN waits, nothing shaped it, and it is a READ
   * COMMITTED read-write one, where each statement takes its own snapshot anyway (pg_dump's READ ONLY
   * REPEATABLE READ transaction reads the catalog in its snapshot).
   */
  private readsAsideNow(inServerTx: boolean): boolean {
    if (this.tx.pendingBegin === null || this.tx.status !== 'T' || inServerTx || this.session.pinnedBy || this.tx.shaped || this.tx.readOnly) return false
    const isolation = this.tx.isolation
    return isolation === undefined ? !this.settings.snapshotPerTransaction : isolation === 'read committed' || isolation === 'read uncommitted'
  }

  private counted<R extends SessionRoute>(route: R): R {
    // Counted when the INSERT with its drawn keys, the write on the shards found, or the statement with its
    // subqueries' answers written in, is routed.
    if (route.kind === 'keys' || route.kind === 'locate' || route.kind === 'evaluate') return route
    this.services.metrics.route(route.kind === 'shard' || route.kind === 'aside' ? 'single' : route.kind === 'drawn' || route.kind === 'draw' ? 'local' : route.kind === 'error' ? 'refused' : route.kind === 'copy_split' ? 'split' : route.kind === 'copy_out' || route.kind === 'cursor' ? 'scatter' : route.kind)
    return route
  }

  /**
   * A DECLARE whose query reads several shards, in a transaction that may span shards: a cursor across shards
   * (ShardCursors), or why it cannot be one. Null when its query reads one shard: it goes there as a DECLARE.
   */
  private declareAcrossShards(cursor: CursorUse, param: (n: number) => BoundParam | undefined, ctx: RoutingContext): SessionRoute | null {
    const declared = cursor.declare
    if (!declared?.query || cursor.name === null) return null
    // The query analyzed on its own (its literals taken out anew); the DECLARE's parameters keep their numbers.
    const query = this.analyze(declared.query)
    if (!query.plan) return null
    const route = this.services.route(query, innerParam(query, param), ctx)
    // A query no read across shards can answer: the reason, as for the query by itself.
    if (route.kind === 'error') return route
    // One whose subqueries pgshard would read first: a cursor reads its rows later, in parts.
    if (route.kind === 'evaluate') {
      return {
        kind: 'error',
        code: SqlState.FEATURE_NOT_SUPPORTED,
        message: route.refused ?? `a cursor over a query with ${route.reason} is not supported`,
        hint: 'Read it without a cursor (pgshard reads its subqueries first then), or pin the key to one shard.',
      }
    }
    if (route.kind !== 'scatter') return null
    const refuse = (what: string, hint: string): Route => ({ kind: 'error', code: SqlState.FEATURE_NOT_SUPPORTED, message: `${what} of cursor "${cursor.name}", whose query reads several shards (${route.reason}), is not supported`, hint })
    if (declared.scroll) return refuse('SCROLL', 'Declare it NO SCROLL: a cursor across shards reads forward only.')
    if (declared.hold && ctx.inTransaction) {
      return refuse('WITH HOLD inside a transaction block', 'Declare it WITHOUT HOLD inside the transaction that reads it, or WITH HOLD outside a transaction block (autocommit), or pin the key to one shard.')
    }
    if (this.cursors.has(cursor.name)) return { kind: 'error', code: SqlState.DUPLICATE_CURSOR, message: `cursor "${cursor.name}" already exists` }
    return { kind: 'cursor', op: 'declare', name: cursor.name, query, scatter: route, binary: declared.binary, hold: declared.hold, reason: `cursor ${cursor.name} across shards: ${route.reason}` }
  }

  /** The transaction ended: its cursors (but a WITH HOLD one in session pooling) and SET LOCAL hints with it. */
  endTransaction(committed: boolean): void {
    this.cursors.endTransaction()
    const session = this.identity.mode === 'session'
    for (const [name, home] of this.cursorShards) if (!session || !home.hold) this.cursorShards.delete(name)
    this.hints.endTransaction(committed)
  }

  /**
   * In a transaction across shards, a SQL cursor lives on the shard where it was declared (psycopg's named
   * cursors read one shard while the transaction writes another): FETCH, MOVE and CLOSE go back there. So they
   * do in session pooling, where a cursor lives on the client's connection to the shard where it was declared.
   * `closing` forgets it (CLOSE ALL forgets every one).
   */
  private cursorHome(name: string | null, closing: boolean): Home | undefined {
    const home = name === null ? undefined : this.cursorShards.get(name)
    if (closing) {
      if (name === null) this.cursorShards.clear()
      else this.cursorShards.delete(name)
    }
    return home && (this.identity.mode === 'session' || this.lease.inTransaction(home.shard)) ? home : undefined
  }

  /**
   * The client's search_path as schema names, `$user` being its user, to find which table an unqualified name
   * is; without one of the client's, the one its server sessions start with. Read again only when either changes.
   */
  private searchPath(): string[] {
    const sql = this.settings.wanted.get('search_path') ?? null
    const byDefault = this.services.defaultSearchPath(this.identity)
    if (this.searchPathNames === null || sql !== this.searchPathFrom || byDefault !== this.searchPathDefault) {
      this.searchPathFrom = sql
      this.searchPathDefault = byDefault
      const names = (sql === null ? null : searchPathOf(sql)) ?? byDefault
      this.searchPathNames = names.map((n) => (n === '$user' ? this.identity.user.name : n))
    }
    return this.searchPathNames
  }

  /**
   * lastval() after a write whose keys pgshard drew, or currval() of the sequence it drew them from (until the
   * client calls nextval() or setval() itself): answered with the key drawn, whatever connection served the write.
   * Null for any other statement, and when the name is a binary parameter (an oid pgshard cannot name).
   */
  private drawnValue(plan: StatementPlan, param: (n: number) => BoundParam | undefined): DrawnValueRoute | null {
    const read = plan.sequenceRead
    if (read === undefined || read.fn === 'nextval') return null
    const reason = `${read.fn}(): a key pgshard drew for the client's INSERT`
    if (read.fn === 'lastval') return this.lastDrawn === null ? null : { kind: 'drawn', value: this.lastDrawn, column: read.column, reason }
    const text = sequenceText(read.sequence!, param)
    const name = text !== null && qualifiedNameParts(text)
    const drawn = name && this.drawnBySequence.find((d) => sameSequence(d.name, name))
    return drawn ? { kind: 'drawn', value: drawn.value, column: read.column, reason } : null
  }

  /**
   * nextval() alone in a transaction (Doctrine's and Hibernate's id generators, inside the unit of work's
   * transaction): drawn on the default shard, not on the shard the transaction is on. Null outside a
   * transaction, where it runs on the default shard anyway, and for a name in a binary parameter.
   */
  private sequenceDraw(plan: StatementPlan, param: (n: number) => BoundParam | undefined): SequenceDrawRoute | null {
    const read = plan.sequenceRead
    if (read?.fn !== 'nextval' || !this.inTransaction()) return null
    const sequence = sequenceText(read.sequence!, param)
    if (sequence === null) return null
    return { kind: 'draw', sequence, column: read.column, reason: 'nextval() in a transaction: drawn on the default shard, where every nextval() of the cluster draws' }
  }

  /** The client is in a transaction (begun on a server, or its BEGIN held back), or pinned to its server connection. */
  private inTransaction(): boolean {
    const a = this.lease.attached
    return (a !== null && a.conn.tracker.status !== 'I') || this.tx.pendingBegin !== null || this.session.pinnedBy !== null
  }

  /**
   * What a statement does to the values lastval() and currval() answer: a write answers lastval() with the keys
   * pgshard drew for it, or no longer from drawn keys when it drew none (it may have called nextval() on a server,
   * through a column's default); nextval(), setval(), DDL and DISCARD leave currval() to the servers again.
   */
  private noteSequenceUse(plan: StatementPlan): void {
    // Nothing drawn in this session: nothing to forget (the common case, kept cheap).
    if (this.drawing === null && this.lastDrawn === null && this.drawnBySequence.length === 0) return
    const drawing = this.drawing
    this.drawing = null
    if (plan.kind === 'ddl' || plan.functions.includes('nextval') || plan.functions.includes('setval') || plan.commandTag === 'DISCARD ALL' || plan.commandTag === 'DISCARD SEQUENCES') {
      this.drawnBySequence.length = 0
    }
    if (!this.services.mayWrite(plan)) return
    this.lastDrawn = drawing?.last ?? null
    if (drawing) this.rememberDrawn(drawing.sequence, drawing.last)
  }

  /** What currval() of `sequence` answers from now on. */
  private rememberDrawn(sequence: string, value: string): void {
    const name = qualifiedNameParts(sequence)
    if (!name) return
    const known = this.drawnBySequence.find((d) => sameSequence(d.name, name))
    if (known) known.value = value
    else this.drawnBySequence.push({ name, value })
  }

  /**
   * currval() and lastval() answer from the sequence state of the server connection that runs them. In
   * transaction pooling that state is this client's only right after its own write on that same connection (in
   * the same transaction, query or pipeline); otherwise the value may be another client's nextval. Refused then:
   * an error rather than someone else's id.
   */
  private sequenceStateRefusal(plan: StatementPlan | null): Route | null {
    if (!plan || plan.multiStatement) return null
    if (!plan.functions.includes('currval') && !plan.functions.includes('lastval')) return null
    if (plan.functions.includes('nextval') || plan.functions.includes('setval')) return null
    const ownServer = this.identity.mode === 'session' || this.session.pinnedBy !== null
    // In any statement (INSERT … VALUES (currval('s'))): the server session's value is not the one pgshard drew.
    if (this.tx.keysDrawn || (ownServer && this.keysDrawnInSession)) return AFTER_DRAWN_KEYS
    if (ownServer) return null
    // Answered by the one server session that made the transaction's sequence values, or not at all.
    const shards = this.tx.sequenceShards
    if (shards.size > 1) return SEQUENCE_STATE_ACROSS_SHARDS
    const a = this.lease.attached
    if (!this.tx.wrote || !a) return UNRELIABLE_SEQUENCE_STATE
    // A write goes where its rows go: the shard the transaction wrote (it writes one), unless two-phase commit
    // lets it write others, whose server sessions did not make the values.
    if (plan.kind !== 'select') return this.session.mayJoinShards && this.services.config().sharding.cross_shard_transactions === 'two_phase' ? SEQUENCE_STATE_IN_SPANNING_WRITE : null
    if (shards.size === 0 || shards.has(a.placement.shard)) return null
    // The transaction has gone on to another shard since: back to the one that made them.
    const [shard] = shards
    if (!this.session.mayJoinShards) return UNRELIABLE_SEQUENCE_STATE
    return { kind: 'shard', shard: shard!, role: 'primary', reason: 'currval()/lastval(): the shard whose server session made the transaction’s sequence values' }
  }

  /**
   * A statement of a transaction that failed while its BEGIN was still held back (a statement pgshard refused):
   * as on a server, only what ends the failure (COMMIT and ROLLBACK, which pgshard answers, ROLLBACK TO SAVEPOINT)
   * may run. Sent on, it would begin the transaction on a server, run there, and COMMIT would commit it.
   */
  private abortedRefusal(plan: StatementPlan | null): Route | null {
    if (!plan || this.tx.status !== 'E' || this.tx.pendingBegin === null) return null
    if (plan.tx === 'commit' || plan.tx === 'rollback' || plan.tx === 'rollback_to') return null
    return ABORTED_TRANSACTION
  }

  /**
   * What could not end a read-write transaction on several shards all or nothing: COMMIT among other
   * statements (in one query, or before one Sync), the client's own PREPARE TRANSACTION, and AND CHAIN (which
   * would keep one shard's connection in a new transaction) in any transaction on several shards.
   */
  private spanningEndRefusal(plan: StatementPlan | null): Route | null {
    if (!plan || !this.lease.spansShards) return null
    const refuse = (what: string): Route => ({
      kind: 'error',
      code: SqlState.FEATURE_NOT_SUPPORTED,
      message: `${what} cannot end a transaction that holds several shards`,
      hint: 'Send COMMIT or ROLLBACK by itself: as a simple query, or alone before its Sync (then BEGIN again).',
    })
    if (plan.txChain) return refuse(`${plan.commandTag} AND CHAIN`)
    if (this.tx.readOnly) return null
    if (plan.multiStatementTx) return refuse('a transaction statement among other statements in one query')
    if (plan.tx === 'prepare_transaction') return refuse('PREPARE TRANSACTION')
    // A COMMIT runs two-phase commit (commitsAcrossShards), one of an aborted transaction rolls back; what is left
    // is one bound while a statement on several shards of its pipeline still waits for its Execute.
    if (plan.tx === 'commit' && this.tx.status === 'T') return refuse('a COMMIT bound before the statement ahead of it ran')
    return null
  }
}
