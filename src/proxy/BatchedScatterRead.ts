import type { ServerConnection } from '../pool/ServerConnection.js'
import { SYNC, encodeBind, encodeExecute, encodeParse, encodeTarget } from '../protocol/FrontendMessages.js'
import { errorResponse, rowDescription } from '../protocol/ServerMessages.js'
import type { ResultMerger } from '../router/merge/ResultMerger.js'
import type { BoundParam } from '../router/Route.js'
import type { ScatterPlan } from '../router/StatementPlan.js'
import { shardText, type ClientOutput, type ShardConnection, type ShardStatement } from './MultiShardExecutor.js'
import { asMergeFailure, clientFields, lostConnection, mergerFor } from './ScatterMerge.js'
import type { SessionServices } from './SessionServices.js'
import { callShard, type ShardReply } from './ShardCall.js'

/** What a batched read needs of the statement that drives it: where errors go, and the client's cancel. */
export interface BatchedReadContext {
  readonly out: ClientOutput
  /** While `work` runs on the held connections, a client's cancel is sent to each of them. */
  cancellable<T>(held: ShardConnection[], work: () => Promise<T>): Promise<T>
}

type Row = (Buffer | string | null)[]

/** How a batched read asks each shard for its rows. */
interface BatchRequests {
  /** The first batch, described. */
  first(conn: ServerConnection, shard: number): Buffer
  /** Each next batch. */
  readonly next: Buffer
  /** The shard has no rows left after this reply. */
  last(reply: ShardReply): boolean
  /** Ends what is still open on a shard, if anything must. */
  readonly close: Buffer | null
}

/** Names the shard-side portals (unique in the process, hence on every connection). */
let scanPortals = 0

/**
 * A read across shards fetched a part at a time: each shard's rows are read a batch at a time only when the
 * ordered merge needs them, so that between the client's fetches the connections are free for its other
 * statements. Inside the client's transaction each shard runs the read as a portal of its own, which ends with
 * the transaction or at `close`: an Execute with a row limit (asyncpg's cursors, pgjdbc's fetch size), a SQL
 * cursor declared over several shards (psycopg's named cursors). A WITH HOLD cursor is read by FETCH from the
 * cursor each shard holds.
 */
export class BatchedScatterRead {
  private readonly open: boolean[]
  private merger: ResultMerger | null = null
  private ready: Row[] = []
  private next = 0
  /** The client's RowDescription, known once every shard described its rows. */
  description: Buffer = Buffer.alloc(0)
  private readonly started = performance.now()
  private measured = false

  private constructor(
    private readonly services: SessionServices,
    private readonly held: ShardConnection[],
    private readonly plan: ScatterPlan,
    private readonly requests: BatchRequests,
    private readonly param: (n: number) => BoundParam | undefined,
  ) {
    this.open = held.map(() => true)
  }

  /** Binds the read on every shard and fetches its first batch; null when the client got an error. */
  static async start(
    ctx: BatchedReadContext,
    services: SessionServices,
    held: ShardConnection[],
    plan: ScatterPlan,
    stmt: ShardStatement & { bind: NonNullable<ShardStatement['bind']> },
    batch: number,
    param: (n: number) => BoundParam | undefined,
  ): Promise<BatchedScatterRead | null> {
    const portal = `pgshard_scan_${++scanPortals}`
    const b = stmt.bind
    const requests: BatchRequests = {
      first: (conn, shard) => Buffer.concat([
        encodeParse('', shardText(stmt, shard), conn.serverTypes(b.types)),
        encodeBind(portal, '', b.params, b.formats, b.resultFormats),
        encodeTarget('Describe', 'P', portal),
        encodeExecute(portal, batch),
        SYNC,
      ]),
      next: Buffer.concat([encodeExecute(portal, batch), SYNC]),
      last: (reply) => !reply.suspended,
      close: Buffer.concat([encodeTarget('Close', 'P', portal), SYNC]),
    }
    return BatchedScatterRead.begin(ctx, new BatchedScatterRead(services, held, plan, requests, param))
  }

  /**
   * Reads the WITH HOLD cursor `cursor` that every held connection declared over its shard's part of the read,
   * FETCHing `batch` rows at a time in `resultFormats`; null when the client got an error.
   */
  static async fromCursors(
    ctx: BatchedReadContext,
    services: SessionServices,
    held: ShardConnection[],
    plan: ScatterPlan,
    cursor: string,
    resultFormats: number[],
    batch: number,
    param: (n: number) => BoundParam | undefined,
  ): Promise<BatchedScatterRead | null> {
    const fetch = (describe: boolean) => Buffer.concat([
      encodeParse('', `FETCH FORWARD ${batch} FROM ${cursor}`, []),
      encodeBind('', '', [], [], resultFormats),
      ...(describe ? [encodeTarget('Describe', 'P', '')] : []),
      encodeExecute('', 0),
      SYNC,
    ])
    const first = fetch(true)
    const requests: BatchRequests = { first: () => first, next: fetch(false), last: (reply) => reply.rows.length < batch, close: null }
    return BatchedScatterRead.begin(ctx, new BatchedScatterRead(services, held, plan, requests, param))
  }

  private static async begin(ctx: BatchedReadContext, read: BatchedScatterRead): Promise<BatchedScatterRead | null> {
    return (await read.fetch(ctx, read.held.map((_, i) => i), read.requests.first)) ? read : null
  }

  /**
   * Hands up to `max` merged rows to `emit` (Infinity: every one left), fetching from the shards as the merge
   * needs; the number handed over, fewer than `max` once the read is at its end, or null when the client got an
   * error.
   */
  async rows(ctx: BatchedReadContext, max: number, emit: ((row: Row) => void) | null): Promise<number | null> {
    let sent = 0
    for (;;) {
      while (sent < max && this.next < this.ready.length) {
        sent++
        const row = this.ready[this.next++]!
        emit?.(row)
      }
      if (this.next === this.ready.length) {
        this.ready = []
        this.next = 0
      }
      if (sent === max) return sent
      const waiting = this.merger!.waitingOn()
      if (waiting.length === 0) {
        this.measure()
        return sent
      }
      await ctx.out.drained()
      if (!(await this.fetch(ctx, waiting, this.requests.next))) return null
    }
  }

  /** Closes the shards' portals that are still open (their connections must have nothing in flight). */
  async close(): Promise<void> {
    const which = this.open.flatMap((o, i) => (o ? [i] : []))
    this.open.fill(false)
    const request = this.requests.close
    if (request && which.length > 0) await Promise.allSettled(which.map((i) => callShard(this.held[i]!.conn, request)))
  }

  /** One request on the shards `which`; their rows go to the merge. False when the client got an error. */
  private async fetch(ctx: BatchedReadContext, which: number[], request: Buffer | ((conn: ServerConnection, shard: number) => Buffer)): Promise<boolean> {
    const ok = await callEach(ctx, this.held, which, request)
    if (!ok) return false
    const held = this.held
    try {
      if (!this.merger) {
        const merger = mergerFor(this.plan, held, ok.map((r) => r.fields!), this.param, this.services.mergeTypes)
        this.merger = merger
        this.description = rowDescription(clientFields(ok[0]!.fields!, merger.outputColumns()))
      }
      const merger = this.merger
      which.forEach((i, j) => {
        for (const row of ok[j]!.rows) merger.push(i, row)
        if (this.requests.last(ok[j]!)) {
          this.open[i] = false
          merger.end(i)
        }
      })
      for (const r of merger.take()) this.ready.push(r)
      return true
    } catch (err) {
      ctx.out.emit(errorResponse(asMergeFailure(err, this.services.mergeTypes)))
      return false
    }
  }

  private measure(): void {
    if (this.measured) return
    this.measured = true
    for (const h of this.held) this.services.metrics.query(h.placement.shardName, h.placement.role, true, (performance.now() - this.started) / 1000)
  }
}

/**
 * One request on the held connections `which` (the same for each, or made for each shard's connection), their
 * replies in that order; null when the client got an error (a lost connection, or the first shard's error).
 */
export async function callEach(ctx: BatchedReadContext, held: ShardConnection[], which: number[], request: Buffer | ((conn: ServerConnection, shard: number) => Buffer)): Promise<ShardReply[] | null> {
  const replies = await ctx.cancellable(which.map((i) => held[i]!), () =>
    Promise.allSettled(which.map((i) => callShard(held[i]!.conn, typeof request === 'function' ? request(held[i]!.conn, held[i]!.placement.shard) : request))),
  )
  const lost = replies.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (lost) {
    ctx.out.emit(lostConnection(lost.reason))
    return null
  }
  const ok = replies.map((r) => (r as PromiseFulfilledResult<ShardReply>).value)
  const failed = ok.find((r) => r.error)
  if (failed) {
    ctx.out.emit(failed.error!.message)
    return null
  }
  return ok
}
