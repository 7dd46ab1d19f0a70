import {
  SYNC,
  encodeBind,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeTarget,
} from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { tagCount, withCount } from '../protocol/RowMessages.js'
import {
  commandComplete, copyData, COPY_DONE_REPLY, dataRow, errorResponse, PORTAL_SUSPENDED, rowDescription, type FieldDescription,
} from '../protocol/ServerMessages.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import type { ResultMerger, RowShare } from '../router/merge/ResultMerger.js'
import type { BoundParam, Role } from '../router/Route.js'
import type { ScatterPlan } from '../router/StatementPlan.js'
import type { Identity, Placement, SessionServices } from './SessionServices.js'
import type { SessionSettings } from './SessionSettings.js'
import { syncSettings } from './SettingsSync.js'
import { callShard, type ShardReply } from './ShardCall.js'
import { BatchedScatterRead, type BatchedReadContext } from './BatchedScatterRead.js'
import { asMergeFailure, clientFields, lostConnection, mergerFor } from './ScatterMerge.js'

/** One statement as a shard runs it: a simple Query, or (with `bind`) Parse/Bind/Describe/Execute/Sync. */
export interface ShardStatement {
  sql: string
  /** The text each shard runs instead, by shard number (its share of a subquery's rows written in: SharedSubqueries). */
  sqlByShard?: string[]
  bind?: { params: (Buffer | null)[]; formats: number[]; types: number[]; resultFormats: number[] }
}

/** Where the executor's answer goes: `emit` returns false when the client's buffer is full. */
export interface ClientOutput {
  emit(bytes: Buffer): boolean
  drained(): Promise<void>
}

export interface ReplyShape {
  /** The client asked for the RowDescription (always for a simple Query). */
  describe: boolean
  /** The client asked for the rows and the CommandComplete (false for Describe-only). */
  execute: boolean
  /** The Execute's row limit (0: none). Reached, the answer ends with PortalSuspended, as a server's would. */
  maxRows?: number
}

/** A read across shards stopped by an Execute row limit, whose portal may go on. */
export interface SuspendedScatter {
  /** Sends up to `maxRows` more rows (0: all the rest); false when the client got an error. */
  more(maxRows: number): Promise<boolean>
  /** Ends it without more rows: what the shards still run is cancelled, their connections given back. */
  close(): Promise<void>
}

export interface ShardConnection {
  placement: Placement
  conn: ServerConnection
}

/**
 * Connections of the client's READ ONLY transaction, one per shard, which the executor uses and leaves in the
 * transaction (no BEGIN or COMMIT of its own); without it, the executor takes its own from the pools.
 */
export interface TransactionConnections {
  /** The transaction's connection on each of these shards (joining them to it as needed), in shard order. */
  hold(shards: number[], role: Role): Promise<ShardConnection[]>
}

/** The batch a shard's part of such a read is fetched in: the client's row limit, within these bounds. */
const MIN_BATCH_ROWS = 100
const MAX_BATCH_ROWS = 1000

/** The text shard `shard` runs of `stmt` (a statement without `sqlByShard` runs as it is anywhere). */
export function shardText(stmt: ShardStatement, shard?: number): string {
  return shard === undefined ? stmt.sql : (stmt.sqlByShard?.[shard] ?? stmt.sql)
}

/** The statement as `conn`, of shard `shard`, runs it (its parameter types as that shard numbers them). */
export function encodeStatement(stmt: ShardStatement, conn: ServerConnection, shard?: number): Buffer {
  if (!stmt.bind) return encodeQuery(shardText(stmt, shard))
  const b = stmt.bind
  return Buffer.concat([
    encodeParse('', shardText(stmt, shard), conn.serverTypes(b.types)),
    encodeBind('', '', b.params, b.formats, b.resultFormats),
    encodeTarget('Describe', 'P', ''),
    encodeExecute('', 0),
    SYNC,
  ])
}

/**
 * Runs one client statement on several shards at once: a read merged into one result (scatter), or a write
 * sent to every shard or split per shard, all or nothing (each shard's part inside BEGIN … COMMIT, committed
 * only when every shard succeeded). Connections are taken in shard order, so two executors never wait on each
 * other in a cycle.
 */
export class MultiShardExecutor implements BatchedReadContext {
  constructor(
    private readonly services: SessionServices,
    identity: Identity,
    private readonly settings: SessionSettings,
    readonly out: ClientOutput,
    /** The client's cancel: gives up waiting for connections, cancels what the shards run. */
    private readonly cancel: AbortSignal,
    private readonly transaction: TransactionConnections | null = null,
    /**
     * The client keeps server connections meanwhile (session pooling parks one per shard it used): the pool's
     * reserve may serve it, or a client holding the last connection of a pool would wait for itself.
     */
    private readonly holding = false,
    /** Where a shard's statement runs for this client (read-your-writes may keep it off a lagging replica). */
    private readonly placeFor: (shard: number, role: Role) => Placement = (shard, role) => services.place(shard, role, identity),
  ) {}

  /** The statement runs inside the client's transaction: its COMMIT or ROLLBACK ends what runs here. */
  get inTransaction(): boolean {
    return this.transaction !== null
  }

  /** The connections a statement runs on: the transaction's, or the pools' (given back by `giveBack`). */
  connections(shards: number[], role: Role): Promise<ShardConnection[]> {
    return this.transaction ? this.transaction.hold(shards, role) : this.hold(shards, role)
  }

  giveBack(held: ShardConnection[]): void {
    if (!this.transaction) this.letGo(held)
  }

  /** While `work` runs on the held connections, a client's cancel is sent to each of them. */
  async cancellable<T>(held: ShardConnection[], work: () => Promise<T>): Promise<T> {
    const onCancel = () => {
      for (const h of held) this.services.cancel(h.placement.nodeName, h.conn)
    }
    this.cancel.addEventListener('abort', onCancel, { once: true })
    try {
      return await work()
    } finally {
      this.cancel.removeEventListener('abort', onCancel)
    }
  }

  /** Connections to these shards (each once, taken in shard order), brought to the client's settings. */
  private async hold(shards: number[], role: Role): Promise<ShardConnection[]> {
    const held: ShardConnection[] = []
    try {
      for (const shard of [...new Set(shards)].sort((a, b) => a - b)) {
        const placement = this.placeFor(shard, role)
        const conn = await placement.pool.acquire(this.cancel, this.holding || held.length > 0)
        held.push({ placement, conn })
        await syncSettings(conn, this.settings)
      }
      return held
    } catch (err) {
      this.letGo(held)
      throw err
    }
  }

  private letGo(held: ShardConnection[]): void {
    for (const h of held) h.placement.pool.release(h.conn)
  }

  /**
   * A read on every shard, merged. Returns false when the client got an error. With a row limit
   * (`shape.maxRows`) the answer stops at that many rows with PortalSuspended; outside a transaction, given
   * `onSuspend`, the rest waits for the client's next Execute (the shards' connections paused, so that nothing
   * piles up) and `onSuspend` gets the handle; otherwise the rest is read and dropped.
   */
  async scatter(
    shards: number[],
    role: Role,
    plan: ScatterPlan,
    stmt: ShardStatement,
    shape: ReplyShape,
    param: (n: number) => BoundParam | undefined,
    onSuspend?: (portal: SuspendedScatter) => void,
    /** Told, once the read ran to its end, each shard's part of the answer (by shard number). */
    onShares?: (shares: readonly RowShare[]) => void,
  ): Promise<boolean> {
    const held = await this.connections(shards, role)
    if (this.transaction && onSuspend && (shape.maxRows ?? 0) > 0 && stmt.bind) return this.scatterInBatches(held, plan, stmt, shape, param, onSuspend)
    const index = new Map(held.map((h, i) => [h.conn, i]))
    const described: (FieldDescription[] | null)[] = held.map(() => null)
    const waiting: (Buffer | null)[][][] = held.map(() => [])
    const finished: boolean[] = held.map(() => false)
    let merger: ResultMerger | null = null
    let failure: PgError | null = null
    const started = performance.now()
    const keep = onSuspend !== undefined && !this.transaction
    /** Merged rows the client has not had yet (kept only while the portal may go on). */
    let ready: (Buffer | string | null)[][] = []
    let next = 0
    /** Rows the current Execute may still send, and how many it sent. */
    let budget = (shape.maxRows ?? 0) > 0 ? shape.maxRows! : Infinity
    let sent = 0
    let parked = false
    let ended = false
    let spent: (() => void) | null = null
    const flush = () => {
      if (!merger || failure || ended) return
      const rows = merger.take()
      if (!shape.execute) return
      for (const r of rows) ready.push(r)
      while (budget > 0 && next < ready.length) {
        budget--
        sent++
        if (!this.out.emit(dataRow(ready[next++]!))) this.pauseUntilDrained(held, () => parked)
      }
      if (next === ready.length || !keep) {
        ready = []
        next = 0
      }
      if (budget === 0) spent?.()
    }
    const fail = (err: unknown) => {
      if (failure) return
      failure = asMergeFailure(err, this.services.mergeTypes)
      for (const h of held) this.services.cancel(h.placement.nodeName, h.conn)
    }
    const onDescription = (shard: number, fields: FieldDescription[]) => {
      described[shard] = fields
      if (described.some((d) => d === null)) return
      try {
        merger = mergerFor(plan, held, described as FieldDescription[][], param, this.services.mergeTypes)
        if (shape.describe) this.out.emit(rowDescription(clientFields(described[0]!, merger.outputColumns())))
        held.forEach((_, s) => {
          for (const row of waiting[s]) merger!.push(s, row)
          waiting[s] = []
          if (finished[s]) merger!.end(s)
        })
        flush()
      } catch (err) {
        fail(err)
      }
    }
    const replies = this.cancellable(held, () => Promise.allSettled(
      held.map((h) => {
        const s = index.get(h.conn)!
        return callShard(h.conn, encodeStatement(stmt, h.conn, h.placement.shard), {
          description: (fields) => onDescription(s, fields),
          row: (values) => {
            if (failure || ended) return
            if (!merger) {
              waiting[s].push(values)
              return
            }
            try {
              merger.push(s, values)
              flush()
            } catch (err) {
              fail(err)
            }
          },
        }).then((reply) => {
          if (reply.error && !failure && !ended) {
            // The statement fails as a whole: stop the other shards' work.
            failure = new PgError(reply.error.code, 'failed on another shard')
            for (const o of held) if (o !== h) this.services.cancel(o.placement.nodeName, o.conn)
          }
          finished[s] = true
          if (!reply.error && merger && !failure && !ended) {
            try {
              merger.end(s)
              flush()
            } catch (err) {
              fail(err)
            }
          }
          return reply
        })
      }),
    ))
    let given = false
    let measured = false
    const settled = async (): Promise<PromiseSettledResult<ShardReply>[]> => {
      const all = await replies
      if (!given) this.giveBack(held)
      given = true
      return all
    }
    const handle: SuspendedScatter = {
      more: (maxRows) => {
        budget = maxRows > 0 ? maxRows : Infinity
        sent = 0
        flush()
        if (parked && budget > 0) {
          parked = false
          for (const h of held) if (!h.conn.closed) h.conn.resume()
        }
        return answer()
      },
      close: async () => {
        ended = true
        ready = []
        if (!finished.every(Boolean)) for (const [i, h] of held.entries()) if (!finished[i]) this.services.cancel(h.placement.nodeName, h.conn)
        parked = false
        for (const h of held) if (!h.conn.closed) h.conn.resume()
        await settled()
      },
    }
    // Until the current Execute's rows are all sent (and more may come), or every shard answered.
    const stop = (): Promise<void> =>
      budget === 0 && keep
        ? Promise.resolve()
        : new Promise((resolve) => {
            spent = keep ? resolve : null
            void replies.then(() => resolve())
          })
    const answer = async (): Promise<boolean> => {
      await stop()
      spent = null
      if (keep && budget === 0 && !finished.every(Boolean) && !failure) {
        parked = true
        for (const h of held) h.conn.pause()
        if (shape.execute) this.out.emit(PORTAL_SUSPENDED)
        onSuspend!(handle)
        return true
      }
      const all = await settled()
      const firstError = all.find((r) => r.status === 'fulfilled' && r.value.error) as PromiseFulfilledResult<ShardReply> | undefined
      const lost = all.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
      if (firstError) {
        this.out.emit(firstError.value.error!.message)
        return false
      }
      if (lost) {
        this.out.emit(lostConnection(lost.reason))
        return false
      }
      if (failure) {
        this.out.emit(errorResponse(failure))
        return false
      }
      if (!measured) for (const h of held) this.services.metrics.query(h.placement.shardName, h.placement.role, true, (performance.now() - started) / 1000)
      measured = true
      if (onShares && merger) onShares(sharesByShard(held, merger))
      // As a server does, a limit reached ends in PortalSuspended even when no row was left; a portal run to
      // its end stays until its Sync too, and answers a further Execute with no rows.
      if (keep) onSuspend!(handle)
      if (budget === 0) {
        if (shape.execute) this.out.emit(PORTAL_SUSPENDED)
        return true
      }
      if (shape.execute) this.out.emit(commandComplete(`SELECT ${sent}`))
      return true
    }
    return answer()
  }

  /**
   * A read across shards merged only to learn each shard's part of its answer (SharedSubqueries), by shard
   * number: its rows go nowhere. Null when the client got the error.
   */
  async rowShares(shards: number[], role: Role, plan: ScatterPlan, stmt: ShardStatement, param: (n: number) => BoundParam | undefined): Promise<readonly RowShare[] | null> {
    const held = await this.connections(shards, role)
    // The rows are held until every shard answered: at most listen.max_message_size bytes of them.
    const limit = this.services.config().listen.max_message_size
    const rows: (Buffer | null)[][][] = held.map(() => [])
    let bytes = 0
    let tooLarge = false
    const keep = (i: number, row: (Buffer | null)[]) => {
      if (tooLarge) return
      for (const value of row) bytes += value?.length ?? 0
      if (bytes <= limit) rows[i]!.push(row)
      else {
        tooLarge = true
        for (const h of held) this.services.cancel(h.placement.nodeName, h.conn)
      }
    }
    try {
      const replies = await this.cancellable(held, () => Promise.allSettled(held.map((h, i) => callShard(h.conn, encodeStatement(stmt, h.conn, h.placement.shard), { row: (row) => keep(i, row) }))))
      if (tooLarge) {
        const error = new PgError(SqlState.PROGRAM_LIMIT_EXCEEDED, `the rows a subquery's LIMIT or OFFSET picks across shards exceed ${limit} bytes (listen.max_message_size), which pgshard holds to share them out`, {
          hint: 'Pick fewer rows or narrower ones in the subquery, or pin the key to one shard.',
        })
        this.out.emit(errorResponse(error))
        return null
      }
      const failed = replies.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
      if (failed) {
        this.out.emit(lostConnection(failed.reason))
        return null
      }
      const answers = replies.map((r) => (r as PromiseFulfilledResult<ShardReply>).value)
      const error = answers.find((a) => a.error)?.error
      if (error) {
        this.out.emit(error.message)
        return null
      }
      try {
        const merger = mergerFor(plan, held, answers.map((a) => a.fields ?? []), param, this.services.mergeTypes)
        rows.forEach((shardRows, s) => {
          for (const row of shardRows) merger.push(s, row)
          merger.end(s)
        })
        return sharesByShard(held, merger)
      } catch (err) {
        this.out.emit(errorResponse(asMergeFailure(err, this.services.mergeTypes)))
        return null
      }
    } finally {
      this.giveBack(held)
    }
  }

  /**
   * A read across shards inside a transaction with an Execute row limit (asyncpg's cursors, pgjdbc's fetch
   * size), fetched a part at a time (BatchedScatterRead): each Execute gets its rows and PortalSuspended, the
   * last one CommandComplete.
   */
  private async scatterInBatches(
    held: ShardConnection[],
    plan: ScatterPlan,
    stmt: ShardStatement,
    shape: ReplyShape,
    param: (n: number) => BoundParam | undefined,
    onSuspend: (portal: SuspendedScatter) => void,
  ): Promise<boolean> {
    const batch = Math.min(Math.max(shape.maxRows!, MIN_BATCH_ROWS), MAX_BATCH_ROWS)
    const read = await BatchedScatterRead.start(this, this.services, held, plan, { ...stmt, bind: stmt.bind! }, batch, param)
    if (!read) return false
    if (shape.describe) this.out.emit(read.description)
    const serve = async (maxRows: number): Promise<boolean> => {
      const budget = maxRows > 0 ? maxRows : Infinity
      const sent = await read.rows(this, budget, (row) => this.out.emit(dataRow(row)))
      if (sent === null) return false
      // As a server does, a limit reached ends in PortalSuspended even when no row was left.
      if (sent === budget) {
        if (shape.execute) this.out.emit(PORTAL_SUSPENDED)
        onSuspend(handle)
        return true
      }
      await read.close()
      if (shape.execute) this.out.emit(commandComplete(`SELECT ${sent}`))
      // Run to its end, the portal stays until the transaction ends and answers a further Execute with no rows.
      onSuspend(handle)
      return true
    }
    const handle: SuspendedScatter = { more: serve, close: () => read.close() }
    return serve(shape.maxRows!)
  }

  /**
   * COPY … TO STDOUT on every shard: one CopyOutResponse, every shard's rows as they come (a CSV header once),
   * one CopyDone and the total count. A shard's error ends it for the client, as a server's would.
   */
  async copyOut(shards: number[], role: Role, sql: string, header: boolean): Promise<void> {
    const held = await this.connections(shards, role)
    let started = false
    let headerSent = false
    let failure: PgError | null = null
    const seenFirst = held.map(() => false)
    try {
      const replies = await this.cancellable(held, () =>
        Promise.allSettled(
          held.map((h, i) =>
            callShard(h.conn, encodeQuery(sql), {
              copyOut: (message) => {
                if (started) return
                started = true
                this.out.emit(message)
              },
              copyData: (body) => {
                const first = !seenFirst[i]
                seenFirst[i] = true
                // Every shard starts with the same header line: the client gets it once, first.
                if (header && first && headerSent) return
                if (header && first) headerSent = true
                if (failure === null && !this.out.emit(copyData(body))) this.pauseUntilDrained(held)
              },
            }).then((reply) => {
              if (reply.error && failure === null) {
                failure = new PgError(reply.error.code, 'a shard failed the COPY')
                this.out.emit(reply.error.message)
                for (const other of held) if (other !== h) this.services.cancel(other.placement.nodeName, other.conn)
              }
              return reply
            }),
          ),
        ),
      )
      if (failure !== null) return
      const lost = replies.find((r) => r.status === 'rejected')
      if (lost) {
        this.out.emit(lostConnection(lost.reason))
        return
      }
      const total = replies.reduce((n, r) => n + (tagCount((r as PromiseFulfilledResult<ShardReply>).value.tags.at(-1) ?? '') ?? 0), 0)
      this.out.emit(COPY_DONE_REPLY)
      this.out.emit(commandComplete(`COPY ${total}`))
    } finally {
      this.giveBack(held)
    }
  }

  /**
   * A write on several shards, all or nothing: every part runs inside BEGIN on its shard; all commit only when
   * all succeeded. `tag` 'first' answers with the first part's tag (a reference table has the same rows
   * everywhere), 'sum' with the total row count.
   */
  async write(
    parts: { shard: number; stmt: ShardStatement }[],
    tag: 'first' | 'sum',
    shape: ReplyShape,
    transactional: boolean,
    role: Role = 'primary',
    /** A split INSERT's shard of each VALUES row, in the client's order: its RETURNING rows come back in it. */
    rowShards: number[] | null = null,
  ): Promise<boolean> {
    const held = await this.connections(parts.map((p) => p.shard), role)
    const conn = (shard: number) => held.find((h) => h.placement.shard === shard)!.conn
    // Inside the client's transaction, its COMMIT or ROLLBACK ends the parts.
    const own = transactional && !this.transaction
    try {
      if (own) await Promise.all(held.map((h) => callShard(h.conn, encodeQuery('BEGIN'))))
      // One shard after another, in shard order: two writes to the same rows on several shards (a reference
      // table's) then take their row locks in the same order, so neither holds one shard's lock while waiting for
      // the other's on another shard, where no server would see the deadlock. COMMIT is not cancellable: a cancel
      // only reaches the statements themselves.
      // The first part that fails ends the write: the others would be rolled back.
      const replies: PromiseSettledResult<ShardReply>[] = []
      const sorted = [...parts].sort((a, b) => a.shard - b.shard)
      await this.cancellable(held, async () => {
        for (const p of sorted) {
          try {
            const target = conn(p.shard)
            const reply = await callShard(target, encodeStatement(p.stmt, target, p.shard))
            replies.push({ status: 'fulfilled', value: reply })
            if (reply.error) return
          } catch (reason) {
            replies.push({ status: 'rejected', reason })
            return
          }
        }
      })
      const rowReplies = rowShards?.map((shard) => sorted.findIndex((p) => p.shard === shard)) ?? null
      return await this.settle(held, replies, tag, shape, own, null, rowReplies)
    } finally {
      this.giveBack(held)
    }
  }

  /**
   * Ends a write whose parts answered `replies` on the held connections (inside BEGIN when `transactional`):
   * all commit, or, when any part failed, all roll back and the client gets the first error. Returns whether
   * it committed. The connections stay held.
   */
  async settle(
    held: ShardConnection[],
    replies: PromiseSettledResult<ShardReply>[],
    tag: 'first' | 'sum',
    shape: ReplyShape,
    transactional: boolean,
    /** The error the client gets if any part failed (an ErrorResponse), when the first reply's is not the cause. */
    cause: Buffer | null = null,
    /** The reply that holds each returned row, in the client's order (a split INSERT's VALUES rows). */
    rowReplies: number[] | null = null,
  ): Promise<boolean> {
    const rollBack = async (error: Buffer): Promise<false> => {
      if (transactional) await Promise.allSettled(held.filter((h) => !h.conn.closed).map((h) => callShard(h.conn, encodeQuery('ROLLBACK'))))
      this.out.emit(error)
      return false
    }
    const failed = replies.find(isFailure)
    if (failed || cause) return rollBack(cause ?? failureMessage(failed!))
    const ok = replies.map((r) => (r as PromiseFulfilledResult<ShardReply>).value)
    if (transactional) {
      if (held.length > 1) {
        // Deferred constraints (a foreign key to a reference table's deleted row) are checked now on every
        // shard: a violation rolls all back with its own error, rather than failing one shard's COMMIT.
        const checks = await Promise.allSettled(held.map((h) => callShard(h.conn, encodeQuery('SET CONSTRAINTS ALL IMMEDIATE'))))
        const violated = checks.find(isFailure)
        if (violated) return rollBack(failureMessage(violated))
      }
      const commits = await Promise.allSettled(held.map((h) => callShard(h.conn, encodeQuery('COMMIT'))))
      const bad = commits.find(isFailure)
      if (bad) {
        const committed = held.filter((_, i) => !isFailure(commits[i]!)).map((h) => h.placement.shardName)
        // Every shard refused its COMMIT (none lost): the shards are as they were, and the client gets the error.
        if (committed.length === 0 && commits.every((c) => c.status === 'fulfilled')) {
          this.out.emit(failureMessage(bad))
          return false
        }
        const failedOn = held.filter((_, i) => isFailure(commits[i]!)).map((h) => h.placement.shardName)
        this.out.emit(
          errorResponse(
            new PgError(SqlState.CONNECTION_FAILURE, `COMMIT failed on shard ${failedOn.join(', ')} after it succeeded on ${committed.join(', ') || 'no shard (a lost connection leaves its outcome unknown)'}`, {
              hint: 'The shards now differ for this statement: check and repair by hand.',
            }),
          ),
        )
        return false
      }
    }
    const used = tag === 'first' ? ok.slice(0, 1) : ok
    if (ok[0].tags.length > 1) {
      this.emitStatements(used, ok, tag)
      return true
    }
    const fields = used.find((r) => r.fields)?.fields
    if (fields && shape.describe) this.out.emit(rowDescription(fields))
    if (shape.execute) {
      for (const row of inClientOrder(used, rowReplies)) this.out.emit(dataRow(row))
      this.out.emit(commandComplete(mergedTag(ok, tag, ok[0].tags.length - 1)))
    }
    return true
  }

  /** Several statements in one Query: each one's rows and command tag in turn, as one server answers them. */
  private emitStatements(used: ShardReply[], ok: ShardReply[], tag: 'first' | 'sum'): void {
    const offsets = used.map(() => 0)
    ok[0].tags.forEach((_, i) => {
      const fields = used.find((r) => r.statements[i]?.fields)?.statements[i]!.fields
      if (fields) this.out.emit(rowDescription(fields))
      used.forEach((r, j) => {
        const start = offsets[j]!
        const end = start + (r.statements[i]?.rows ?? 0)
        for (let k = start; k < end; k++) this.out.emit(dataRow(r.rows[k]!))
        offsets[j] = end
      })
      this.out.emit(commandComplete(mergedTag(ok, tag, i)))
    })
  }

  private pausing = false

  /** Pauses the shards until the client's socket drains; they stay paused if `parked` says so by then. */
  private pauseUntilDrained(held: ShardConnection[], parked: () => boolean = () => false): void {
    if (this.pausing) return
    this.pausing = true
    for (const h of held) h.conn.pause()
    void this.out.drained().then(() => {
      this.pausing = false
      if (!parked()) for (const h of held) if (!h.conn.closed) h.conn.resume()
    })
  }
}

/** The command tag of statement `i` of the shards' replies: the first shard's, or with the counts added up. */
function mergedTag(replies: ShardReply[], tag: 'first' | 'sum', i: number): string {
  const first = replies[0]!.tags[i] ?? ''
  if (tag !== 'sum' || tagCount(first) === null) return first
  return withCount(first, replies.reduce((a, r) => a + (tagCount(r.tags[i] ?? '') ?? 0), 0))
}

/**
 * The replies' rows, in the client's order when `rowReplies` gives it and every reply returned one row per
 * row it was given (each server returns an INSERT's RETURNING rows in VALUES order; ORMs such as Django's
 * bulk_create match them to their objects by position). When a reply returned fewer (ON CONFLICT DO NOTHING),
 * which rows are missing is unknown and they come shard by shard.
 */
function inClientOrder(replies: ShardReply[], rowReplies: number[] | null): (Buffer | null)[][] {
  const whole = () => replies.flatMap((r) => r.rows)
  if (rowReplies === null) return whole()
  const given = replies.map(() => 0)
  for (const k of rowReplies) given[k]++
  if (replies.some((r, k) => r.rows.length !== given[k])) return whole()
  const next = replies.map(() => 0)
  return rowReplies.map((k) => replies[k]!.rows[next[k]++]!)
}

export function isFailure(r: PromiseSettledResult<ShardReply>): boolean {
  return r.status === 'rejected' || r.value.error !== null
}

/** The ErrorResponse a failed shard call gives the client: the server's own, or a lost connection's. */
export function failureMessage(r: PromiseSettledResult<ShardReply>): Buffer {
  return r.status === 'fulfilled' ? r.value.error!.message : lostConnection(r.reason)
}

/** Each shard's part of a merged answer, by shard number. */
function sharesByShard(held: ShardConnection[], merger: ResultMerger): RowShare[] {
  const byShard: RowShare[] = []
  merger.rowShares().forEach((share, i) => (byShard[held[i]!.placement.shard] = share))
  return byShard
}
