import { FLUSH, FORWARD, INSPECT, NOTIFY, type BackendHandler } from './BackendScanner.js'
import { messageWithHeader, type TxStatus } from './ServerMessages.js'
import type { TypeOidMap } from './TypeOidMap.js'

/** The kind of request a server is answering, which decides which reply ends it. */
export const enum Expect {
  Parse,
  Bind,
  DescribeStatement,
  DescribePortal,
  Execute,
  Close,
  Sync,
  Query,
  FunctionCall,
}

/**
 * forward: the client sent it, the client gets the replies.
 * suppress: the proxy sent it on its own (a re-prepare, a settings sync); the replies are swallowed.
 * synth: the proxy answers it itself; `bytes` go to the client when every earlier request has been answered.
 */
export type Mode = 'forward' | 'suppress' | 'synth'

export interface Pending {
  expect: Expect
  mode: Mode
  bytes?: Buffer
  /** Sent instead of the server's ErrorResponse, if the request fails. */
  replaceError?: Buffer
  /**
   * Receives the server's ErrorResponse body instead of the client (the proxy reports the failure its own way).
   * The body is only valid during the call.
   */
  captureError?: (body: Buffer) => void
  /** Sees the server's ErrorResponse body, however it is then handled (valid only during the call). */
  sawError?: (body: Buffer) => void
  /** Called once when the request is answered (ok false: it failed or was skipped after an earlier error). */
  done?: (ok: boolean) => void
  /** Called with each CommandComplete tag this request produces. */
  onTag?: (tag: string) => void
  /** Called with the body of each DataRow of a suppressed request (the proxy reads its own query's answer). */
  onRow?: (body: Buffer) => void
  /** Set when a simple Query or Sync saw an ErrorResponse before its ReadyForQuery. */
  failed?: boolean
}

export interface TrackerOwner {
  /** Bytes for the client, in order. */
  toClient(bytes: Buffer): void
  /**
   * A ReadyForQuery arrived; `idle` is true when no request is left in flight, `forwarded` when the client got
   * it (false for the proxy's own requests).
   */
  onReady(status: TxStatus, idle: boolean, forwarded: boolean): void
  /** The server connection closed or failed. */
  onServerClosed?(err: Error | null): void
  /**
   * An ErrorResponse arrived (forwarded or not): its SQLSTATE, for counting and failure evidence. `provoked`
   * when the proxy caused it to abort a transaction (the client gets the proxy's own error instead).
   */
  onError?(code: string, fatal: boolean, provoked: boolean): void
  /**
   * The server reported a parameter's new value (ParameterStatus) while running a client's request: however it
   * changed (a SET, a function, the end of a transaction), the connection now has it.
   */
  onParameterStatus?(name: string, value: string): void
}

const T = {
  parseComplete: 0x31,
  bindComplete: 0x32,
  closeComplete: 0x33,
  commandComplete: 0x43, // C
  dataRow: 0x44, // D
  errorResponse: 0x45, // E
  copyInResponse: 0x47, // G
  copyOutResponse: 0x48, // H
  emptyQuery: 0x49, // I
  notice: 0x4e, // N
  notification: 0x41, // A
  parameterStatus: 0x53, // S
  rowDescription: 0x54, // T
  functionResult: 0x56, // V
  copyBoth: 0x57, // W
  readyForQuery: 0x5a, // Z
  copyData: 0x64, // d
  noData: 0x6e, // n
  portalSuspended: 0x73, // s
  paramDescription: 0x74, // t
} as const

const EXTENDED = new Set([Expect.Parse, Expect.Bind, Expect.DescribeStatement, Expect.DescribePortal, Expect.Execute, Expect.Close])

/**
 * Matches a server's replies to the requests sent to it, in order, so that the proxy knows whose reply each
 * message is, when the server is idle again, and which replies belong to requests it made up itself. It follows
 * the protocol's rules: after an error in extended mode the server skips everything up to Sync.
 */
export class ResponseTracker implements BackendHandler {
  private queue: Pending[] = []
  private head = 0
  private owner: TrackerOwner | null = null
  /** Last ReadyForQuery status seen. */
  status: TxStatus = 'I'
  /** An error of the proxy's own request that the client is told of at its next failing request (carryError). */
  private carried: Buffer | null = null
  /** An extended-protocol request failed: the server skips what comes before the next Sync. */
  private skipping = false
  /**
   * Extended-protocol requests went to the server since the last Sync: it is inside their group (an implicit
   * transaction not yet committed, or skipping after an error). Such a connection cannot be handed on.
   */
  inGroup = false

  /** The description in flight goes to the client with the default shard's type OIDs (assembled, then sent). */
  private translating = false

  /** The shard's type numbers against the default shard's: descriptions the client gets are told in the latter. */
  constructor(private readonly typeOids: TypeOidMap | null = null) {}

  attach(owner: TrackerOwner | null): void {
    this.owner = owner
  }

  get pending(): number {
    return this.queue.length - this.head
  }

  /** Requests in flight that the client is waiting for (not counting proxy-internal ones). */
  get idle(): boolean {
    return this.pending === 0
  }

  /**
   * The error the server sends next, for the request it is on, reaches the client as `error` instead; `then`
   * runs when it came.
   */
  replaceNextError(error: Buffer, then: () => void): void {
    const p = this.current()
    if (!p) return
    const saw = p.sawError
    p.replaceError = error
    p.sawError = (body) => {
      saw?.(body)
      then()
    }
  }

  push(p: Pending): void {
    if (p.mode !== 'synth') {
      if (p.expect === Expect.Sync || p.expect === Expect.Query) this.inGroup = false
      else if (EXTENDED.has(p.expect)) this.inGroup = true
    }
    // Sent after the server's error, before its Sync: the server skips it, nothing will answer.
    if (this.skipping && EXTENDED.has(p.expect)) {
      p.done?.(false)
      return
    }
    this.queue.push(p)
    if (this.pending === 1) this.emitSynthesized()
  }

  private current(): Pending | undefined {
    return this.queue[this.head]
  }

  private pop(ok: boolean): void {
    const p = this.queue[this.head]
    this.queue[this.head] = undefined as unknown as Pending
    this.head++
    if (this.head > 64 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    p.done?.(ok)
  }

  /** Emits synthesized answers that have reached the head of the line. */
  private emitSynthesized(): void {
    for (let p = this.current(); p && p.mode === 'synth'; p = this.current()) {
      if (p.bytes) this.owner?.toClient(p.bytes)
      this.pop(true)
    }
  }

  onHeader(type: number, _length: number): number {
    const p = this.current()
    if (type === T.dataRow || type === T.copyData) {
      if (p?.onRow) return NOTIFY | INSPECT
      return p && p.mode === 'suppress' ? 0 : FORWARD
    }
    if (type === T.notification) return FORWARD
    // The proxy's own requests (settings brought in line, a reset) report what it asked for: not the client's.
    if (type === T.parameterStatus) return p?.mode === 'suppress' ? 0 : FORWARD | NOTIFY | INSPECT
    // ReadyForQuery may hand the connection to another client, an error may be replaced: what came before
    // must be out first. So must it when the message ends a request and the next answer is the proxy's own.
    if (type === T.readyForQuery) return (p?.mode === 'suppress' ? 0 : FORWARD) | NOTIFY | INSPECT | FLUSH
    if (type === T.errorResponse) return p?.replaceError || p?.mode === 'suppress' || (this.carried && p) ? NOTIFY | INSPECT | FLUSH : FORWARD | NOTIFY | INSPECT | FLUSH
    const flush = p && ends(p.expect, type) && this.queue[this.head + 1]?.mode === 'synth' ? FLUSH : 0
    if (type === T.rowDescription || type === T.paramDescription) {
      // Decided once per message: the map may be refilled before the rest of the message arrives.
      this.translating = this.typeOids !== null && !this.typeOids.empty && p?.mode === 'forward'
      if (this.translating) return NOTIFY | INSPECT | flush
    }
    if (type === T.commandComplete && p?.onTag) return (p.mode === 'suppress' ? 0 : FORWARD) | NOTIFY | INSPECT | flush
    return (p?.mode === 'suppress' ? 0 : FORWARD) | NOTIFY | flush
  }

  /**
   * A request the proxy sent on the client's behalf failed after the client was told it succeeded (a SET LOCAL
   * deferred with its BEGIN): the transaction is aborted, so the client's next request fails (25P02), and that
   * error is replaced by this one, which says why. Forgotten when the transaction ends.
   */
  carryError(body: Buffer): void {
    this.carried ??= messageWithHeader(T.errorResponse, body)
  }

  forward(bytes: Buffer): void {
    this.owner?.toClient(bytes)
  }

  /** The connection is gone: requests still in flight will never be answered. */
  closed(err: Error | null): void {
    const owner = this.owner
    this.owner = null
    for (let p = this.current(); p; p = this.current()) this.pop(false)
    owner?.onServerClosed?.(err)
  }

  onMessage(type: number, body: Buffer | null): void {
    const p = this.current()
    switch (type) {
      case T.errorResponse:
        return this.onErrorResponse(p, body!)
      case T.readyForQuery: {
        this.status = String.fromCharCode(body![0]) as TxStatus
        this.skipping = false
        if (this.status === 'I') this.carried = null
        const forwarded = p?.mode !== 'suppress'
        if (p && (p.expect === Expect.Sync || p.expect === Expect.Query || p.expect === Expect.FunctionCall)) {
          this.pop(!p.failed)
        }
        this.emitSynthesized()
        this.owner?.onReady(this.status, this.pending === 0, forwarded)
        return
      }
      case T.parameterStatus: {
        const nul = body!.indexOf(0)
        const end = body!.indexOf(0, nul + 1)
        if (nul > 0 && end > nul) this.owner?.onParameterStatus?.(body!.toString('utf8', 0, nul), body!.toString('utf8', nul + 1, end))
        return
      }
      case T.notice:
      case T.notification:
        return
    }
    if (this.translating) {
      this.translating = false
      const oids = this.typeOids!
      this.owner?.toClient(messageWithHeader(type, type === T.rowDescription ? oids.rowDescription(body!) : oids.paramDescription(body!)))
    }
    if (!p) return
    if (type === T.dataRow) {
      p.onRow?.(body!)
      return
    }
    if (type === T.commandComplete && p.onTag && body) p.onTag(body.toString('utf8', 0, body.length - 1))
    if (ends(p.expect, type)) {
      this.pop(true)
      this.emitSynthesized()
    }
  }

  private onErrorResponse(p: Pending | undefined, body: Buffer): void {
    const code = errorField(body, 0x43) ?? 'XX000'
    const severity = errorField(body, 0x56) ?? errorField(body, 0x53) ?? 'ERROR'
    this.owner?.onError?.(code, severity === 'FATAL' || severity === 'PANIC', p?.replaceError !== undefined)
    p?.sawError?.(body)
    if (p?.replaceError) this.owner?.toClient(p.replaceError)
    else if (p?.captureError) p.captureError(body)
    else if (this.carried && p) {
      this.owner?.toClient(this.carried)
      this.carried = null
    } else if (p?.mode === 'suppress') this.owner?.toClient(messageWithHeader(T.errorResponse, body))
    if (!p) return
    if (!EXTENDED.has(p.expect)) {
      p.failed = true
      return
    }
    // The server now skips every request up to the next Sync: those get no reply.
    this.skipping = true
    this.pop(false)
    for (let q = this.current(); q && q.expect !== Expect.Sync; q = this.current()) {
      this.pop(false)
    }
  }
}

function ends(expect: Expect, type: number): boolean {
  switch (expect) {
    case Expect.Parse:
      return type === T.parseComplete
    case Expect.Bind:
      return type === T.bindComplete
    case Expect.Close:
      return type === T.closeComplete
    case Expect.DescribeStatement:
    case Expect.DescribePortal:
      return type === T.rowDescription || type === T.noData
    case Expect.Execute:
      return type === T.commandComplete || type === T.emptyQuery || type === T.portalSuspended
    default:
      return false
  }
}

/** A field of an ErrorResponse/NoticeResponse body by its one-letter code. */
export function errorField(body: Buffer, field: number): string | undefined {
  let pos = 0
  while (pos < body.length && body[pos] !== 0) {
    const code = body[pos]
    const end = body.indexOf(0, pos + 1)
    if (end < 0) return undefined
    if (code === field) return body.toString('utf8', pos + 1, end)
    pos = end + 1
  }
  return undefined
}
