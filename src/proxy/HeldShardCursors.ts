import { encodeBind, encodeExecute, encodeParse, encodeTarget, SYNC } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { commandComplete, dataRow, errorResponse, rowDescription } from '../protocol/ServerMessages.js'
import type { BoundParam } from '../router/Route.js'
import type { ScatterPlan } from '../router/StatementPlan.js'
import { BatchedScatterRead, callEach, type BatchedReadContext } from './BatchedScatterRead.js'
import type { MultiShardExecutor, ReplyShape, ShardConnection } from './MultiShardExecutor.js'
import { asMergeFailure, clientFields, mergerFor } from './ScatterMerge.js'
import type { SessionServices } from './SessionServices.js'
import { CURSOR_BATCH_ROWS, fetchFormat, type CursorRoute, type CursorTexts } from './CursorStatements.js'

interface HeldCursor {
  /** The connection to each shard that holds the shard's cursor, taken from the pools until CLOSE. */
  held: ShardConnection[]
  /** The cursor's name on every shard. */
  shardName: string
  plan: ScatterPlan
  param: (n: number) => BoundParam | undefined
  /** The client's RowDescription, as a text cursor. */
  description: Buffer
  binary: boolean
  /** Read from its first FETCH or MOVE on, in the format that one asked for. */
  read: BatchedScatterRead | null
}

/** Names the shards' cursors (unique in the process, hence on every connection). */
let heldCursors = 0

/**
 * SQL cursors declared WITH HOLD outside a transaction block over a query that reads several shards (Django's
 * iterator() and psycopg's named cursors in autocommit): each shard declares the cursor WITH HOLD on a
 * connection of its own, which materializes its rows at its commit, and the client keeps those connections,
 * outside the pool, until it closes the cursor or leaves; its other statements are pooled as usual. FETCH merges
 * the shards' rows in the query's order, reading each shard a batch at a time. Forward only.
 */
export class HeldShardCursors {
  private readonly open = new Map<string, HeldCursor>()
  /** The client left: a DECLARE still running gives its connections back. */
  private ended = false

  constructor(private readonly services: SessionServices) {}

  has(name: string): boolean {
    return this.open.has(name)
  }

  description(name: string): Buffer | undefined {
    return this.open.get(name)?.description
  }

  /** DECLARE … WITH HOLD on every shard; false when the client got an error. */
  async declare(route: Extract<CursorRoute, { op: 'declare' }>, executor: MultiShardExecutor, shards: number[], texts: CursorTexts): Promise<boolean> {
    const held = await executor.connections(shards, route.scatter.role)
    const shardName = `pgshard_hold_${++heldCursors}`
    const b = texts.bind
    const plan = route.scatter.plan
    let description: Buffer
    try {
      const replies = await callEach(executor, held, held.map((_, i) => i), (conn, shard) => Buffer.concat([
        encodeParse('', `DECLARE ${shardName} NO SCROLL CURSOR WITH HOLD FOR ${texts.sqlByShard?.[shard] ?? texts.sql}`, conn.serverTypes(b.types)),
        encodeBind('', '', b.params, b.formats, []),
        encodeExecute('', 0),
        encodeTarget('Describe', 'P', shardName),
        SYNC,
      ]))
      if (!replies || this.ended) {
        this.letGo(held)
        return false
      }
      const fields = replies.map((r) => r.fields!)
      description = rowDescription(clientFields(fields[0]!, mergerFor(plan, held, fields, texts.param, this.services.mergeTypes).outputColumns()))
    } catch (err) {
      this.letGo(held)
      executor.out.emit(errorResponse(asMergeFailure(err, this.services.mergeTypes)))
      return false
    }
    this.open.set(route.name, { held, shardName, plan, param: texts.param, description, binary: route.binary, read: null })
    executor.out.emit(commandComplete('DECLARE CURSOR'))
    return true
  }

  /** FETCH or MOVE; false when the client got an error (the cursor is closed then: its merge cannot go on). */
  async fetch(route: Extract<CursorRoute, { op: 'fetch' }>, ctx: BatchedReadContext, resultFormats: number[] | undefined, shape: ReplyShape): Promise<boolean> {
    const cursor = this.existing(route.name)
    const out = ctx.out
    const binary = fetchFormat(route.name, resultFormats, cursor.binary)
    if (cursor.read === null) {
      // Its first FETCH settles the format of every row it reads from the shards.
      if (!route.move) cursor.binary = binary
      const read = await BatchedScatterRead.fromCursors(ctx, this.services, cursor.held, cursor.plan, cursor.shardName, cursor.binary ? [1] : [], CURSOR_BATCH_ROWS, cursor.param)
      if (!read) return this.fail(route.name)
      cursor.read = read
    } else if (binary !== cursor.binary && !route.move) {
      throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `cursor "${route.name}" reads several shards: its rows cannot change format after the first FETCH`, { hint: 'Fetch it in one format.' })
    }
    if (shape.describe && !route.move) out.emit(cursor.read.description)
    if (!shape.execute) return true
    const max = route.count === 'all' ? Infinity : route.count
    const sent = await cursor.read.rows(ctx, max, route.move ? null : (row) => out.emit(dataRow(row)))
    if (sent === null) return this.fail(route.name)
    out.emit(commandComplete(`${route.move ? 'MOVE' : 'FETCH'} ${sent}`))
    return true
  }

  close(name: string): void {
    const cursor = this.existing(name)
    this.open.delete(name)
    this.letGo(cursor.held)
  }

  /** CLOSE ALL or DISCARD ALL: every cursor ends. */
  closeAll(): void {
    for (const name of [...this.open.keys()]) this.close(name)
  }

  /** The client left. */
  end(): void {
    this.ended = true
    this.closeAll()
  }

  private existing(name: string): HeldCursor {
    const cursor = this.open.get(name)
    if (cursor === undefined) throw new PgError(SqlState.INVALID_CURSOR_NAME, `cursor "${name}" does not exist`)
    return cursor
  }

  /** Its merge cannot go on: closed, unless the client's leaving closed it meanwhile. */
  private fail(name: string): false {
    if (this.open.has(name)) this.close(name)
    return false
  }

  /** The shards' cursors end with DISCARD ALL, which the pool runs before anyone else gets the connection. */
  private letGo(held: ShardConnection[]): void {
    for (const h of held) {
      h.conn.dirty = true
      h.placement.pool.release(h.conn)
    }
  }
}
