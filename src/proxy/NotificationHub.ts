import net from 'node:net'
import pg from 'pg'
import type { Config } from '../config/ConfigSchema.js'
import { controlAccess } from '../health/ControlConnection.js'
import type { NodeState } from '../health/NodeState.js'
import type { Logger } from '../log/Logger.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { serverTlsOptions } from '../protocol/ServerTls.js'
import { notificationResponse } from '../protocol/ServerMessages.js'
import { quoteIdent } from '../router/SqlQuoting.js'

/** A client that LISTENs: it gets NotificationResponse messages, after any reply it still waits for. */
export interface NotificationListener {
  notify(message: Buffer): void
}

const RECONNECT_MS = 1_000
const LISTEN_TIMEOUT_MS = 5_000

/**
 * LISTEN in transaction pooling without pinning a server connection per listening client: one connection per
 * server database, on the primary of the shard NOTIFY goes to (the default shard), LISTENs for every channel
 * some client listens on and hands each notification to those clients. It follows that primary through a
 * failover or switchover (checked every `health.interval`); notifications sent while it reconnects are lost,
 * as they are for a client whose own connection drops.
 */
export class NotificationHub {
  private readonly databases = new Map<string, DatabaseListener>()
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly config: () => Config,
    private readonly primary: () => NodeState | undefined,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => {
      for (const d of this.databases.values()) d.follow()
    }, config().health.interval)
    this.timer.unref()
  }

  /** Resolves once the hub listens on `channel` (a NOTIFY sent after that reaches the client); rejects with a PgError. */
  listen(listener: NotificationListener, database: string, channel: string): Promise<void> {
    let d = this.databases.get(database)
    if (!d) {
      d = new DatabaseListener(database, this.config, this.primary, this.log)
      this.databases.set(database, d)
    }
    return d.add(listener, channel)
  }

  /** UNLISTEN `channel`, or every channel (null). */
  unlisten(listener: NotificationListener, channel: string | null): void {
    for (const d of this.databases.values()) d.remove(listener, channel)
  }

  /** Whether the listener listens on anything here. */
  listens(listener: NotificationListener): boolean {
    for (const d of this.databases.values()) if (d.has(listener)) return true
    return false
  }

  close(): void {
    clearInterval(this.timer)
    for (const d of this.databases.values()) d.close()
    this.databases.clear()
  }
}

class DatabaseListener {
  private readonly channels = new Map<string, Set<NotificationListener>>()
  private client: pg.Client | null = null
  private socket: net.Socket | null = null
  private node: string | null = null
  private connecting: Promise<pg.Client> | null = null
  private retry: NodeJS.Timeout | null = null
  private closed = false
  /** A reconnect failed since the last success: said once, not every second of an outage. */
  private failing = false

  constructor(
    private readonly database: string,
    private readonly config: () => Config,
    private readonly primary: () => NodeState | undefined,
    private readonly log: Logger,
  ) {}

  async add(listener: NotificationListener, channel: string): Promise<void> {
    let set = this.channels.get(channel)
    const first = !set
    if (!set) {
      set = new Set()
      this.channels.set(channel, set)
    }
    set.add(listener)
    if (!first && this.client) return
    try {
      const client = await this.connect()
      if (first) await withTimeout(client.query(`LISTEN ${quoteIdent(channel)}`))
    } catch (err) {
      this.remove(listener, channel)
      throw new PgError(SqlState.CANNOT_CONNECT_NOW, `pgshard could not LISTEN on "${channel}": ${(err as Error).message}`, { hint: 'Retry when the shard\u2019s primary is back.' })
    }
  }

  remove(listener: NotificationListener, channel: string | null): void {
    for (const [name, set] of this.channels) {
      if (channel !== null && name !== channel) continue
      if (!set.delete(listener) || set.size > 0) continue
      this.channels.delete(name)
      this.client?.query(`UNLISTEN ${quoteIdent(name)}`).catch(() => undefined)
    }
    if (this.channels.size === 0) this.disconnect()
  }

  has(listener: NotificationListener): boolean {
    for (const set of this.channels.values()) if (set.has(listener)) return true
    return false
  }

  /** Moves to the shard's current primary if it changed (failover, switchover). */
  follow(): void {
    if (this.channels.size === 0 || this.connecting) return
    const primary = this.primary()
    if (primary && primary.name !== this.node) {
      this.disconnect()
      this.reconnect()
    }
  }

  close(): void {
    this.closed = true
    this.channels.clear()
    this.disconnect()
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client)
    if (this.connecting) return this.connecting
    const attempt = this.open().finally(() => {
      if (this.connecting === attempt) this.connecting = null
    })
    this.connecting = attempt
    return attempt
  }

  private async open(): Promise<pg.Client> {
    const node = this.primary()
    if (!node) throw new Error('the shard has no primary')
    const config = this.config()
    const access = controlAccess(config)
    const socket = new net.Socket()
    const client = new pg.Client({
      host: node.host,
      port: node.port,
      user: access.user,
      password: access.password,
      database: this.database,
      application_name: 'pgshard-listen',
      // 'prefer' accepts a plain connection anyway: this one only carries channel names and payloads.
      ssl: access.tls.mode === 'disable' || access.tls.mode === 'prefer' ? false : serverTlsOptions(access.tls, node.host),
      stream: () => socket,
    })
    client.on('notification', (n) => {
      const listeners = this.channels.get(n.channel)
      if (!listeners) return
      const message = notificationResponse(n.processId, n.channel, n.payload ?? '')
      for (const l of listeners) l.notify(message)
    })
    client.on('error', () => this.lost(client))
    client.on('end', () => this.lost(client))
    try {
      await withTimeout(client.connect())
      // Every channel listened on so far: after a reconnect, the whole set again.
      for (const channel of this.channels.keys()) await withTimeout(client.query(`LISTEN ${quoteIdent(channel)}`))
      if (this.closed || this.channels.size === 0) throw new Error('no channel is listened on any more')
    } catch (err) {
      socket.destroy()
      throw err
    }
    this.client = client
    this.socket = socket
    this.node = node.name
    return client
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return
    this.log.warn({ database: this.database, node: this.node }, 'the LISTEN connection was lost: reconnecting (notifications sent meanwhile are lost)')
    this.disconnect()
    this.reconnect()
  }

  private reconnect(): void {
    if (this.closed || this.retry || this.channels.size === 0) return
    this.retry = setTimeout(() => {
      this.retry = null
      this.connect().then(
        () => {
          this.failing = false
        },
        (err: Error) => {
          if (!this.failing) this.log.warn({ database: this.database, err: err.message }, 'could not reconnect the LISTEN connection: trying again every second')
          this.failing = true
          this.reconnect()
        },
      )
    }, RECONNECT_MS)
    this.retry.unref()
  }

  private disconnect(): void {
    const socket = this.socket
    this.client = null
    this.socket = null
    this.node = null
    socket?.destroy()
  }
}

function withTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${LISTEN_TIMEOUT_MS} ms`)), LISTEN_TIMEOUT_MS)
    }),
  ]).finally(() => clearTimeout(timer))
}
