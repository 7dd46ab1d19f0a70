import { PgError } from '../protocol/PgError.js'
import { KeyEncodingError } from './KeyEncoding.js'
import type { CopyRows, MadeKeys } from './CopyRowRouter.js'

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
/** Signature, flags and the length of the header extension. */
const HEADER_BYTES = SIGNATURE.length + 8
const MAX_ROW_BYTES = 64 * 1024 * 1024

const BAD_COPY_FORMAT = '22P04'
const NOT_NULL_VIOLATION = '23502'
const PROGRAM_LIMIT_EXCEEDED = '54000'

/**
 * Cuts the data of a COPY … FROM STDIN (FORMAT binary), arriving in chunks of any size, into tuples (a field
 * count, then each field's length and bytes), reads each tuple's key field and says which shard it goes to.
 * The header and the trailer go to every shard, whose COPY reads them too. asyncpg's copy_records_to_table
 * and psycopg's binary copy send this format.
 */
export class BinaryCopyRowRouter implements CopyRows {
  private carry: Buffer | null = null
  /** The header has been cut (headerDone), and routed to every shard (headerSent). */
  private headerDone = false
  private headerSent = false
  /** The trailer (a field count of -1) was cut (trailerCut) and routed (ended): whatever follows is ignored. */
  private trailerCut = false
  private ended = false
  rows = 0

  constructor(
    private readonly columns: number,
    private readonly keyIndex: number,
    private readonly keyColumn: string,
    /** The shard of a key field's bytes, in the column type's binary format. */
    private readonly keyShard: (value: Buffer) => number,
    private readonly shards: number,
    /**
     * Values pgshard makes: each tuple gets one as its last field, in binary form (`encode`); the key that places
     * it when `keys.places` (the tuples have no key field then), else a drawn column's.
     */
    private readonly made: { keys: MadeKeys; encode: (key: string) => Buffer } | null = null,
  ) {}

  push(chunk: Buffer): Buffer[][] {
    return this.route(this.cut(chunk))
  }

  cut(chunk: Buffer): Buffer[] {
    const tuples: Buffer[] = []
    if (this.trailerCut) return tuples
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk
    let at = 0
    if (!this.headerDone) {
      const end = this.headerEnd(buf)
      if (end < 0) {
        this.keep(buf, 0)
        return tuples
      }
      tuples.push(buf.subarray(0, end))
      this.headerDone = true
      at = end
    }
    for (let n = this.rows + 1; !this.trailerCut; n++) {
      const end = this.tupleEnd(buf, at, n)
      if (end < 0) break
      if (end === at + 2) this.trailerCut = true
      tuples.push(buf.subarray(at, end))
      at = end
    }
    this.keep(buf, at)
    return tuples
  }

  route(tuples: Buffer[]): Buffer[][] {
    const out: Buffer[][] = Array.from({ length: this.shards }, () => [])
    for (const tuple of tuples) {
      if (this.ended) break
      if (this.headerSent) this.routeTuple(tuple, out)
      else {
        this.headerSent = true
        for (const rows of out) rows.push(tuple)
      }
    }
    return out
  }

  end(): Buffer[][] {
    const rest = this.carry
    this.carry = null
    if (rest !== null && !this.trailerCut) {
      throw new PgError(BAD_COPY_FORMAT, this.headerDone ? `unexpected end of COPY data in row ${this.rows + 1}` : 'COPY file signature not recognized')
    }
    return Array.from({ length: this.shards }, () => [])
  }

  /** Keeps what follows `at` for the next chunk (the chunk's memory belongs to the client reader). */
  private keep(buf: Buffer, at: number): void {
    this.carry = at < buf.length && !this.trailerCut ? Buffer.from(buf.subarray(at)) : null
    if (this.carry && this.carry.length > MAX_ROW_BYTES) {
      throw new PgError(PROGRAM_LIMIT_EXCEEDED, `binary COPY row ${this.rows + 1} is longer than ${MAX_ROW_BYTES / 1024 / 1024} MB`)
    }
  }

  /** Where the header ends, or -1 when it has not all arrived. */
  private headerEnd(buf: Buffer): number {
    const seen = Math.min(buf.length, SIGNATURE.length)
    if (!buf.subarray(0, seen).equals(SIGNATURE.subarray(0, seen))) throw new PgError(BAD_COPY_FORMAT, 'COPY file signature not recognized')
    if (buf.length < HEADER_BYTES) return -1
    const extension = buf.readInt32BE(SIGNATURE.length + 4)
    if (extension < 0) throw new PgError(BAD_COPY_FORMAT, 'invalid COPY file header (wrong length)')
    return buf.length < HEADER_BYTES + extension ? -1 : HEADER_BYTES + extension
  }

  /** Where tuple `n` (or the trailer), starting at `at`, ends, or -1 when it has not all arrived. */
  private tupleEnd(buf: Buffer, at: number, n: number): number {
    if (buf.length < at + 2) return -1
    const fields = buf.readInt16BE(at)
    if (fields === -1) return at + 2
    if (fields !== this.columns) throw new PgError(BAD_COPY_FORMAT, `row field count is ${fields}, expected ${this.columns} (COPY row ${n})`)
    let p = at + 2
    for (let f = 0; f < fields; f++) {
      if (buf.length < p + 4) return -1
      const length = buf.readInt32BE(p)
      if (length < -1) throw new PgError(BAD_COPY_FORMAT, `invalid field size in COPY row ${n}`)
      p += 4 + Math.max(length, 0)
      if (buf.length < p) return -1
    }
    return p
  }

  private routeTuple(tuple: Buffer, out: Buffer[][]): void {
    if (tuple.length === 2) {
      this.ended = true
      for (const rows of out) rows.push(tuple)
      return
    }
    const n = this.rows + 1
    const value = this.made?.encode(this.made.keys.next())
    const row = value === undefined ? tuple : withField(tuple, this.columns + 1, value)
    if (value !== undefined && this.made!.keys.places) {
      out[this.keyShard(value)]!.push(row)
      this.rows = n
      return
    }
    let p = 2
    for (let f = 0; f < this.keyIndex; f++) p += 4 + Math.max(tuple.readInt32BE(p), 0)
    const length = tuple.readInt32BE(p)
    if (length === -1) throw new PgError(NOT_NULL_VIOLATION, `COPY row ${n} has no value (NULL) for the sharding key "${this.keyColumn}": pgshard cannot tell its shard`)
    let shard: number
    try {
      shard = this.keyShard(tuple.subarray(p + 4, p + 4 + length))
    } catch (err) {
      if (err instanceof KeyEncodingError) throw new PgError(err.code, `${err.message} (COPY row ${n}, column "${this.keyColumn}")`)
      throw err
    }
    out[shard]!.push(row)
    this.rows = n
  }
}

/** The tuple with `value` as one more field at its end (`fields` in all). */
function withField(tuple: Buffer, fields: number, value: Buffer): Buffer {
  const added = Buffer.allocUnsafe(tuple.length + 4 + value.length)
  tuple.copy(added)
  added.writeInt16BE(fields, 0)
  added.writeInt32BE(value.length, tuple.length)
  value.copy(added, tuple.length + 4)
  return added
}
