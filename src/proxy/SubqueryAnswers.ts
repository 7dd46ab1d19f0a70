// The 'evaluate' route: a statement's self-contained subqueries over sharded tables (`WHERE total > (SELECT
// avg(total) FROM orders)`) read first, each routed as a statement of its own (one shard, or every shard merged),
// on the connections the client's own statement would use (its transaction's when it has them), and their answers
// written into the statement as constants (SubqueryAnswer). Postgres evaluates such a subquery once, before the
// statement's rows (an InitPlan); pgshard does the same, a moment earlier: in READ COMMITTED, a row written between
// the two reads by another client is seen as by a second statement.
import { paramFormat } from '../protocol/FrontendMessages.js'
import { errorField } from '../protocol/ResponseTracker.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { decodeDataRow, decodeRowDescription } from '../protocol/RowMessages.js'
import { restoreLiterals } from '../router/LiteralNormalizer.js'
import { inSubqueryReadFirst, Refusal } from '../router/Refusal.js'
import type { BoundParam, Role, Route } from '../router/Route.js'
import type { DetachedForm } from '../router/ast/DetachedSubqueries.js'
import { subqueryAnswer, type SubqueryRows } from '../router/SubqueryAnswer.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import { countedRowsOutput } from './CountedRows.js'
import { encodeStatement, type ClientOutput, type MultiShardExecutor, type ShardStatement } from './MultiShardExecutor.js'
import { firstRead, scatterRead } from './SharedSubqueries.js'
import { callShard } from './ShardCall.js'
import { routeError } from './SessionErrors.js'
import type { KeyedSession } from './SessionKeys.js'
import type { SessionRouting, SessionRoute } from './SessionRouting.js'
import type { Analyzed, SessionServices } from './SessionServices.js'
import type { ServerLease } from './ServerLease.js'
import { innerParam } from './StatementParams.js'

export type EvaluateRoute = Extract<Route, { kind: 'evaluate' }>

const ROW_DESCRIPTION = 0x54
const DATA_ROW = 0x44
const ERROR_RESPONSE = 0x45
const UNDEFINED_COLUMN = '42703'

/** What the session lends the reads: executors like its own statements', and its refusal of reads across shards. */
export interface SessionReads {
  /** An executor on the connections a statement of the client would use now (its transaction's, if it spans shards). */
  executor(out: ClientOutput, cancel: AbortSignal): MultiShardExecutor
  /** Why a read of every shard cannot run in this session now; null when it can. */
  acrossShardsRefusal(route: Extract<SessionRoute, { kind: 'scatter' }>): PgError | null
}

export class SubqueryAnswers {
  constructor(
    private readonly services: SessionServices,
    private readonly lease: ServerLease,
    private readonly routing: SessionRouting,
    private readonly session: KeyedSession,
    private readonly reads: SessionReads,
  ) {}

  /**
   * The client's statement (`analyzed`, sent as `whole`) with the route's subqueries' answers written in, literals
   * put back: what the client would have sent had it known them. Throws the PgError the client gets. What the
   * client sent before it has run (the session ends a pipeline's part first).
   */
  async written(route: EvaluateRoute, analyzed: Analyzed, whole: ShardStatement): Promise<string> {
    // What the client sent before it has answered on its connection (its rows are the transaction's to read).
    await this.lease.whenIdle()
    const restore = (sql: string) => restoreLiterals(sql, analyzed.firstParam, analyzed.sources ?? [])
    let text = route.parts[0]!
    for (const [i, sub] of route.subqueries.entries()) {
      const answer = await this.read(restore(sub.sql), sub.form, whole.bind, route.refused)
      try {
        text += subqueryAnswer(sub.form, answer) + route.parts[i + 1]!
      } catch (err) {
        if (err instanceof Refusal) throw new PgError(err.code, err.message)
        throw err
      }
    }
    return restore(text)
  }

  /** The subquery's answer: its rows in text form (for `exists`, at most one); `refused`: see EvaluateRoute. */
  private async read(sql: string, form: DetachedForm, bind: ShardStatement['bind'], refused: string | undefined): Promise<SubqueryRows> {
    // Whether a row exists, asked of every shard when each can answer for its own rows: none reads them all.
    const test = `SELECT EXISTS (${sql})`
    if (form === 'exists' && this.routing.analyze(test).plan?.scatter?.existence !== undefined) {
      const { names, types, rows } = await this.read(test, 'scalar', bind, refused)
      return { names, types, rows: rows[0]?.[0]?.toString() === 't' ? rows : [] }
    }
    const analyzed = this.routing.analyze(sql)
    const param = innerParam(analyzed, (n) => boundParam(bind, n))
    const route = this.routing.route(analyzed, param)
    const stmt = firstRead(sql, bind)
    switch (route.kind) {
      case 'evaluate':
        return this.read(await this.written(route, analyzed, stmt), form, bind, refused)
      case 'shard':
        return this.onShard(route.shard, route.role, stmt, form, refused)
      case 'aside':
        return this.onShard(route.shard, 'primary', stmt, form, refused)
      case 'scatter':
        return this.acrossShards(route, analyzed, stmt, param, form, refused)
      case 'error': {
        const refusal = routeError(route)
        throw new PgError(refusal.code, inSubqueryReadFirst(refusal.message), refusal.options)
      }
      default:
        throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `pgshard reads a subquery over a sharded table on its own first, and cannot read this one so: ${route.reason}`, {
          hint: 'Pin the key to one shard, or join the table on its sharding key instead.',
        })
    }
  }

  /** On the connection the client's transaction holds on that shard, else on one of its pool (or joined to it). */
  private async onShard(shard: number, role: Role, stmt: ShardStatement, form: DetachedForm, refused: string | undefined): Promise<SubqueryRows> {
    const capture = this.capture(form, refused)
    const read = (conn: ServerConnection, node: string) => {
      capture.onAbort(() => this.services.cancel(node, conn))
      return callShard(conn, encodeStatement(stmt, conn, shard), capture.sink)
    }
    try {
      const own = this.lease.inTransaction(shard)
      if (own) return capture.answer(await read(own.conn, own.placement.nodeName))
      const executor = this.reads.executor(capture.output, capture.signal)
      const held = await executor.connections([shard], role)
      try {
        return capture.answer(await read(held[0]!.conn, held[0]!.placement.nodeName))
      } finally {
        executor.giveBack(held)
      }
    } finally {
      capture.close()
    }
  }

  /** Every shard's rows merged, as the client's own read across shards would be. */
  private async acrossShards(
    route: Extract<SessionRoute, { kind: 'scatter' }>,
    analyzed: Analyzed,
    stmt: ShardStatement,
    param: (n: number) => BoundParam | undefined,
    form: DetachedForm,
    refused: string | undefined,
  ): Promise<SubqueryRows> {
    const refusal = this.reads.acrossShardsRefusal(route)
    if (refusal) throw refusal
    const capture = this.capture(form, refused)
    const counted = route.plan.countRows
    const executor = this.reads.executor(counted ? countedRowsOutput(capture.output, counted.name, 0) : capture.output, capture.signal)
    const shards = this.services.config().shards.map((_, i) => i)
    const restore = (sql: string) => restoreLiterals(sql, analyzed.firstParam, analyzed.sources ?? [])
    try {
      await scatterRead(executor, shards, route.role, counted?.plan ?? route.plan, stmt, restore, param, { describe: true, execute: true }, counted !== undefined)
      return capture.answer(null)
    } finally {
      capture.close()
    }
  }

  private capture(form: DetachedForm, refused: string | undefined): AnswerCapture {
    return new AnswerCapture(this.services.config().listen.max_message_size, form, this.session.cancelled, refused)
  }
}

/** A client parameter of the Bind the subquery reads with. */
function boundParam(bind: ShardStatement['bind'], n: number): BoundParam | undefined {
  const i = n - 1
  if (bind === undefined || i < 0 || i >= bind.params.length) return undefined
  return { value: bind.params[i]!, format: paramFormat(bind.formats, i), typeOid: bind.types[i] ?? 0 }
}

/**
 * A subquery's answer as it comes (from one server, or from the merge of several): its rows held up to `limit`
 * bytes of values (beyond, the read is cancelled and refused: they are written into the statement), its error.
 */
class AnswerCapture {
  private readonly controller = new AbortController()
  private names: string[] = []
  private types: number[] = []
  private readonly rows: (Buffer | null)[][] = []
  private bytes = 0
  private error: PgError | null = null

  private readonly onClientCancel = () => this.controller.abort()

  constructor(
    private readonly limit: number,
    private readonly form: DetachedForm,
    private readonly clientCancel: AbortSignal,
    /** Why the statement cannot run as written, for the error of an answer too large. */
    private readonly refused: string | undefined,
  ) {
    if (clientCancel.aborted) this.controller.abort()
    else clientCancel.addEventListener('abort', this.onClientCancel, { once: true })
  }

  /** The read is over: a later cancel of the client's is not this read's (its connection may serve another). */
  close(): void {
    this.clientCancel.removeEventListener('abort', this.onClientCancel)
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  onAbort(cancel: () => void): void {
    this.signal.addEventListener('abort', cancel, { once: true })
  }

  readonly sink = {
    description: (fields: { name: string; typeOid: number }[]) => {
      this.names = fields.map((f) => f.name)
      this.types = fields.map((f) => f.typeOid)
    },
    row: (values: (Buffer | null)[]) => this.keep(values),
  }

  readonly output: ClientOutput = {
    emit: (bytes) => {
      for (let at = 0; at + 5 <= bytes.length; ) {
        const end = at + 1 + bytes.readUInt32BE(at + 1)
        const body = bytes.subarray(at + 5, end)
        if (bytes[at] === ROW_DESCRIPTION) this.sink.description(decodeRowDescription(body))
        else if (bytes[at] === DATA_ROW) this.keep(decodeDataRow(body))
        else if (bytes[at] === ERROR_RESPONSE) this.error ??= fromErrorResponse(body)
        at = end
      }
      return true
    },
    drained: () => Promise.resolve(),
  }

  private keep(values: (Buffer | null)[]): void {
    if (this.form === 'exists' ? this.rows.length > 0 : this.bytes > this.limit) return
    for (const v of values) this.bytes += v?.length ?? 0
    if (this.bytes <= this.limit) this.rows.push(values.map((v) => (v === null ? null : Buffer.from(v))))
    else this.controller.abort()
  }

  /** The answer, or the error the client gets (`reply`: one server's, whose error is in it). */
  answer(reply: { error: { message: Buffer } | null } | null): SubqueryRows {
    if (this.bytes > this.limit && this.form === 'values') {
      throw new PgError(SqlState.PROGRAM_LIMIT_EXCEEDED, `the rows of INSERT \u2026 SELECT with RETURNING or ON CONFLICT exceed ${this.limit} bytes (listen.max_message_size): pgshard reads them first and writes them into the INSERT as VALUES, each row to its shard`, {
        hint: 'Insert them in smaller batches, or without RETURNING and ON CONFLICT: pgshard then streams any number of rows to their shards (COPY).',
      })
    }
    if (this.bytes > this.limit) {
      throw new PgError(SqlState.PROGRAM_LIMIT_EXCEEDED, `the answer of a subquery over a sharded table exceeds ${this.limit} bytes (listen.max_message_size): pgshard reads such a subquery first and writes its answer into the statement`, {
        ...(this.refused === undefined ? {} : { detail: `As written, the statement cannot run across shards: ${this.refused}.` }),
        hint: 'Narrow the subquery, join its table on the sharding key instead, or pin the key to one shard.',
      })
    }
    const error = reply?.error ? fromErrorResponse(reply.error.message.subarray(5)) : this.error
    if (error) throw error
    if (this.signal.aborted) throw new PgError(SqlState.QUERY_CANCELED, 'canceling statement due to user request')
    return { names: this.names, types: this.types, rows: this.rows }
  }
}

/**
 * A server's error as the client's. An unknown column may be one of the query around the subquery, named
 * without its table: the subquery was taken for one that reads only itself.
 */
function fromErrorResponse(body: Buffer): PgError {
  const code = errorField(body, 0x43) ?? SqlState.INTERNAL_ERROR
  const message = errorField(body, 0x4d) ?? 'error'
  const detail = errorField(body, 0x44)
  const hint = errorField(body, 0x48)
  if (code === UNDEFINED_COLUMN) {
    return new PgError(code, `${message} (in a subquery over a sharded table that pgshard reads first, on its own)`, {
      ...(detail === undefined ? {} : { detail }),
      hint: 'A subquery that uses a column of the query around it must name that column with its table (orders.user_id), so that pgshard sees it is tied to it; or pin the key to one shard.',
    })
  }
  return new PgError(code, message, { ...(detail === undefined ? {} : { detail }), ...(hint === undefined ? {} : { hint }) })
}
