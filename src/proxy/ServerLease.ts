import type { PickOptions } from '../health/Topology.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import { encodeQuery } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import type { TrackerOwner } from '../protocol/ResponseTracker.js'
import type { Role } from '../router/Route.js'
import type { Identity, Placement, SessionServices } from './SessionServices.js'
import type { SessionSettings } from './SessionSettings.js'
import { syncSettings } from './SettingsSync.js'
import { callShard } from './ShardCall.js'

export interface Attachment {
  conn: ServerConnection
  placement: Placement
}

/**
 * The server connections one client holds, and how it takes and gives them back: the attached one (for a
 * transaction in transaction pooling, for the session in session pooling, where the others wait parked by shard
 * and role), each brought to the client's settings as it is attached (after the server's answer when it could
 * refuse them), and those paused because the client reads slower than they answer. Which connection a statement
 * needs is the session's decision; this is the mechanics.
 */
export class ServerLease {
  attached: Attachment | null = null
  /** Session pooling: connections kept for the whole session, by shard and role. */
  private readonly parked = new Map<string, Attachment>()
  /** The node tryTake chose when it found no idle connection there: take waits on that one. */
  private chosen: Placement | null = null
  /** The idle connection tryTake found there, which needs this client's settings first: take uses it. */
  private found: ServerConnection | null = null
  private idleWaiters: (() => void)[] = []
  private readonly paused = new Set<ServerConnection>()
  /** A READ ONLY transaction on several shards: its connections other than the attached one, by shard. */
  private readonly setAside = new Map<number, Attachment>()

  constructor(
    private readonly owner: TrackerOwner,
    private readonly services: SessionServices,
    private readonly identity: Identity,
    private readonly settings: SessionSettings,
  ) {}

  private get sessionMode(): boolean {
    return this.identity.mode === 'session'
  }

  /**
   * An idle connection of the pool, attached now; null when getting one means waiting (take does it then): for
   * a free connection, or for the one found to take this client's settings.
   */
  tryTake(shard: number, role: Role, options: PickOptions): ServerConnection | null {
    if (this.sessionMode) return null
    const placement = this.services.place(shard, role, this.identity, options)
    // take waits on this same node: choosing again would skew the replica rotation.
    this.chosen = placement
    const idle = placement.pool.tryAcquire()
    if (!idle) return null
    this.services.metrics.poolWait(0)
    if (this.settings.mayBeRefused(idle.settings)) {
      this.found = idle
      return null
    }
    this.chosen = null
    this.syncAtOnce(idle)
    this.attach({ conn: idle, placement })
    return idle
  }

  /**
   * Settings the server cannot refuse go ahead of the client's statement without waiting for their answer (a
   * failure would still reset the connection: SettingsSync).
   */
  private syncAtOnce(conn: ServerConnection): void {
    syncSettings(conn, this.settings)?.catch(() => undefined)
  }

  /**
   * A connection for this shard and role, attached: the parked one in session pooling, else one from the pool,
   * waiting for it if need be (`signal`: the client's cancel), then for the server to take the client's settings.
   * Nothing may be attached when it is called.
   */
  async take(shard: number, role: Role, options: PickOptions, signal: AbortSignal, clientGone: () => boolean): Promise<ServerConnection> {
    const key = `${shard}:${role}`
    let attachment = this.sessionMode ? this.parked.get(key) : undefined
    if (attachment && attachment.conn.closed) {
      this.parked.delete(key)
      attachment = undefined
    }
    const { chosen, found } = this
    this.chosen = null
    this.found = null
    const fresh = attachment === undefined
    if (!attachment) {
      const placement = chosen && chosen.shard === shard && !chosen.pool.closed ? chosen : this.services.place(shard, role, this.identity, options)
      if (found && placement !== chosen) chosen!.pool.release(found)
      let conn = found && placement === chosen ? found : null
      if (!conn) {
        const waitStart = performance.now()
        // With connections of the transaction waiting aside, it goes ahead of others (and may use the reserve).
        conn = await placement.pool.acquire(signal, this.setAside.size > 0)
        this.services.metrics.poolWait((performance.now() - waitStart) / 1000)
      }
      attachment = { conn, placement }
    }
    const { conn, placement } = attachment
    try {
      if (this.settings.mayBeRefused(conn.settings)) await syncSettings(conn, this.settings)
      if (clientGone()) throw new PgError(SqlState.CONNECTION_FAILURE, 'client went away')
    } catch (err) {
      if (!fresh) this.parked.delete(key)
      placement.pool.release(conn, !fresh)
      throw err
    }
    this.syncAtOnce(conn)
    if (fresh && this.sessionMode) this.parked.set(key, attachment)
    this.attach(attachment)
    return conn
  }

  private attach(a: Attachment): void {
    this.attached = a
    a.conn.tracker.attach(this.owner)
  }

  /** The transaction goes on to another shard: the attached connection waits aside, still in it. */
  putAside(): void {
    const a = this.attached
    if (!a) return
    this.attached = null
    this.resume(a.conn)
    a.conn.tracker.attach(null)
    this.setAside.set(a.placement.shard, a)
  }

  /** Attaches the transaction's connection on this shard that waited aside, if there is one. */
  takeBack(shard: number): ServerConnection | null {
    const a = this.setAside.get(shard)
    if (!a) return null
    this.setAside.delete(shard)
    this.attach(a)
    return a.conn
  }

  /** The transaction's connection on this shard: the attached one or one aside. */
  inTransaction(shard: number): Attachment | undefined {
    return this.attached?.placement.shard === shard ? this.attached : this.setAside.get(shard)
  }

  /** The transaction's connections: the attached one and those aside. */
  transactionConnections(): ServerConnection[] {
    const out = [...this.setAside.values()].map((a) => a.conn)
    if (this.attached) out.push(this.attached.conn)
    return out
  }

  get spansShards(): boolean {
    return this.setAside.size > 0
  }

  /** Whether the client keeps any server connection: attached, parked (session pooling) or aside. */
  get holdsConnections(): boolean {
    return this.attached !== null || this.parked.size > 0 || this.setAside.size > 0
  }

  /** The connections aside, for a statement every shard of the transaction runs (a savepoint, SET LOCAL). */
  aside(): Attachment[] {
    return [...this.setAside.values()]
  }

  /**
   * The transaction ended on the attached connection as `ended` says (COMMIT or ROLLBACK): it ends so on the
   * connections aside, which then go back to the pool (one that fails to end is closed by it).
   */
  endAside(ended: 'COMMIT' | 'ROLLBACK'): void {
    for (const a of this.setAside.values()) {
      const back = () => a.placement.pool.release(a.conn)
      void callShard(a.conn, encodeQuery(ended)).then(back, back)
    }
    this.setAside.clear()
  }

  /**
   * The transaction's connections on every shard (attached and aside, in shard order), handed over to whoever
   * ends it: the lease forgets them, so a client that leaves meanwhile releases none of them.
   */
  takeTransaction(): Attachment[] {
    const all = [...this.setAside.values()]
    this.setAside.clear()
    const a = this.attached
    this.attached = null
    if (a) all.push(a)
    for (const p of all) {
      this.resume(p.conn)
      p.conn.tracker.attach(null)
    }
    return all.sort((x, y) => x.placement.shard - y.placement.shard)
  }

  /** Gives the attached connection back (transaction pooling) or parks it (session pooling). */
  release(): void {
    const a = this.attached
    if (!a) return
    this.attached = null
    if (this.sessionMode && !a.conn.closed) {
      a.conn.tracker.attach(null)
      return
    }
    this.resume(a.conn)
    a.placement.pool.release(a.conn)
  }

  /** Resolves once the attached connection has answered everything sent to it. */
  whenIdle(): Promise<void> {
    const a = this.attached
    if (!a || a.conn.tracker.idle) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  wakeIdleWaiters(): void {
    for (const w of this.idleWaiters.splice(0)) w()
  }

  /** The client's socket is full: stop reading the attached server until it drains. */
  pauseAttached(): void {
    const conn = this.attached?.conn
    if (conn && !this.paused.has(conn)) {
      conn.pause()
      this.paused.add(conn)
    }
  }

  resumeAll(): void {
    for (const c of this.paused) c.resume()
    this.paused.clear()
  }

  private resume(conn: ServerConnection): void {
    if (this.paused.delete(conn)) conn.resume()
  }

  /** The attached connection broke: forgotten (and unparked), and returned for the session to decide what next. */
  lost(): Attachment | null {
    const a = this.attached
    if (!a) return null
    this.attached = null
    if (this.sessionMode) this.parked.delete(`${a.placement.shard}:${a.placement.role}`)
    return a
  }

  /** The client left: every connection goes back, reset when `dirty` (pinned) or parked (session pooling). */
  releaseAll(dirty: boolean): void {
    this.wakeIdleWaiters()
    const a = this.attached
    this.attached = null
    if (a) {
      this.resume(a.conn)
      if (!this.sessionMode) a.placement.pool.release(a.conn, dirty)
    }
    for (const p of this.parked.values()) p.placement.pool.release(p.conn, true)
    this.parked.clear()
    for (const p of this.setAside.values()) p.placement.pool.release(p.conn, true)
    this.setAside.clear()
  }
}
