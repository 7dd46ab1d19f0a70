import type { TxStatus } from '../protocol/ServerMessages.js'

const READY_FOR_QUERY = 0x5a
const ERROR_RESPONSE = 0x45
/** Kept when a part is quiet: what the client must see whoever caused it (errors, notices, settings, NOTIFY). */
const ALWAYS_KEPT = new Set([ERROR_RESPONSE, 0x4e, 0x53, 0x41])

/** How one part of a query run statement by statement ended. */
export interface PartEnd {
  ok: boolean
  status: TxStatus
}

/**
 * The replies of a query's statements run one at a time (Session.runOneByOne), on their way to the client: each
 * statement's own ReadyForQuery is held back, since the client sent one Query and waits for one; the proxy's
 * own statements around them (the BEGIN and COMMIT of their implicit transaction) are quiet: only what the client
 * must see of them gets through. Replies arrive in arbitrary slices of the byte stream, so messages are framed
 * here across calls.
 */
export class PartReplies {
  private readonly header = Buffer.alloc(5)
  private headerHave = 0
  /** Bytes left of the message being passed on or dropped. */
  private left = 0
  private keep = true
  private type = 0
  private failed = false
  private quiet = false
  private waiting: ((end: PartEnd) => void) | null = null

  constructor(private readonly out: (bytes: Buffer) => void) {}

  /** The next part's replies follow; resolves at its ReadyForQuery. `quiet`: a statement the client did not write. */
  expect(quiet: boolean): Promise<PartEnd> {
    this.quiet = quiet
    this.failed = false
    return new Promise((resolve) => {
      this.waiting = resolve
    })
  }

  /** The session ended while a part ran: no ReadyForQuery will come. */
  abandon(): void {
    this.end({ ok: false, status: 'E' })
  }

  /** Bytes for the client, in order: passed on but for what is held back, in as few slices as they allow. */
  write(bytes: Buffer): void {
    const kept: Buffer[] = []
    // Bytes of this call from `from` on are passed on, up to where a message held back begins.
    let from = 0
    let at = 0
    while (at < bytes.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, bytes.length - at)
        // A ReadyForQuery's status byte ends the part.
        if (this.type === READY_FOR_QUERY && this.left === n) this.end({ ok: !this.failed, status: String.fromCharCode(bytes[at + n - 1]!) as TxStatus })
        this.left -= n
        at += n
        if (!this.keep) from = at
        continue
      }
      const start = at
      const had = this.headerHave
      const n = Math.min(5 - had, bytes.length - at)
      bytes.copy(this.header, had, at, at + n)
      this.headerHave += n
      at += n
      if (this.headerHave < 5) {
        // The rest of the header comes with the next bytes: what to do with it is decided then.
        if (start > from) kept.push(bytes.subarray(from, start))
        from = at
        break
      }
      this.headerHave = 0
      this.type = this.header[0]!
      this.left = this.header.readInt32BE(1) - 4
      if (this.type === ERROR_RESPONSE) this.failed = true
      this.keep = this.type !== READY_FOR_QUERY && (!this.quiet || ALWAYS_KEPT.has(this.type))
      if (had > 0) {
        // Its header began in the bytes before: passed on whole from the copy, or dropped.
        if (this.keep) kept.push(Buffer.from(this.header))
        from = at
      } else if (!this.keep) {
        if (start > from) kept.push(bytes.subarray(from, start))
        from = at
      }
    }
    if (at > from) kept.push(bytes.subarray(from, at))
    if (kept.length > 0) this.out(kept.length === 1 ? kept[0]! : Buffer.concat(kept))
  }

  private end(end: PartEnd): void {
    const waiting = this.waiting
    this.waiting = null
    waiting?.(end)
  }
}
