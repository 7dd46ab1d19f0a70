import { PgError, SqlState } from '../protocol/PgError.js'
import { NO_DATA, commandComplete, dataRow } from '../protocol/ServerMessages.js'
import type { BoundParam } from '../router/Route.js'
import { BatchedScatterRead, type BatchedReadContext } from './BatchedScatterRead.js'
import { CURSOR_BATCH_ROWS, fetchFormat, type CursorRoute, type CursorTexts } from './CursorStatements.js'
import type { MultiShardExecutor, ReplyShape, ShardStatement } from './MultiShardExecutor.js'
import { restoreLiterals } from '../router/LiteralNormalizer.js'
import type { SessionServices } from './SessionServices.js'
import { sharedTexts } from './SharedSubqueries.js'
import { HeldShardCursors } from './HeldShardCursors.js'
import { innerParam } from './StatementParams.js'

interface OpenCursor {
  read: BatchedScatterRead
  binary: boolean
  /** A FETCH or MOVE read from it: its format is settled. */
  fetched: boolean
  /** Starts the read on the shards again, in text or binary format. */
  start(ctx: BatchedReadContext, binary: boolean): Promise<BatchedScatterRead | null>
  /** Savepoints open when it was declared. */
  depth: number
}

/**
 * SQL cursors declared over several shards inside a transaction that may span shards (psycopg's named cursors,
 * SQLAlchemy's stream_results, Django's iterator() in a transaction): each shard reads the cursor's query as a
 * portal of its own in the transaction, and FETCH merges them a part at a time (BatchedScatterRead), in the
 * query's order, so that the transaction's other statements run between fetches. Forward only; they end with
 * CLOSE or with the transaction. Those declared WITH HOLD outside a transaction block: HeldShardCursors.
 */
export class ShardCursors {
  private readonly open = new Map<string, OpenCursor>()
  /** Those declared WITH HOLD outside a transaction block, which outlive it. */
  private readonly held: HeldShardCursors

  /** `savepoints`: how many savepoints the transaction has open now. */
  constructor(
    private readonly services: SessionServices,
    private readonly savepoints: () => number,
  ) {
    this.held = new HeldShardCursors(services)
  }

  has(name: string): boolean {
    return this.open.has(name) || this.held.has(name)
  }

  /** The RowDescription of a cursor's rows (a client's Describe of the cursor as a portal), if it is one of these. */
  description(name: string): Buffer | undefined {
    return this.open.get(name)?.read.description ?? this.held.description(name)
  }

  /** The transaction ended: the shards' portals ended, or end with it. */
  endTransaction(): void {
    this.open.clear()
  }

  /** CLOSE ALL or DISCARD ALL: every cursor ends, those held too. */
  closeAll(): void {
    this.open.clear()
    this.held.closeAll()
  }

  /** The client left: the held cursors' connections go back to the pools. */
  end(): void {
    this.open.clear()
    this.held.end()
  }

  /**
   * ROLLBACK TO a savepoint, which is now the innermost of `depth` open ones: the cursors declared since it are
   * gone, as on a server (the shards dropped their portals with the subtransaction).
   */
  rolledBackTo(depth: number): void {
    for (const [name, cursor] of this.open) if (cursor.depth >= depth) this.open.delete(name)
  }

  /**
   * Runs a DECLARE, FETCH, MOVE or CLOSE on such a cursor; `stmt` is the client's statement (its Bind, in the
   * extended protocol, where a Describe answers NoData for all but FETCH). False when the client got an error.
   */
  async run(route: CursorRoute, executor: MultiShardExecutor, shards: number[], stmt: ShardStatement, shape: ReplyShape, restore: (sql: string) => string, param: (n: number) => BoundParam | undefined): Promise<boolean> {
    const extended = stmt.bind !== undefined
    const out = executor.out
    if (shape.describe && extended && !(route.op === 'fetch' && !route.move)) out.emit(NO_DATA)
    if (route.op === 'declare') {
      if (!shape.execute) return true
      const texts = await cursorTexts(route, executor, shards, stmt, restore, param)
      if (texts === null) return false
      if (route.hold) return this.held.declare(route, executor, shards, texts)
      const held = await executor.connections(shards, route.scatter.role)
      const start = (ctx: BatchedReadContext, binary: boolean) =>
        BatchedScatterRead.start(ctx, this.services, held, route.scatter.plan, { ...texts, bind: { ...texts.bind, resultFormats: binary ? [1] : [] } }, CURSOR_BATCH_ROWS, texts.param)
      const read = await start(executor, route.binary)
      if (!read) return false
      this.open.set(route.name, { read, binary: route.binary, fetched: false, start, depth: this.savepoints() })
      out.emit(commandComplete('DECLARE CURSOR'))
      return true
    }
    if (this.held.has(route.name)) {
      if (route.op === 'fetch') return this.held.fetch(route, executor, stmt.bind?.resultFormats, shape)
      if (shape.execute) {
        this.held.close(route.name)
        out.emit(commandComplete('CLOSE CURSOR'))
      }
      return true
    }
    // Ended since its statement was routed (the transaction, CLOSE ALL, a rollback to a savepoint): gone, as on a server.
    const cursor = this.open.get(route.name)
    if (cursor === undefined) throw new PgError(SqlState.INVALID_CURSOR_NAME, `cursor "${route.name}" does not exist`)
    if (route.op === 'close') {
      if (!shape.execute) return true
      this.open.delete(route.name)
      await cursor.read.close()
      out.emit(commandComplete('CLOSE CURSOR'))
      return true
    }
    // The rows come in the format the FETCH's Bind asks for (psycopg's binary cursors), else the DECLARE's.
    const binary = fetchFormat(route.name, stmt.bind?.resultFormats, cursor.binary)
    if (binary !== cursor.binary && !route.move) {
      // Read again in that format on every shard, before the client had any row; afterwards it cannot change.
      if (cursor.fetched) throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `cursor "${route.name}" reads several shards: its rows cannot change format after the first FETCH`, { hint: 'Fetch it in one format.' })
      await cursor.read.close()
      const again = await cursor.start(executor, binary)
      if (!again) {
        this.open.delete(route.name)
        return false
      }
      cursor.read = again
      cursor.binary = binary
    }
    cursor.fetched = true
    if (shape.describe && !route.move) out.emit(cursor.read.description)
    if (!shape.execute) return true
    const max = route.count === 'all' ? Infinity : route.count
    const sent = await cursor.read.rows(executor, max, route.move ? null : (row) => out.emit(dataRow(row)))
    if (sent === null) return false
    out.emit(commandComplete(`${route.move ? 'MOVE' : 'FETCH'} ${sent}`))
    return true
  }
}

/**
 * The texts each shard runs of a DECLARE's query (analyzed on its own: its literals are its own, the DECLARE's
 * parameters, a Bind's, are not); null when the client got an error.
 */
async function cursorTexts(route: Extract<CursorRoute, { op: 'declare' }>, executor: MultiShardExecutor, shards: number[], stmt: ShardStatement, restore: (sql: string) => string, param: (n: number) => BoundParam | undefined): Promise<CursorTexts | null> {
  const q = route.query
  const restored = (text: string) => restore(restoreLiterals(text, q.firstParam, q.sources ?? []))
  const plan = route.scatter.plan
  if (plan.countRows !== undefined) throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `a cursor over count(*) of a subquery whose rows pgshard counts across shards (${route.reason})`, { hint: 'Run the count without a cursor.' })
  const inner = innerParam(q, param)
  const sqlByShard = plan.limited ? await sharedTexts(executor, shards, route.scatter.role, plan, stmt, restored, inner, true) : undefined
  if (sqlByShard === null) return null
  const bind = stmt.bind ?? { params: [], formats: [], types: [], resultFormats: [] }
  return { sql: restored(plan.shardSql), bind, param: inner, ...(sqlByShard ? { sqlByShard } : {}) }
}
