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

/** Names the shard-side portals (unique in the process, hence on every connection). */
let scanPortals = 0

/**
 * A read across shards inside the client's transaction, fetched a part at a time: each shard runs it as a portal
 * of its own in the transaction, read a batch at a time only when the ordered merge needs that shard's rows, so
 * that between the client's fetches the transaction's connections are free for its other statements. Serves an
 * Execute with a row limit (asyncpg's cursors, pgjdbc's fetch size) and a SQL cursor declared over several
 * shards (psycopg's named cursors). The portals end with the transaction, or at `close`.
 */
export class BatchedScatterRead {
  private readonly portal = `pgshard_scan_${++scanPortals}`
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
    private readonly batch: number,
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
    const read = new BatchedScatterRead(services, held, plan, batch, param)
    const b = stmt.bind
    const start = (conn: ServerConnection, shard: number) => Buffer.concat([
      encodeParse('', shardText(stmt, shard), conn.serverTypes(b.types)),
      encodeBind(read.portal, '', b.params, b.formats, b.resultFormats),
      encodeTarget('Describe', 'P', read.portal),
      encodeExecute(read.portal, batch),
      SYNC,
    ])
    return (await read.fetch(ctx, held.map((_, i) => i), start)) ? read : null
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
      if (!(await this.fetch(ctx, waiting, Buffer.concat([encodeExecute(this.portal, this.batch), SYNC])))) return null
    }
  }

  /** Closes the shards' portals that are still open (their connections must have nothing in flight). */
  async close(): Promise<void> {
    const which = this.open.flatMap((o, i) => (o ? [i] : []))
    this.open.fill(false)
    if (which.length > 0) await Promise.allSettled(which.map((i) => callShard(this.held[i]!.conn, Buffer.concat([encodeTarget('Close', 'P', this.portal), SYNC]))))
  }

  /** One request on the shards `which`; their rows go to the merge. False when the client got an error. */
  /** `request`: the same for every shard, or made for each shard's connection. */
  private async fetch(ctx: BatchedReadContext, which: number[], request: Buffer | ((conn: ServerConnection, shard: number) => Buffer)): Promise<boolean> {
    const held = this.held
    const replies = await ctx.cancellable(which.map((i) => held[i]!), () =>
      Promise.allSettled(which.map((i) => callShard(held[i]!.conn, typeof request === 'function' ? request(held[i]!.conn, held[i]!.placement.shard) : request))),
    )
    const lost = replies.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
    if (lost) {
      ctx.out.emit(lostConnection(lost.reason))
      return false
    }
    const ok = replies.map((r) => (r as PromiseFulfilledResult<ShardReply>).value)
    const failed = ok.find((r) => r.error)
    if (failed) {
      ctx.out.emit(failed.error!.message)
      return false
    }
    try {
      if (!this.merger) {
        const merger = mergerFor(this.plan, held, ok.map((r) => r.fields!), this.param, this.services.mergeTypes)
        this.merger = merger
        this.description = rowDescription(clientFields(ok[0]!.fields!, merger.outputColumns()))
      }
      const merger = this.merger
      which.forEach((i, j) => {
        for (const row of ok[j]!.rows) merger.push(i, row)
        if (!ok[j]!.suspended) {
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
