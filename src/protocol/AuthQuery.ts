import type { Config, UserConfig } from '../config/ConfigSchema.js'
import { ControlConnection, controlAccess } from '../health/ControlConnection.js'
import type { NodeState } from '../health/NodeState.js'
import { PgError, SqlState } from './PgError.js'

const LOOKUP_TIMEOUT_MS = 5_000
/** Answers kept at most: a client probing random names cannot grow the cache without bound. */
const MAX_CACHED = 10_000

interface Cached {
  user: UserConfig | null
  until: number
}

/**
 * Users not in the config, looked up on a server with `auth_query` (as PgBouncer's): the query returns the
 * role's SCRAM verifier, which checks the client; the client's proven keys then log in to the servers. Answers,
 * "no such user" included, are kept for `cache_ttl`; lookups of the same name in flight are shared.
 */
export class AuthQuery {
  private readonly cache = new Map<string, Cached>()
  private readonly pending = new Map<string, Promise<UserConfig | null>>()
  /** One connection for every lookup (pg runs them in turn), replaced when the node or the credentials change. */
  private conn: { id: string; conn: ControlConnection } | null = null

  constructor(
    private readonly config: () => Config,
    private readonly server: () => NodeState,
  ) {}

  /** The user as a config entry, or null when the servers have no such role (or it may not log in). */
  lookup(name: string): Promise<UserConfig | null> {
    const hit = this.cache.get(name)
    if (hit && hit.until > Date.now()) return Promise.resolve(hit.user)
    const inFlight = this.pending.get(name)
    if (inFlight) return inFlight
    const read = this.read(name).finally(() => this.pending.delete(name))
    this.pending.set(name, read)
    return read
  }

  private async read(name: string): Promise<UserConfig | null> {
    const config = this.config()
    const settings = config.auth_query!
    const node = this.server()
    let rows: Record<string, unknown>[]
    try {
      rows = await this.connection(node, config).query(settings.query, LOOKUP_TIMEOUT_MS, [name])
    } catch (err) {
      throw PgError.fatal(SqlState.CANNOT_CONNECT_NOW, `could not look up user "${name}" with auth_query on ${node.name}: ${(err as Error).message}`, 'Check auth_query.query and that control.user may run it (pg_authid needs a superuser, or a SECURITY DEFINER function).')
    }
    const value = rows[0] === undefined ? null : Object.values(rows[0])[0]
    if (typeof value === 'string' && value.startsWith('md5'))
      throw PgError.fatal(SqlState.INVALID_AUTHORIZATION, `the servers keep an MD5 password for user "${name}": pgshard's auth_query needs a SCRAM-SHA-256 verifier`, 'Set password_encryption = scram-sha-256 on the servers and set the role\u2019s password again.')
    const user: UserConfig | null = typeof value === 'string' && value.startsWith('SCRAM-SHA-256$') ? { name, scram_verifier: value, auth: 'scram-sha-256', admin: false } : null
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!)
    this.cache.set(name, { user, until: Date.now() + settings.cache_ttl })
    return user
  }

  /** Closes the lookup connection (the proxy stops). */
  close(): void {
    this.conn?.conn.close()
    this.conn = null
  }

  private connection(node: NodeState, config: Config): ControlConnection {
    const access = controlAccess(config)
    const id = JSON.stringify([node.host, node.port, config.auth_query!.database, access])
    if (this.conn?.id !== id) {
      this.conn?.conn.close()
      this.conn = { id, conn: new ControlConnection(node, access, config.auth_query!.database) }
    }
    return this.conn.conn
  }
}
