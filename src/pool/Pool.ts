import { encodeQuery } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { Expect } from '../protocol/ResponseTracker.js'
import type { LoggedInServer } from '../protocol/ServerLogin.js'
import type { TypeOidMap } from '../protocol/TypeOidMap.js'
import { ServerConnection } from './ServerConnection.js'

export interface PoolOptions {
  size: number
  /** Connections beyond `size` that only a caller already holding another pool's connection may use. */
  crossShardReserve: number
  minIdle: number
  maxQueue: number
  checkoutTimeout: number
  idleTimeout: number
  maxLifetime: number
  preparedCapacity: number
}

export interface PoolEvents {
  /** A connection attempt failed or an open connection broke: evidence for the health checker. */
  onServerFailure?(err: Error): void
  onConnect?(): void
}

interface Waiter {
  /** Holds a connection of another pool meanwhile (a transaction or statement across shards). */
  holding: boolean
  resolve(conn: ServerConnection): void
  reject(err: Error): void
  timer: NodeJS.Timeout | null
  since: number
  /** Stops listening to the caller's cancel signal. */
  unlisten: (() => void) | null
}

function cancelled(): PgError {
  return new PgError(SqlState.QUERY_CANCELED, 'canceling statement due to user request', { hint: 'It was still waiting for a server connection.' })
}

/**
 * Server connections to one node for one (user, database). Bounded: at most `size` connections, at most
 * `maxQueue` clients waiting, each for at most `checkoutTimeout`. Idle connections are reused most recent first
 * so that the rest age out by idle timeout.
 *
 * A caller that waits while it holds a connection of another pool (a transaction across shards) goes ahead of
 * those that hold none, and may open up to `crossShardReserve` connections beyond `size`. Without that, two
 * such transactions whose pools are full of each other's kind wait on each other until the checkout timeout:
 * with a connection of each shard, a transaction finishes and gives both back. A connection beyond `size` is
 * closed when it comes back and no such caller waits.
 */
export class Pool {
  private readonly idle: ServerConnection[] = []
  private readonly busy = new Set<ServerConnection>()
  /** Given back while a cancel for them was still on its way: lent again once it has arrived. */
  private readonly beingCanceled = new Set<ServerConnection>()
  private readonly waiters: Waiter[] = []
  private connecting = 0
  private readonly resetting = new Set<ServerConnection>()
  /** Connections made before the last renew(): closed instead of lent again. */
  private readonly stale = new WeakSet<ServerConnection>()
  private generation = 0
  closed = false
  paused = false
  /** Cumulative counters for SHOW STATS / metrics. */
  readonly stats = { acquired: 0, waitMicros: 0, maxWaitSince: 0, timeouts: 0, connectFailures: 0, resets: 0 }

  constructor(
    readonly name: string,
    readonly nodeName: string,
    private options: PoolOptions,
    private readonly connector: () => Promise<LoggedInServer>,
    private readonly events: PoolEvents = {},
    /** The shard's numbers for created types against the default shard's, for each connection. */
    private readonly typeOids: TypeOidMap | null = null,
  ) {}

  get size(): number {
    return this.options.size
  }

  get counts(): { active: number; idle: number; connecting: number; waiting: number; beingCanceled: number; total: number } {
    return {
      active: this.busy.size,
      idle: this.idle.length,
      connecting: this.connecting + this.resetting.size,
      waiting: this.waiters.length,
      beingCanceled: this.beingCanceled.size,
      total: this.total,
    }
  }

  /** Connections open or opening, whatever their state. */
  private get total(): number {
    return this.busy.size + this.idle.length + this.connecting + this.resetting.size + this.beingCanceled.size
  }

  /** Microseconds the oldest waiting client has waited. */
  get oldestWaitMicros(): number {
    return this.waiters.length ? (Date.now() - this.waiters[0].since) * 1000 : 0
  }

  connections(): { conn: ServerConnection; state: 'active' | 'idle' }[] {
    return [
      ...[...this.busy, ...this.beingCanceled].map((conn) => ({ conn, state: 'active' as const })),
      ...this.idle.map((conn) => ({ conn, state: 'idle' as const })),
    ]
  }

  setOptions(options: PoolOptions): void {
    this.options = options
    this.pump()
  }

  /** An idle connection now, or null (then acquire() waits for one). */
  tryAcquire(): ServerConnection | null {
    if (this.closed || this.paused || this.waiters.length > 0) return null
    const conn = this.takeIdle()
    if (!conn) return null
    this.busy.add(conn)
    this.stats.acquired++
    return conn
  }

  /**
   * A connection, now or when one is free; `signal` (a client's cancel) gives up the wait with 57014.
   * `holding`: the caller holds a connection of another pool meanwhile.
   */
  acquire(signal?: AbortSignal, holding = false): Promise<ServerConnection> {
    if (this.closed) return Promise.reject(new PgError(SqlState.ADMIN_SHUTDOWN, `pool ${this.name} is closed`))
    if (signal?.aborted) return Promise.reject(cancelled())
    if (!this.paused) {
      const conn = this.takeIdle()
      if (conn) {
        this.busy.add(conn)
        this.stats.acquired++
        return Promise.resolve(conn)
      }
    }
    if (this.waiters.length >= this.options.maxQueue)
      return Promise.reject(
        new PgError(SqlState.TOO_MANY_CONNECTIONS, `pool ${this.name} queue is full (${this.options.maxQueue} clients waiting)`, {
          hint: 'Raise pool.size or pool.max_queue, or send fewer concurrent transactions.',
        }),
      )
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { holding, resolve, reject, timer: null, since: Date.now(), unlisten: null }
      if (signal) {
        const onAbort = () => this.failWaiter(waiter, cancelled())
        signal.addEventListener('abort', onAbort, { once: true })
        waiter.unlisten = () => signal.removeEventListener('abort', onAbort)
      }
      if (this.options.checkoutTimeout > 0)
        waiter.timer = setTimeout(() => {
          this.stats.timeouts++
          this.failWaiter(
            waiter,
            new PgError(
              SqlState.TOO_MANY_CONNECTIONS,
              `pool timeout: no server connection to ${this.nodeName} became free within ${this.options.checkoutTimeout} ms`,
              { hint: 'The pool is saturated: raise pool.size or pool.checkout_timeout, or shorten transactions.' },
            ),
          )
        }, this.options.checkoutTimeout)
      const firstNotHolding = holding ? this.waiters.findIndex((w) => !w.holding) : -1
      if (firstNotHolding >= 0) this.waiters.splice(firstNotHolding, 0, waiter)
      else this.waiters.push(waiter)
      this.pump()
    })
  }

  /**
   * Gives a connection back. `reset` asks for DISCARD ALL first (session pooling, or state the proxy could not
   * track); a connection that is not idle at a transaction boundary is closed rather than handed on dirty.
   */
  release(conn: ServerConnection, reset = false): void {
    if (!this.busy.delete(conn)) return
    conn.setHandler(null)
    conn.tracker.attach(null)
    conn.lastUsedAt = Date.now()
    if (conn.cancelling) {
      this.beingCanceled.add(conn)
      conn.whenNotCancelling(() => {
        if (this.beingCanceled.delete(conn)) this.settle(conn, reset)
      })
      return
    }
    this.settle(conn, reset)
  }

  /** A connection no client holds: closed, reset, or made idle. */
  private settle(conn: ServerConnection, reset: boolean): void {
    const expired = this.options.maxLifetime > 0 && Date.now() - conn.createdAt > this.options.maxLifetime
    // Not at a boundary (a transaction, or a pipeline without its Sync, whose writes a Sync would commit): closed,
    // so the server rolls it back.
    if (this.closed || expired || this.stale.has(conn) || conn.closed || !conn.tracker.idle || conn.tracker.status !== 'I' || conn.tracker.inGroup) {
      conn.terminate()
      this.pump()
      return
    }
    if (reset || conn.dirty) {
      this.reset(conn)
      return
    }
    this.putIdle(conn)
  }

  private reset(conn: ServerConnection): void {
    this.resetting.add(conn)
    this.stats.resets++
    conn.tracker.push({
      expect: Expect.Query,
      mode: 'suppress',
      done: (ok) => {
        this.resetting.delete(conn)
        conn.prepared.clear()
        conn.settings.clear()
        conn.unnamedOwner = null
        conn.dirty = false
        if (ok && !conn.closed && !this.closed) this.putIdle(conn)
        else {
          conn.terminate()
          this.pump()
        }
      },
    })
    conn.write(encodeQuery('DISCARD ALL'))
  }

  private putIdle(conn: ServerConnection): void {
    if (this.stale.has(conn)) {
      conn.terminate()
      this.pump()
      return
    }
    const waiter = this.paused ? undefined : this.waiters[0]
    if (this.total >= this.options.size && !waiter?.holding) {
      // Beyond the size (the reserve, or a size lowered by a reload): only a caller holding another pool's gets it.
      conn.terminate()
      this.pump()
      return
    }
    if (waiter) {
      this.handTo(waiter, conn)
      return
    }
    this.idle.push(conn)
  }

  private handTo(waiter: Waiter, conn: ServerConnection): void {
    this.forgetWaiter(waiter)
    this.busy.add(conn)
    this.stats.acquired++
    this.stats.waitMicros += (Date.now() - waiter.since) * 1000
    waiter.resolve(conn)
  }

  private takeIdle(): ServerConnection | undefined {
    for (;;) {
      const conn = this.idle.pop()
      if (!conn) return undefined
      if (!conn.closed) return conn
    }
  }

  /** No longer waiting: out of the queue, its timer and cancel listener gone. */
  private forgetWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w)
    if (i >= 0) this.waiters.splice(i, 1)
    if (w.timer) clearTimeout(w.timer)
    w.unlisten?.()
  }

  private failWaiter(w: Waiter, err: Error): void {
    this.forgetWaiter(w)
    w.reject(err)
  }

  /** Serves waiters from idle connections, and opens connections while under size. */
  private pump(): void {
    if (this.closed || this.paused) return
    while (this.waiters.length > 0) {
      const conn = this.takeIdle()
      if (!conn) break
      this.handTo(this.waiters[0], conn)
    }
    const total = this.total
    const wanted = Math.max(this.waiters.length - this.connecting, this.options.minIdle - this.idle.length - this.connecting, 0)
    const holding = this.waiters.filter((w) => w.holding).length
    const limit = this.options.size + Math.min(holding, this.options.crossShardReserve)
    for (let i = 0; i < Math.min(wanted, limit - total); i++) this.open()
  }

  private open(): void {
    this.connecting++
    const generation = this.generation
    this.connector().then(
      (login) => {
        this.connecting--
        const conn = new ServerConnection(login, this.nodeName, this.options.preparedCapacity, {
          onClose: (c, err) => this.onConnectionClosed(c, err),
        }, this.typeOids)
        this.events.onConnect?.()
        if (generation !== this.generation) this.stale.add(conn)
        if (this.closed) {
          conn.terminate()
          return
        }
        this.putIdle(conn)
      },
      (err: Error) => {
        this.connecting--
        this.stats.connectFailures++
        this.events.onServerFailure?.(err)
        // Tell one waiting client now rather than letting it run into the timeout.
        const waiter = this.waiters[0]
        if (waiter) this.failWaiter(waiter, err)
      },
    )
  }

  private onConnectionClosed(conn: ServerConnection, err: Error | null): void {
    const wasIdle = this.idle.indexOf(conn)
    if (wasIdle >= 0) this.idle.splice(wasIdle, 1)
    this.busy.delete(conn)
    this.beingCanceled.delete(conn)
    this.resetting.delete(conn)
    if (err) this.events.onServerFailure?.(err)
    this.pump()
  }

  /** Closes connections idle too long (keeping minIdle) or past their lifetime; opens up to minIdle. */
  maintain(now = Date.now()): void {
    const { idleTimeout, maxLifetime, minIdle } = this.options
    for (let i = 0; i < this.idle.length && this.idle.length > minIdle; ) {
      const c = this.idle[i]
      if ((idleTimeout > 0 && now - c.lastUsedAt > idleTimeout) || (maxLifetime > 0 && now - c.createdAt > maxLifetime)) {
        this.idle.splice(i, 1)
        c.terminate()
      } else i++
    }
    this.pump()
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    this.pump()
  }

  /**
   * Replaces every connection, for what a server fixes at log-in (`ALTER ROLE … SET`, a changed configuration):
   * idle ones close now, the others when they come back; new ones are opened as clients need them.
   */
  renew(): number {
    this.generation++
    const renewed = this.connections().length + this.connecting + this.resetting.size
    for (const { conn } of this.connections()) this.stale.add(conn)
    for (const conn of this.resetting) this.stale.add(conn)
    for (const c of this.idle.splice(0)) c.terminate()
    this.pump()
    return renewed
  }

  /** Closes idle connections now; busy ones close when released. */
  close(): void {
    this.closed = true
    for (const w of [...this.waiters]) this.failWaiter(w, new PgError(SqlState.ADMIN_SHUTDOWN, `pool ${this.name} was closed`))
    for (const c of this.idle.splice(0)) c.terminate()
  }

  /** Closes every connection at once, busy ones included (the node was fenced or removed). */
  destroyAll(): void {
    this.close()
    for (const c of [...this.busy, ...this.beingCanceled]) c.destroy(new PgError(SqlState.ADMIN_SHUTDOWN, `connection to ${this.nodeName} closed by the proxy`))
  }
}
