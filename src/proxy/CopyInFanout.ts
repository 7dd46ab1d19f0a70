import type { ServerConnection } from '../pool/ServerConnection.js'
import { COPY_DONE, encodeCopyData, encodeCopyFail, encodeQuery } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { errorResponse } from '../protocol/ServerMessages.js'
import { BinaryCopyRowRouter } from '../router/BinaryCopyRowRouter.js'
import { CopyRowRouter, type CopyRows } from '../router/CopyRowRouter.js'
import type { KeyShard } from '../router/Route.js'
import { quoteLiteral } from '../router/SqlQuoting.js'
import type { CopyShape } from '../router/StatementPlan.js'
import type { MultiShardExecutor, ShardConnection } from './MultiShardExecutor.js'
import { TypeOid } from '../router/merge/TypeOid.js'
import { CopyKeyQueue } from './CopyKeyQueue.js'
import { callShard, type ShardReply } from './ShardCall.js'

/** Each row to the shard of its key (a sharded table); without it every row goes to every shard. */
export interface CopySplit {
  copy: CopyShape
  key: string
  keyShard: KeyShard
  /**
   * The column list leaves out a column pgshard makes: the key (`places`), or a column it draws; `take` gives
   * `count` more values, as text.
   */
  made?: { column: string; places: boolean; take: (count: number) => Promise<string[]> }
}

/**
 * One COPY … FROM STDIN that runs on several shards: a reference table's rows go to every shard, a sharded
 * table's each to the shard of its key. Every shard runs the client's COPY inside a transaction of its own (or
 * the client's, across shards, which its COMMIT or ROLLBACK ends); the
 * client's data goes on as it arrives (cut into rows when split), and the client is paused while a shard's socket
 * is full. At the client's CopyDone all shards commit — or, if any refused a row, or a row's key was bad, or the
 * client cancelled or sent CopyFail, all roll back and the client gets that error, as from one server.
 */
export class CopyInFanout {
  /** A shard's COPY has answered (done or failed): nothing more goes to it. */
  private readonly over: boolean[]
  /** The first thing that went wrong: a shard's ErrorResponse, or the proxy's own error. */
  private cause: Buffer | null = null
  private readonly onCancel = () => this.fail(errorResponse(new PgError(SqlState.QUERY_CANCELED, 'canceling statement due to user request')))

  private constructor(
    private readonly executor: MultiShardExecutor,
    private readonly held: ShardConnection[],
    private readonly finals: Promise<ShardReply>[],
    private readonly router: CopyRows | null,
    private readonly keys: CopyKeyQueue | null,
    private readonly cancel: AbortSignal,
  ) {
    this.over = held.map(() => false)
    finals.forEach((f, i) =>
      f.then(
        (reply) => {
          this.over[i] = true
          if (reply.error) this.fail(reply.error.message)
        },
        (err: unknown) => {
          this.over[i] = true
          this.fail(errorResponse(new PgError(SqlState.CONNECTION_FAILURE, err instanceof Error ? err.message : String(err))))
        },
      ),
    )
    cancel.addEventListener('abort', this.onCancel, { once: true })
  }

  /**
   * Starts `sql` (the client's COPY) on every shard and sends the client a CopyInResponse. Null when it could not
   * start: the client got the error then, and nothing is held.
   */
  static async open(executor: MultiShardExecutor, emit: (bytes: Buffer) => void, shards: number[], sql: string, split: CopySplit | null, cancel: AbortSignal): Promise<CopyInFanout | null> {
    const held = await executor.connections(shards, 'primary')
    const own = !executor.inTransaction
    let finals: Promise<ShardReply>[] = []
    try {
      for (const h of own ? held : []) {
        const begun = await callShard(h.conn, encodeQuery('BEGIN'))
        if (begun.error) throw begun.error.message
      }
      const keys = split?.made ? new CopyKeyQueue(split.made.column, split.made.places, split.made.take) : null
      const router = split && (await rowRouter(split, held[0].conn, held.length, keys))
      const ready: Promise<Buffer>[] = []
      finals = held.map((h) => {
        let copyIn!: (message: Buffer) => void
        ready.push(new Promise((resolve) => (copyIn = resolve)))
        return callShard(h.conn, encodeQuery(sql), { copyIn })
      })
      const failedFirst = Promise.race(finals.map((f) => f.then((r) => r.error?.message ?? errorResponse(unexpected()), () => errorResponse(unexpected()))))
      const started = await Promise.race([Promise.all(ready), failedFirst])
      if (!Array.isArray(started)) throw started
      const fanout = new CopyInFanout(executor, held, finals, router, keys, cancel)
      emit(started[0])
      return fanout
    } catch (err) {
      // Shards already in COPY mode are ended; every shard's transaction rolls back.
      for (const h of held) h.conn.write(encodeCopyFail('pgshard could not start the COPY on every shard'))
      await Promise.allSettled(finals)
      const cause = Buffer.isBuffer(err) ? err : errorResponse(err instanceof PgError ? err : new PgError(SqlState.INTERNAL_ERROR, String(err)))
      try {
        await executor.settle(held, [], 'sum', { describe: false, execute: true }, own, cause)
      } finally {
        executor.giveBack(held)
      }
      return null
    }
  }

  /** The COPY runs inside the client's transaction across shards. */
  get inTransaction(): boolean {
    return this.executor.inTransaction
  }

  /** Something went wrong: the COPY ends at the client's next message. */
  get failed(): boolean {
    return this.cause !== null
  }

  /** Passes on one CopyData message of the client; resolves when every shard written to can take more. */
  send(raw: Buffer, body: Buffer): Promise<void> | void {
    if (this.cause) return
    if (this.router === null) {
      const full: ServerConnection[] = []
      this.held.forEach((h, i) => this.over[i] || h.conn.write(raw) || full.push(h.conn))
      return drained(full)
    }
    let rows: Buffer[]
    try {
      rows = this.router.cut(body)
    } catch (err) {
      this.fail(errorResponse(asPgError(err)))
      return
    }
    const waiting = this.keys?.ensure(rows.length)
    if (!waiting) return this.routeRows(rows)
    // The client's read buffer is not ours past this call: the rows wait for their keys in copies.
    const kept = rows.map((r) => Buffer.from(r))
    return waiting.then(
      () => this.routeRows(kept),
      (err: unknown) => this.fail(errorResponse(asPgError(err))),
    )
  }

  private routeRows(rows: Buffer[]): Promise<void> | void {
    if (this.cause) return
    const full: ServerConnection[] = []
    try {
      this.writeRows(this.router!.route(rows), full)
    } catch (err) {
      this.fail(errorResponse(asPgError(err)))
      return
    }
    return drained(full)
  }

  /** `rows` by shard index; `held` is one connection per shard, in shard order (MultiShardExecutor.hold). */
  private writeRows(rows: Buffer[][], full: ServerConnection[]): void {
    rows.forEach((r, i) => {
      if (r.length === 0 || this.over[i]) return
      const conn = this.held[i].conn
      if (!conn.write(encodeCopyData(r))) full.push(conn)
    })
  }

  /**
   * The client's CopyDone (`clientFailure` null) or CopyFail, or the end of a COPY that failed: every shard ends
   * its COPY, then all commit (the client gets `COPY n`) or all roll back (the client gets the error). Returns
   * whether they committed.
   */
  async finish(clientFailure: string | null): Promise<boolean> {
    this.cancel.removeEventListener('abort', this.onCancel)
    if (this.router && !this.cause && clientFailure === null) {
      try {
        // A last row without a line end needs its key too.
        await this.keys?.ensure(1)
        this.writeRows(this.router.end(), [])
      } catch (err) {
        this.fail(errorResponse(asPgError(err)))
      }
    }
    const ending = this.cause || clientFailure !== null ? encodeCopyFail(clientFailure ?? 'pgshard ended the COPY') : COPY_DONE
    this.held.forEach((h, i) => this.over[i] || h.conn.write(ending))
    const replies = await Promise.allSettled(this.finals)
    try {
      // A client's CopyFail: each shard's own answer to it says so, as a server would.
      return await this.executor.settle(this.held, replies, this.router ? 'sum' : 'first', { describe: false, execute: true }, !this.executor.inTransaction, clientFailure === null ? this.cause : null)
    } finally {
      this.executor.giveBack(this.held)
    }
  }

  /** The proxy ends the COPY with this error, or ErrorResponse (finish then rolls every shard back). */
  abort(err: PgError | Buffer): void {
    this.fail(Buffer.isBuffer(err) ? err : errorResponse(err))
  }

  private fail(cause: Buffer): void {
    if (this.cause) return
    this.cause = cause
    // Shards still reading stop now (their transactions roll back at finish).
    this.held.forEach((h, i) => this.over[i] || h.conn.write(encodeCopyFail('pgshard ended the COPY')))
  }
}

/**
 * The row router for a split COPY: the key's position among the columns, read from the table when none are
 * listed, and for binary data the key column's type (its binary form depends on it).
 */
async function rowRouter(split: CopySplit, conn: ServerConnection, shards: number, keys: CopyKeyQueue | null): Promise<CopyRows> {
  const binary = split.copy.format === 'binary'
  let columns = split.copy.columns
  let keyType = 0
  let madeType = 0
  if (columns === null || binary) {
    const reply = await callShard(
      conn,
      encodeQuery(
        `SELECT attname, atttypid FROM pg_catalog.pg_attribute WHERE attrelid = ${quoteLiteral(split.copy.table)}::pg_catalog.regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
      ),
    )
    if (reply.error) throw reply.error.message
    const all = reply.rows.map((r) => ({ name: r[0]!.toString('utf8'), type: Number(r[1]!.toString('utf8')) }))
    columns ??= all.map((c) => c.name)
    keyType = all.find((c) => c.name === split.key)?.type ?? 0
    madeType = keys ? (all.find((c) => c.name === keys.column)?.type ?? 0) : 0
  }
  const keyIndex = keys?.places ? -1 : columns.indexOf(split.key)
  if (keyIndex < 0 && !keys?.places)
    throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `COPY into ${split.copy.table} must include its sharding key column ${split.key}: pgshard sends each row to the shard of its key`)
  if (binary) {
    const made = keys && { keys, encode: binaryKey(madeType, split.copy.table, keys.column) }
    return new BinaryCopyRowRouter(columns.length, keyIndex, split.key, (value) => split.keyShard(value, 1, keyType), shards, made)
  }
  return new CopyRowRouter(split.copy, keyIndex, split.key, (text) => split.keyShard(text, 0, 0), shards, keys)
}

/** How a made key's text is written in a binary COPY, by the key column's type. */
function binaryKey(typeOid: number, table: string, column: string): (key: string) => Buffer {
  const integer = (bytes: number) => (key: string) => {
    const b = Buffer.alloc(bytes)
    if (bytes === 8) b.writeBigInt64BE(BigInt(key))
    else b.writeInt32BE(Number(key))
    return b
  }
  if (typeOid === TypeOid.int8) return integer(8)
  if (typeOid === TypeOid.int4) return integer(4)
  if (typeOid === TypeOid.uuid) return (key) => Buffer.from(key.replaceAll('-', ''), 'hex')
  throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `binary COPY into ${table}: pgshard makes keys for column ${column} of type oid ${typeOid} only in text and CSV format`)
}

function unexpected(): PgError {
  return new PgError(SqlState.CONNECTION_FAILURE, 'a shard ended the COPY before it started')
}

/** Resolves when every full connection has drained; nothing to wait for when none is full. */
function drained(full: ServerConnection[]): Promise<void> | void {
  if (full.length > 0) return Promise.all(full.map((c) => c.drained())).then(() => undefined)
}

function asPgError(err: unknown): PgError {
  return err instanceof PgError ? err : new PgError(SqlState.INTERNAL_ERROR, String(err))
}
