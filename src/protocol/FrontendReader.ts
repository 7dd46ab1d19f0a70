import { PgError, SqlState } from './PgError.js'

/** One client message. `raw` is the whole frame as it arrived (forwarded unchanged); `body` excludes the header. */
export interface Frame {
  type: number
  body: Buffer
  raw: Buffer
}

/**
 * Cuts a client's byte stream into messages, whatever the TCP chunking: a message split over several reads or
 * several messages in one read. Frames are subarrays of the received chunks (no copy) unless a frame spans
 * chunks. The length is checked before anything is buffered, so a hostile length cannot make us allocate.
 */
export class FrontendReader {
  private chunks: Buffer[] = []
  private offset = 0 // read position in chunks[0]
  private size = 0 // unread bytes over all chunks

  constructor(private readonly maxMessageSize: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.size += chunk.length
  }

  get buffered(): number {
    return this.size
  }

  /** The next typed message, or null when more bytes are needed. */
  next(): Frame | null {
    if (this.size < 5) return null
    const type = this.byteAt(0)
    const length = this.int32At(1)
    if (length < 4) throw new PgError(SqlState.PROTOCOL_VIOLATION, `invalid message length ${length} for message type "${printable(type)}"`)
    if (length > this.maxMessageSize)
      throw new PgError(
        SqlState.PROTOCOL_VIOLATION,
        `invalid message length: message of type "${printable(type)}" is ${length} bytes, over the limit of ${this.maxMessageSize} bytes`,
        { hint: 'Send smaller messages, or raise listen.max_message_size.' },
      )
    if (this.size < length + 1) return null
    const raw = this.take(length + 1)
    return { type, body: raw.subarray(5), raw }
  }

  /** The next untyped start-up packet (length then body), or null when more bytes are needed. */
  nextStartup(): Buffer | null {
    if (this.size < 4) return null
    const length = this.int32At(0)
    // Postgres' own limit for a start-up packet is 10000 bytes.
    if (length < 8 || length > 10000) throw new PgError(SqlState.PROTOCOL_VIOLATION, `invalid length of startup packet: ${length}`)
    if (this.size < length) return null
    return this.take(length).subarray(4)
  }

  private byteAt(i: number): number {
    let pos = this.offset + i
    for (const c of this.chunks) {
      if (pos < c.length) return c[pos]
      pos -= c.length
    }
    throw new RangeError('read past buffered data')
  }

  private int32At(i: number): number {
    const head = this.chunks[0]
    if (this.offset + i + 4 <= head.length) return head.readInt32BE(this.offset + i)
    return ((this.byteAt(i) << 24) | (this.byteAt(i + 1) << 16) | (this.byteAt(i + 2) << 8) | this.byteAt(i + 3)) | 0
  }

  private take(n: number): Buffer {
    const head = this.chunks[0]
    this.size -= n
    if (this.offset + n <= head.length) {
      const out = head.subarray(this.offset, this.offset + n)
      this.offset += n
      if (this.offset === head.length) {
        this.chunks.shift()
        this.offset = 0
      }
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[0]
      const m = Math.min(n - filled, c.length - this.offset)
      c.copy(out, filled, this.offset, this.offset + m)
      filled += m
      this.offset += m
      if (this.offset === c.length) {
        this.chunks.shift()
        this.offset = 0
      }
    }
    return out
  }
}

export function printable(type: number): string {
  return type >= 0x20 && type < 0x7f ? String.fromCharCode(type) : `\\x${type.toString(16).padStart(2, '0')}`
}
