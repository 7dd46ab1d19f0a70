import type { ServerConnection } from '../pool/ServerConnection.js'
import { encodeBind, SYNC } from '../protocol/FrontendMessages.js'
import type { PgError } from '../protocol/PgError.js'
import { Expect } from '../protocol/ResponseTracker.js'
import { errorResponse } from '../protocol/ServerMessages.js'

/** An extended-protocol message waiting for the group's server to be known. */
export type Held =
  | {
      kind: 'server'
      send: (conn: ServerConnection) => void
      needsServer: boolean
      synthWithoutServer?: Buffer
      /** Addresses a portal bound earlier: it lives on the attached connection, if there is one. */
      portal?: boolean
    }
  | { kind: 'synth'; bytes: Buffer }

/** What a group needs from its session. */
export interface GroupHost {
  /** The server that must serve the next message whatever its route (in a transaction, a pinned session). */
  currentServer(): ServerConnection | null
  /** The transaction may go on to another shard: a group's messages wait for its Bind to say which. */
  mayChangeShard(): boolean
  /** The connection attached to the session, where portals bound earlier live. */
  attachedConn(): ServerConnection | null
  /** A server for held messages that need one when no statement chose a shard (the default shard's primary). */
  defaultServer(): Promise<ServerConnection>
  /** Bytes for the client, after every reply it still waits for. */
  emitAfterPending(bytes: Buffer): void
  /** The proxy refused a message of the group (counted; a held-back transaction is now failed). */
  refused(err: PgError): void
}

const INVALID_STATEMENT = '\u0001pgshard-refused'

/**
 * The extended-protocol messages from one Sync to the next, which run on one server. Until a Bind shows which
 * shard the group needs, Parse and Describe are held back (or answered by the proxy); then everything held goes
 * to that server in the order the client sent it. A refusal makes the server fail the group the way it fails
 * on its own errors, or, without a server, is answered by the proxy, which then skips to Sync as a server would.
 */
export class ExtendedGroup {
  /** Messages not yet sent to a server. */
  held: Held[] = []
  /** The server the group runs on, once known. */
  conn: ServerConnection | null = null
  /** A Bind of this group went to its server: from now on the group cannot move to another shard. */
  bound = false
  /** The proxy refused a message of this group without a server: skip to Sync like a server would. */
  skipToSync = false

  constructor(private readonly host: GroupHost) {}

  /** Messages of the group wait for their server or went to one. */
  get open(): boolean {
    return this.held.length > 0 || this.conn !== null
  }

  /** The group ended at Sync: the next one starts afresh. */
  end(): void {
    this.held = []
    this.conn = null
    this.bound = false
    this.skipToSync = false
  }

  /** Adds a message to the group: sent now when the group's server is known, else held. */
  add(item: Held): void {
    const portalHome = item.kind === 'server' && item.portal && this.held.length === 0 ? this.host.attachedConn() : null
    const conn = this.conn ?? (this.host.mayChangeShard() ? null : this.host.currentServer()) ?? portalHome
    if (!conn) {
      this.held.push(item)
      return
    }
    this.conn = conn
    this.flushHeld(conn)
    if (item.kind === 'synth') conn.tracker.push({ expect: Expect.Parse, mode: 'synth', bytes: item.bytes })
    else item.send(conn)
  }

  /** What was held goes to `conn`, in order. */
  flushHeld(conn: ServerConnection): void {
    const held = this.held
    this.held = []
    for (const h of held) {
      if (h.kind === 'synth') conn.tracker.push({ expect: Expect.Parse, mode: 'synth', bytes: h.bytes })
      else h.send(conn)
    }
  }

  /**
   * The group's server, choosing one if held messages need it; null when none is needed (what was held is then
   * answered by the proxy).
   */
  async server(): Promise<ServerConnection | null> {
    let conn = this.conn ?? this.host.currentServer()
    if (!conn && this.held.some((h) => h.kind === 'server' && (h.needsServer || !h.synthWithoutServer))) {
      conn = await this.host.defaultServer()
    }
    if (conn) {
      this.conn = conn
      this.flushHeld(conn)
      return conn
    }
    const out: Buffer[] = []
    for (const h of this.held) out.push(h.kind === 'synth' ? h.bytes : h.synthWithoutServer!)
    this.held = []
    if (out.length) this.host.emitAfterPending(Buffer.concat(out))
    return null
  }

  /**
   * Ends the group on its server when nothing ran there yet (only Parse and Describe: postgres.js describes
   * before it binds) with a Sync of the proxy's own, so the rest of the group can go elsewhere. False when the
   * group must stay (a Bind ran, or a transaction holds the server and may not go on to another shard).
   */
  leaveServer(): boolean {
    const conn = this.conn
    if (!conn || this.bound || (this.host.currentServer() && !this.host.mayChangeShard())) return false
    conn.tracker.push({ expect: Expect.Sync, mode: 'suppress' })
    conn.write(SYNC)
    this.conn = null
    return true
  }

  /**
   * Inside a transaction, the part of the group sent so far ends on its server with a Sync of the proxy's own
   * (in a transaction block it commits nothing), so that the rest can go to another shard. True when that part
   * succeeded; false when it failed: the server skipped the rest of it, and the proxy skips the rest of the
   * group up to the client's Sync, as one server would.
   */
  async endPart(settle: (ok: boolean) => void): Promise<boolean> {
    const conn = this.conn!
    this.conn = null
    this.bound = false
    await new Promise<void>((resolve) => {
      conn.tracker.push({
        expect: Expect.Sync,
        mode: 'suppress',
        done: (ok) => {
          settle(ok)
          resolve()
        },
      })
      conn.write(SYNC)
    })
    const ok = conn.tracker.status !== 'E' && !conn.closed
    if (!ok) this.skipToSync = true
    return ok
  }

  /**
   * A refusal inside the group. With a server in the group, the server itself is made to fail (so it skips to
   * Sync and aborts an open transaction) and its error is replaced by ours; without one, the proxy answers what
   * is held, the error, and skips to Sync.
   */
  refuse(err: PgError): void {
    this.host.refused(err)
    const conn = this.conn ?? this.host.currentServer()
    if (conn) {
      this.conn = conn
      this.flushHeld(conn)
      conn.tracker.push({ expect: Expect.Bind, mode: 'forward', replaceError: errorResponse(err) })
      conn.write(encodeBind('', INVALID_STATEMENT, [], [], []))
      return
    }
    this.fail(errorResponse(err))
  }

  /**
   * The group failed without a server (or after leaving it): the proxy answers what is held, then the error
   * (an ErrorResponse, whole), and skips to Sync as a server would.
   */
  fail(error: Buffer): void {
    const out: Buffer[] = []
    for (const h of this.held) if (h.kind === 'synth') out.push(h.bytes)
    else if (h.synthWithoutServer) out.push(h.synthWithoutServer)
    this.held = []
    out.push(error)
    this.host.emitAfterPending(Buffer.concat(out))
    this.skipToSync = true
  }
}
