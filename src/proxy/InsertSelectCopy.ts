import { PgError, SqlState } from '../protocol/PgError.js'
import { commandComplete, errorResponse } from '../protocol/ServerMessages.js'
import { quoteIdent } from '../router/SqlQuoting.js'
import type { CopyShape } from '../router/StatementPlan.js'
import type { Role } from '../router/Route.js'
import { CopyInFanout, type CopySplit } from './CopyInFanout.js'
import type { ClientOutput, MultiShardExecutor } from './MultiShardExecutor.js'

const COPY_DATA = 0x64
const ERROR_RESPONSE = 0x45
const COMMAND_COMPLETE = 0x43

export interface InsertSelectRun {
  /** Writes the rows; its output is the client's (a `COPY n` tag is told as `INSERT 0 n`). */
  writer: (out: ClientOutput) => MultiShardExecutor
  /** Reads the rows into the output it is given. */
  reader: (out: ClientOutput) => MultiShardExecutor
  client: ClientOutput
  /** The shards of the target table, and the COPY … FROM STDIN that takes the rows there. */
  shards: number[]
  copy: string
  split: CopySplit
  /** The `COPY (query) TO STDOUT` that makes the rows, and the shards it runs on. */
  source: { sql: string; shards: number[]; role: Role }
  /**
   * Read every row before writing any, keeping at most this many bytes of them (a transaction across shards,
   * whose connections serve both the read and the write); null: rows go on to their shards as they come.
   */
  readFirst: number | null
  cancel: AbortSignal
}

/**
 * INSERT … SELECT whose rows find their shards only once they exist: the query runs as `COPY (query) TO STDOUT`
 * (one shard, or every shard's rows one after another), and its rows, already in COPY's text format, go through
 * the same fan-out as a client's COPY into the table: each to the shard of its key, all or nothing. Returns
 * whether it committed (the client got `INSERT 0 n`, or the error).
 */
export async function insertSelectRows(run: InsertSelectRun): Promise<boolean> {
  const writer = run.writer(retagged(run.client))
  if (run.readFirst === null) {
    const fanout = await CopyInFanout.open(writer, () => undefined, run.shards, run.copy, run.split, run.cancel)
    if (fanout === null) return false
    const rows = new RowsToFanout(fanout)
    await readRows(run, rows)
    // Rows still waiting for keys pgshard makes go out before the COPY ends.
    await rows.drained()
    return fanout.finish(null)
  }
  const kept = new KeptRows(run.readFirst)
  const failure = (await readRows(run, kept)) ?? kept.overflow()
  if (failure !== null) {
    run.client.emit(failure)
    return false
  }
  const fanout = await CopyInFanout.open(writer, () => undefined, run.shards, run.copy, run.split, run.cancel)
  if (fanout === null) return false
  for (const row of kept.rows) await fanout.send(row, row.subarray(5))
  return fanout.finish(null)
}

interface RowSink extends ClientOutput {
  /** The read's error (an ErrorResponse), if it failed. */
  failed: Buffer | null
}

/** Runs the read into `sink`; returns the read's error (an ErrorResponse), if it failed. */
async function readRows(run: InsertSelectRun, sink: RowSink): Promise<Buffer | null> {
  try {
    await run.reader(sink).copyOut(run.source.shards, run.source.role, run.source.sql, false)
  } catch (err) {
    sink.emit(errorResponse(err instanceof PgError ? err : new PgError(SqlState.INTERNAL_ERROR, String(err))))
  }
  return sink.failed
}

/** The read's CopyData messages straight to the fan-out, pausing the read while a shard's socket is full. */
class RowsToFanout implements RowSink {
  failed: Buffer | null = null
  private pending: Promise<void> | null = null

  constructor(private readonly fanout: CopyInFanout) {}

  emit(bytes: Buffer): boolean {
    if (bytes[0] === ERROR_RESPONSE) {
      this.failed ??= bytes
      this.fanout.abort(bytes)
    }
    if (bytes[0] !== COPY_DATA) return true
    const waiting = this.fanout.send(bytes, bytes.subarray(5))
    if (!waiting) return this.pending === null
    const before = this.pending
    const all: Promise<void> = (before ? Promise.all([before, waiting]) : waiting).then(() => {
      if (this.pending === all) this.pending = null
    })
    this.pending = all
    return false
  }

  drained(): Promise<void> {
    return this.pending ?? Promise.resolve()
  }
}

/** The read's CopyData messages kept (copies), up to a number of bytes. */
class KeptRows implements RowSink {
  failed: Buffer | null = null
  readonly rows: Buffer[] = []
  private bytes = 0

  constructor(private readonly limit: number) {}

  emit(bytes: Buffer): boolean {
    if (bytes[0] === ERROR_RESPONSE) this.failed ??= bytes
    if (bytes[0] !== COPY_DATA || this.bytes > this.limit) return true
    this.bytes += bytes.length
    if (this.bytes <= this.limit) this.rows.push(Buffer.from(bytes))
    else this.rows.length = 0
    return true
  }

  drained(): Promise<void> {
    return Promise.resolve()
  }

  /** The error when the rows did not fit. */
  overflow(): Buffer | null {
    if (this.bytes <= this.limit) return null
    return errorResponse(
      new PgError(SqlState.PROGRAM_LIMIT_EXCEEDED, `INSERT … SELECT inside a transaction across shards reads its rows before writing them, and they exceed ${this.limit} bytes (listen.max_message_size)`, {
        hint: 'Run it outside the transaction block (its rows then go to their shards as they come), or in parts.',
      }),
    )
  }
}

/** The client's output, with the COPY's `COPY n` told as the INSERT's `INSERT 0 n`. */
function retagged(client: ClientOutput): ClientOutput {
  return {
    emit: (bytes) => {
      if (bytes[0] === COMMAND_COMPLETE && bytes.toString('latin1', 5, 10) === 'COPY ') {
        return client.emit(commandComplete(`INSERT 0 ${bytes.toString('latin1', 10, bytes.length - 1)}`))
      }
      return client.emit(bytes)
    },
    drained: () => client.drained(),
  }
}

/** The COPY … FROM STDIN (text format) of a table and its columns. */
export function copyInto(copy: CopyShape): string {
  return `COPY ${copy.table}${copy.columns === null ? '' : ` (${copy.columns.map(quoteIdent).join(', ')})`} FROM STDIN`
}
