import type net from 'node:net'
import { BackendScanner, type BackendHandler } from '../protocol/BackendScanner.js'
import type { LoggedInServer } from '../protocol/ServerLogin.js'
import { ResponseTracker } from '../protocol/ResponseTracker.js'
import type { TypeOidMap } from '../protocol/TypeOidMap.js'
import { writeCorked } from '../protocol/TickCork.js'
import { PreparedSet } from './PreparedSet.js'
import { noteBytesRead } from './ReadBufferReclaimer.js'

let nextId = 1

export interface ServerConnectionEvents {
  /** The socket closed or failed; the connection is unusable. */
  onClose(conn: ServerConnection, err: Error | null): void
}

/**
 * One logged-in connection to a Postgres server, owned by a pool and lent to one client at a time. It knows what
 * the proxy did to its session state: which of the proxy's statement names it holds and which settings differ
 * from the server's defaults, so that a client can be served by any connection without seeing another's state.
 */
export class ServerConnection {
  readonly id = nextId++
  readonly socket: net.Socket
  readonly pid: number
  readonly secret: number
  readonly serverParams: Map<string, string>
  readonly createdAt = Date.now()
  lastUsedAt = Date.now()
  readonly tracker: ResponseTracker
  private readonly scanner: BackendScanner
  private handler: BackendHandler
  closed = false
  /** Statement names the proxy prepared here (transaction pooling). */
  readonly prepared: PreparedSet
  /** Session settings applied here on top of the server defaults: name → value as SET would take it. */
  readonly settings = new Map<string, string>()
  /** Who parsed the unnamed statement last, and what it was. */
  unnamedOwner: object | null = null
  /** Something changed session state the proxy cannot track: reset before anyone else uses it. */
  dirty = false
  /** Name of the node, for logs and the console. */
  readonly nodeName: string
  /** CancelRequests for this backend whose socket the server has not closed yet. */
  private cancelsInFlight = 0
  private afterCancels: (() => void) | null = null

  /**
   * @param typeOids this shard's numbers for created types against the default shard's (null: they are the
   * default shard's own)
   */
  constructor(login: LoggedInServer, nodeName: string, preparedCapacity: number, events: ServerConnectionEvents, readonly typeOids: TypeOidMap | null = null) {
    this.tracker = new ResponseTracker(typeOids)
    this.handler = this.tracker
    this.socket = login.socket
    this.pid = login.pid
    this.secret = login.secret
    this.serverParams = login.params
    this.nodeName = nodeName
    this.prepared = new PreparedSet(preparedCapacity)
    // A read into the shared buffer lives only during the call: forwarded spans are copied (the client
    // socket may hold them until the end of the tick).
    const shared = login.reads !== null
    this.scanner = new BackendScanner({
      onHeader: (t, l) => this.handler.onHeader(t, l),
      onMessage: (t, b) => this.handler.onMessage(t, b),
      forward: shared ? (b) => this.handler.forward(copied(b)) : (b) => this.handler.forward(b),
    })
    const socket = this.socket
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30_000)
    const onChunk = (chunk: Buffer) => {
      try {
        this.scanner.scan(chunk)
      } catch (err) {
        this.destroy(err as Error)
      }
    }
    if (login.reads) login.reads.sink = onChunk
    else
      socket.on('data', (chunk: Buffer) => {
        noteBytesRead(chunk.length)
        onChunk(chunk)
      })
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy(null))
    this.events = events
  }

  private readonly events: ServerConnectionEvents

  /** Routes the server's bytes somewhere else than the tracker (the scatter executor reads rows itself). */
  setHandler(handler: BackendHandler | null): void {
    this.handler = handler ?? this.tracker
  }

  /** A request is in flight: forwarded (the tracker waits for replies) or read by the proxy itself (callShard). */
  get busy(): boolean {
    return this.handler !== this.tracker || !this.tracker.idle
  }

  /** Parameter type OIDs a client named (the default shard's numbers), as this shard numbers them. */
  serverTypes(types: number[]): number[] {
    const oids = this.typeOids
    return oids === null || oids.empty ? types : types.map((t) => oids.serverOid(t))
  }

  /** A client's Parse tail with its parameter types as this shard numbers them. */
  parseTail(tail: Buffer): Buffer {
    return this.typeOids === null ? tail : this.typeOids.parseTail(tail)
  }

  write(bytes: Buffer): boolean {
    return writeCorked(this.socket, bytes)
  }

  /** Resolves once the socket, full after a write, can take more (or has closed). */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done)
        this.socket.off('close', done)
        resolve()
      }
      this.socket.once('drain', done)
      this.socket.once('close', done)
    })
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  /** A CancelRequest for this backend is on its way to the server. */
  cancelSent(): void {
    this.cancelsInFlight++
  }

  /** The server closed that request's socket (or it failed): the backend has been signalled, or never will be. */
  cancelDone(): void {
    if (this.cancelsInFlight === 0 || --this.cancelsInFlight > 0) return
    const then = this.afterCancels
    this.afterCancels = null
    then?.()
  }

  get cancelling(): boolean {
    return this.cancelsInFlight > 0
  }

  /**
   * Runs `then` once no cancel is in flight: a cancel still on its way would hit whatever the backend runs
   * next, another client's statement if the connection were lent on.
   */
  whenNotCancelling(then: () => void): void {
    if (this.cancelsInFlight === 0) then()
    else this.afterCancels = then
  }

  /** Idle and clean enough to lend to another client. */
  get reusable(): boolean {
    return !this.closed && !this.dirty && this.tracker.idle && this.tracker.status === 'I' && this.scanner.atBoundary
  }

  destroy(err: Error | null): void {
    if (this.closed) return
    this.closed = true
    this.socket.destroy()
    this.tracker.closed(err)
    this.events.onClose(this, err)
  }

  /** Ends the session politely (Terminate) and closes. */
  terminate(): void {
    if (this.closed) return
    this.socket.end(Buffer.from([0x58, 0, 0, 0, 4]))
    this.closed = true
    this.events.onClose(this, null)
  }
}

/** A span of the shared read buffer, copied out; counted, since such copies are what the reclaimer frees. */
function copied(span: Buffer): Buffer {
  noteBytesRead(span.length)
  return Buffer.from(span)
}
