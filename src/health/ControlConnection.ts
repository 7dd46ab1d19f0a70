import net from 'node:net'
import pg from 'pg'
import type { Config } from '../config/ConfigSchema.js'
import { serverTlsOptions, type ServerTls } from '../protocol/ServerTls.js'

export interface ControlTarget {
  host: string
  port: number
}

/** The control credentials, and TLS towards the servers as the data path uses it (`server_tls`). */
export type ControlAccess = Config['control'] & { tls: ServerTls }

export function controlAccess(config: Config): ControlAccess {
  return { ...config.control, tls: { mode: config.server_tls, ...(config.server_tls_ca ? { ca: config.server_tls_ca } : {}) } }
}

function missingPassword(user: string): Error {
  return Object.assign(new Error(`the server asks control.user "${user}" for a password, and control.password is not set`), {
    code: '28P01',
  })
}

/** A check or action that did not finish in time: the server may be hung (SIGSTOP, swap, network black hole). */
export class ControlTimeoutError extends Error {
  constructor(
    readonly target: ControlTarget,
    readonly timeoutMs: number,
  ) {
    super(`no answer from ${target.host}:${target.port} within ${timeoutMs} ms`)
  }
}

/**
 * The proxy's own connection to one server (`config.control` credentials), for health checks and failover
 * actions. Kept open between queries; any failure or timeout destroys it so the next query reconnects.
 * Every query is bounded: a hung server cannot hold a caller longer than the timeout.
 */
export class ControlConnection {
  /** Successful log-ins so far: a caller can tell that the connection was re-established. */
  connects = 0
  private client: pg.Client | null = null
  private socket: net.Socket | null = null
  private connecting: Promise<pg.Client> | null = null

  constructor(
    readonly target: ControlTarget,
    private readonly access: ControlAccess,
    private readonly database: string = access.database,
  ) {}

  get connected(): boolean {
    return this.client !== null
  }

  /** Runs one statement (connecting first when needed) within `timeoutMs`, connection included. */
  async query<Row extends Record<string, unknown>>(sql: string, timeoutMs: number, params?: unknown[]): Promise<Row[]> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close()
        reject(new ControlTimeoutError(this.target, timeoutMs))
      }, timeoutMs)
    })
    try {
      const client = await Promise.race([this.connect(), timeout])
      const result = await Promise.race([client.query(sql, params), timeout])
      return result.rows as Row[]
    } catch (err) {
      this.close()
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /** Drops the connection at once (no goodbye: the server may not be listening). */
  close(): void {
    this.socket?.destroy()
    this.socket = null
    this.client = null
    this.connecting = null
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client)
    if (this.connecting) return this.connecting
    const { mode } = this.access.tls
    const attempt: Promise<pg.Client> = this.open(mode !== 'disable')
      .catch((err: unknown) => {
        // 'prefer', as libpq means it: a server without TLS is asked again in plain (unless close() came first).
        if (mode !== 'prefer' || this.connecting !== attempt || !(err instanceof Error) || !/does not support SSL/i.test(err.message)) throw err
        return this.open(false)
      })
      .catch((err: unknown) => {
        if (this.connecting === attempt) this.connecting = null
        throw err
      })
    this.connecting = attempt
    return attempt
  }

  private open(useTls: boolean): Promise<pg.Client> {
    const socket = new net.Socket()
    const client = new pg.Client({
      host: this.target.host,
      port: this.target.port,
      user: this.access.user,
      // Without one, pg would fail a password request with a bare client-side error (no SQLSTATE), and the
      // health check would count a live, merely misconfigured server as down: answer as the server would.
      password: this.access.password ?? (() => Promise.reject(missingPassword(this.access.user))),
      database: this.database,
      application_name: 'pgshard-control',
      ssl: useTls ? serverTlsOptions(this.access.tls, this.target.host) : false,
      // Our own socket, so a timeout can destroy it whatever state pg is in (TLS runs over it).
      stream: () => socket,
    })
    // A server that dies while we are idle must not become an unhandled 'error' event.
    client.on('error', () => {
      if (this.client === client) this.close()
    })
    this.socket = socket
    return client.connect().then(
      () => {
        if (this.socket !== socket) {
          socket.destroy()
          throw new Error('control connection closed while connecting')
        }
        this.client = client
        this.connecting = null
        this.connects++
        return client
      },
      (err: unknown) => {
        if (this.socket === socket) this.socket = null
        socket.destroy()
        throw err
      },
    )
  }
}

/** Runs one statement on a fresh connection and closes it: for actions on nodes the checker is not watching. */
export async function queryOnce<Row extends Record<string, unknown>>(
  target: ControlTarget,
  access: ControlAccess,
  sql: string,
  timeoutMs: number,
  database?: string,
  params?: unknown[],
): Promise<Row[]> {
  const conn = new ControlConnection(target, access, database)
  try {
    return await conn.query<Row>(sql, timeoutMs, params)
  } finally {
    conn.close()
  }
}
