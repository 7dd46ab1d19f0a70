import type { Config } from '../config/ConfigSchema.js'
import type { NodeState } from '../health/NodeState.js'
import { loginToServer } from '../protocol/ServerLogin.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import type { ScramKeys } from '../protocol/ScramPassThrough.js'
import { Pool, type PoolOptions } from './Pool.js'
import type { ServerConnection } from './ServerConnection.js'
import { ShardTypeOids } from './ShardTypeOids.js'

/** Server answers a client may act on keep their SQLSTATE; any other log-in failure is the proxy's (08001). */
const PASS_THROUGH = new Set([SqlState.INVALID_CATALOG_NAME, SqlState.TOO_MANY_CONNECTIONS, SqlState.CANNOT_CONNECT_NOW])

function serverLoginError(node: NodeState, user: string, err: PgError): PgError {
  const code = PASS_THROUGH.has(err.code as never) ? err.code : SqlState.SQLCLIENT_UNABLE_TO_ESTABLISH
  return new PgError(code, `pgshard could not log in to server ${node.name} (${node.host}:${node.port}) as "${user}": ${err.message}`, {
    hint: code !== SqlState.SQLCLIENT_UNABLE_TO_ESTABLISH
      ? undefined
      : err.options.hint !== undefined
        ? err.options.hint
        : /no encryption/.test(err.message)
        ? 'The server accepts only TLS log-ins: set server_tls to require (or prefer) in the config.'
        : 'Check the server is up and users[].password / server_password match the role on the server.',
  })
}

export interface PoolManagerEvents {
  onServerFailure(node: NodeState, err: Error): void
}

export interface PoolCredentials {
  user: string
  password?: string
  /** Without a password: the keys of a client's SCRAM log-in (the latest one's, after a password change). */
  scram?: ScramKeys
  database: string
}

const ALL = ''
const IDLE_POLL_MS = 20

function poolOptions(config: Config): PoolOptions {
  const p = config.pool
  return {
    size: p.size,
    crossShardReserve: p.cross_shard_reserve,
    minIdle: p.min_idle,
    maxQueue: p.max_queue,
    checkoutTimeout: p.checkout_timeout,
    idleTimeout: p.idle_timeout,
    maxLifetime: p.max_lifetime,
    preparedCapacity: p.prepared_statements_cache,
  }
}

/** Every pool, one per (node, user, server database), created on first use. */
export class PoolManager {
  private readonly pools = new Map<string, { pool: Pool; node: NodeState; creds: PoolCredentials }>()
  /** Databases paused by PAUSE ('' stands for all). */
  private readonly paused = new Set<string>()
  private timer: NodeJS.Timeout

  constructor(
    private config: Config,
    private readonly events: PoolManagerEvents,
    /** Each shard's numbers for created types, which its connections tell clients in the default shard's. */
    readonly typeOids = new ShardTypeOids(),
  ) {
    // The janitor: idle timeout, lifetime and min_idle, checked every second.
    this.timer = setInterval(() => {
      for (const { pool } of this.pools.values()) pool.maintain()
    }, 1000)
    this.timer.unref()
  }

  pool(node: NodeState, creds: PoolCredentials): Pool {
    const database = node.config.database ?? creds.database
    const key = `${node.name}\u0000${creds.user}\u0000${database}`
    const hit = this.pools.get(key)
    if (hit) {
      if (creds.scram) hit.creds.scram = creds.scram
      return hit.pool
    }
    const entry = { node, creds: { ...creds, database } }
    const pool = new Pool(
      `${creds.user}@${database}/${node.name}`,
      node.name,
      poolOptions(this.config),
      () =>
        loginToServer(
          { host: node.host, port: node.port },
          {
            user: creds.user,
            database,
            password: creds.password,
            scram: entry.creds.scram,
            tls: this.config.server_tls,
            tlsCa: this.config.server_tls_ca,
            timeoutMs: this.config.pool.connect_timeout,
          },
        ).catch((err: PgError) => {
          throw serverLoginError(node, creds.user, err)
        }),
      { onServerFailure: (err) => this.events.onServerFailure(node, err) },
      this.typeOids.forPool(node.shard, database),
    )
    this.pools.set(key, { pool, ...entry })
    if (this.isPaused(database)) pool.pause()
    return pool
  }

  all(): { pool: Pool; node: NodeState; user: string; database: string }[] {
    return [...this.pools.values()].map((e) => ({ pool: e.pool, node: e.node, user: e.creds.user, database: e.creds.database }))
  }

  /**
   * Applies new pool settings to every pool (a reload); connections stay. Pools of a user that is gone (from the
   * file, and no auth_query may find it) or logs in to the servers with another password now are retired (busy
   * connections close when released).
   */
  reconfigure(config: Config): void {
    this.config = config
    for (const [key, e] of this.pools) {
      const user = config.users.find((u) => u.name === e.creds.user)
      const gone = user === undefined ? config.auth_query === undefined : (user.server_password ?? user.password) !== e.creds.password
      if (gone) {
        e.pool.close()
        this.pools.delete(key)
        continue
      }
      e.pool.setOptions(poolOptions(config))
    }
  }

  /** PAUSE: pools of this database (every database when null), existing and future, hand out no connection. */
  pauseDatabase(database: string | null): Pool[] {
    this.paused.add(database ?? ALL)
    const pools = this.matching(database)
    for (const p of pools) p.pause()
    return pools
  }

  /** Every open connection of every pool, lent or idle. */
  *serverConnections(): Iterable<ServerConnection> {
    for (const e of this.pools.values()) for (const { conn } of e.pool.connections()) yield conn
  }

  /** Waits until none of `pools` has a connection lent (or `timeoutMs` passed); resolves with how many still are. */
  async untilIdle(pools: Pool[], timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs
    const busy = () => pools.reduce((n, p) => n + p.counts.active, 0)
    while (busy() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, IDLE_POLL_MS))
    return busy()
  }

  resumeDatabase(database: string | null): Pool[] {
    if (database === null) this.paused.clear()
    else this.paused.delete(database)
    const pools = this.matching(database).filter((p) => !this.isPaused(this.entryOf(p)!.creds.database))
    for (const p of pools) p.resume()
    return pools
  }

  private matching(database: string | null): Pool[] {
    return [...this.pools.values()].filter((e) => database === null || e.creds.database === database).map((e) => e.pool)
  }

  private entryOf(pool: Pool): { creds: PoolCredentials } | undefined {
    return [...this.pools.values()].find((e) => e.pool === pool)
  }

  private isPaused(database: string): boolean {
    return this.paused.has(ALL) || this.paused.has(database)
  }

  /** Closes and forgets the pools of a node (removed from the map or fenced). */
  dropNode(nodeName: string, immediately: boolean): void {
    for (const [key, e] of this.pools) {
      if (e.node.name !== nodeName) continue
      if (immediately) e.pool.destroyAll()
      else e.pool.close()
      this.pools.delete(key)
    }
  }

  close(): void {
    clearInterval(this.timer)
    for (const { pool } of this.pools.values()) pool.close()
  }
}
