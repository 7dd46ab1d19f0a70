import { PgError, SqlState } from './PgError.js'

/** What the handler wants done with one server message, decided from its type when its header arrives. */
export const FORWARD = 1
/** Call `onMessage` when the message is complete (with its body when INSPECT is set too). */
export const NOTIFY = 2
/** Collect the body for `onMessage`. */
export const INSPECT = 4
/**
 * Hand over the bytes forwarded so far before `onMessage` (it may write to the client itself, or give the
 * connection to another client). Without it, forwarded messages keep accumulating into one span, so that a
 * whole reply leaves in one write.
 */
export const FLUSH = 8

export interface BackendHandler {
  onHeader(type: number, length: number): number
  onMessage(type: number, body: Buffer | null): void
  /** Forwarded bytes, in order: whole messages or parts of one, possibly several messages at once. */
  forward(bytes: Buffer): void
}

// A server message larger than this is a broken or hostile server; the proxy never buffers more than this of one.
const MAX_INSPECTED = 64 * 1024 * 1024

/**
 * Walks a server's byte stream message by message without copying: forwarded messages leave as subarrays of the
 * received chunk, merged into one span while consecutive; a large DataRow streams through part by part. Only
 * messages the handler asks to inspect are assembled (they are small: ReadyForQuery, ErrorResponse, …).
 */
export class BackendScanner {
  private header = Buffer.allocUnsafe(5)
  private headerFill = 0
  private remaining = 0 // body bytes of the current message still to come
  private type = 0
  private flags = 0
  private body: Buffer | null = null
  private bodyFill = 0

  constructor(private readonly handler: BackendHandler) {}

  /** True between messages: nothing of a message is pending. */
  get atBoundary(): boolean {
    return this.headerFill === 0 && this.remaining === 0
  }

  scan(chunk: Buffer): void {
    const h = this.handler
    let pos = 0
    let spanStart = -1 // start of the pending forwarded span in this chunk
    const n = chunk.length
    while (pos < n) {
      if (this.remaining === 0 && this.headerFill === 0 && n - pos >= 5) {
        // Fast path: a whole header inside this chunk.
        this.type = chunk[pos]
        const length = chunk.readInt32BE(pos + 1)
        if (length < 4) throw new PgError(SqlState.PROTOCOL_VIOLATION, `server sent a message with invalid length ${length}`)
        this.begin(length)
        if (this.flags & FORWARD) {
          if (spanStart < 0) spanStart = pos
        } else if (spanStart >= 0) {
          h.forward(chunk.subarray(spanStart, pos))
          spanStart = -1
        }
        pos += 5
      } else if (this.remaining === 0) {
        // A header split across chunks: its bytes are forwarded once, whole, when its type is known.
        if (spanStart >= 0) {
          h.forward(chunk.subarray(spanStart, pos))
          spanStart = -1
        }
        const take = Math.min(5 - this.headerFill, n - pos)
        chunk.copy(this.header, this.headerFill, pos, pos + take)
        this.headerFill += take
        pos += take
        if (this.headerFill < 5) break
        this.headerFill = 0
        this.type = this.header[0]
        const length = this.header.readInt32BE(1)
        if (length < 4) throw new PgError(SqlState.PROTOCOL_VIOLATION, `server sent a message with invalid length ${length}`)
        this.begin(length)
        if (this.flags & FORWARD) h.forward(Buffer.from(this.header))
      }
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - pos)
        if (this.flags & FORWARD && spanStart < 0) spanStart = pos
        if (this.body) chunk.copy(this.body, this.bodyFill, pos, pos + take)
        this.bodyFill += take
        this.remaining -= take
        pos += take
        if (this.remaining > 0) break
      }
      // The message is complete.
      if (this.flags & NOTIFY) {
        if (this.flags & FLUSH && spanStart >= 0) {
          h.forward(chunk.subarray(spanStart, pos))
          spanStart = -1
        }
        const body = this.body
        this.body = null
        h.onMessage(this.type, body)
      }
    }
    if (spanStart >= 0) h.forward(chunk.subarray(spanStart, pos))
  }

  private begin(length: number): void {
    this.flags = this.handler.onHeader(this.type, length)
    this.remaining = length - 4
    this.bodyFill = 0
    if (this.flags & INSPECT) {
      if (this.remaining > MAX_INSPECTED) throw new PgError(SqlState.PROTOCOL_VIOLATION, `server message of ${length} bytes is too large to inspect`)
      this.body = Buffer.allocUnsafe(this.remaining)
    } else {
      this.body = null
    }
  }
}
