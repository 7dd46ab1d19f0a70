import { randomInt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { serialize } from 'pg-protocol/dist/serializer'
import type { Config, DatabaseConfig, UserConfig } from '../config/ConfigSchema.js'
import type { NodeState } from '../health/NodeState.js'
import { Topology, type PickOptions } from '../health/Topology.js'
import type { Logger } from '../log/Logger.js'
import type { DataPathMetrics } from '../metrics/DataPathMetrics.js'
import { PoolManager, type PoolCredentials } from '../pool/PoolManager.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import { AuthQuery } from '../protocol/AuthQuery.js'
import { VerifierCache, authenticateClient } from '../protocol/ClientAuth.js'
import type { FrontendReader } from '../protocol/FrontendReader.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import type { ScramKeys } from '../protocol/ScramPassThrough.js'
import { backendKeyData, errorResponse, parameterStatus, readyForQuery } from '../protocol/ServerMessages.js'
import type { MergeTypes } from '../router/merge/EnumTypes.js'
import type { BoundParam, Role, Route, RoutingContext } from '../router/Route.js'
import { HandshakeInput, readStartup } from './ClientHandshake.js'
import { NotificationHub } from './NotificationHub.js'
import { RoutingGate } from './RoutingGate.js'
import { Session } from './Session.js'
import type { Analyzed, Identity, Placement, SessionServices } from './SessionServices.js'
import type { StatementPlan } from '../router/StatementPlan.js'
import { StatementNames } from './StatementNames.js'
import { SequenceKeys } from './SequenceKeys.js'


export const ADMIN_DATABASE = 'pgshard'
/** What the console reports as server_version: psql adapts its queries to it. */
const ADMIN_SERVER_VERSION = '15.0 (pgshard)'

/** A client of the admin console, authenticated and ready for queries. */
export interface AdminClient {
  socket: net.Socket
  reader: FrontendReader
  user: UserConfig
  params: Map<string, string>
}

/** Decides where statements go: the analyzer and router, behind one small interface. */
export interface RoutingEngine {
  analyze(sql: string): Analyzed
  route(analyzed: Analyzed, param: (n: number) => BoundParam | undefined, ctx: RoutingContext): Route
  /** The statement may write or lock rows, or call a volatile function that may (nextval …). */
  mayWrite(plan: StatementPlan): boolean
  /** The search_path a server session of this role in this database starts with. */
  defaultSearchPath(database: string, role: string): readonly string[]
  /** The shard map changed (reload). */
  reconfigure(config: Config): void
  /** Enum labels from the shards' catalogs, for merges. */
  readonly mergeTypes: MergeTypes
}

/** Parameters every server reports at log-in; a client gets the same set from the proxy. */
const REPORTED = [
  'server_version',
  'server_encoding',
  'client_encoding',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'integer_datetimes',
  'standard_conforming_strings',
  'is_superuser',
  'session_authorization',
  'application_name',
  'default_transaction_read_only',
  'in_hot_standby',
  'scram_iterations',
]

const AUTH_TIMEOUT_MS = 60_000
/** A cancel the server has not confirmed by then is given up (the connection is lent again). */
const CANCEL_TIMEOUT_MS = 5_000
const HOLD_POLL_MS = 20

/**
 * The proxy: accepts clients, authenticates them, and hands each to a Session. Owns the live topology, the
 * pools and the cancel keys. Everything here may be read by the admin console and metrics.
 */
export class ProxyServer {
  config: Config
  readonly topology: Topology
  readonly pools: PoolManager
  readonly sessions = new Set<Session>()
  /** Closed by holdClients(). */
  private readonly gate = new RoutingGate()
  /** LISTEN for clients in transaction pooling, on the default shard's primary. */
  private readonly notifications: NotificationHub
  private readonly byPid = new Map<number, Session>()
  private readonly server: net.Server
  private readonly verifiers = new VerifierCache()
  private readonly authQuery = new AuthQuery(() => this.config, () => this.pickNode(this.routingDefaultShard()))
  private readonly statementNames = new StatementNames()
  private tlsContext: tls.SecureContext | null = null
  private readonly serverParams = new Map<string, Map<string, string>>()
  private handshaking = 0
  private accepting = true
  readonly services: SessionServices
  /** Serves a client logged in to the admin console (database "pgshard"); set by ProxyApp. */
  adminConsole: ((client: AdminClient) => void) | null = null
  /** A server failed on the data path or at log-in: evidence for the health checker; set by ProxyApp. */
  onServerFailure: ((nodeName: string, err: Error) => void) | null = null
  /** A client left (its counters, for SHOW STATS); set by ProxyApp. */
  onSessionEnd: ((session: Session) => void) | null = null
  /** Reads the catalogs for a statement refused for want of them, after DDL (DdlCatalogReads.readNow); set by ProxyApp. */
  catalogAfterDdl: () => Promise<boolean> = () => Promise.resolve(false)

  constructor(
    config: Config,
    readonly routing: RoutingEngine,
    readonly log: Logger,
    readonly metrics: DataPathMetrics,
  ) {
    this.config = config
    this.topology = new Topology(config)
    this.pools = new PoolManager(config, {
      onServerFailure: (node, err) => {
        this.log.warn({ node: node.name, err: err.message }, 'server connection failed')
        this.onServerFailure?.(node.name, err)
      },
    })
    this.tlsContext = loadTls(config)
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket))
    this.server.maxConnections = config.listen.max_client_connections + 64
    this.notifications = new NotificationHub(
      () => this.config,
      () => this.topology.primaryOf(this.routingDefaultShard()),
      log.child({ component: 'listen' }),
    )
    this.services = {
      config: () => this.config,
      statementNames: this.statementNames,
      sequenceKeys: new SequenceKeys(),
      metrics,
      analyze: (sql) => this.routing.analyze(sql),
      route: (a, p, ctx) => this.routing.route(a, p, ctx),
      defaultShard: () => this.routingDefaultShard(),
      mayWrite: (plan) => this.routing.mayWrite(plan),
      mergeTypes: this.routing.mergeTypes,
      defaultSearchPath: (identity) => this.routing.defaultSearchPath(identity.database.name, identity.user.name),
      place: (shard, role, identity, options) => this.place(shard, role, identity, options),
      cancel: (nodeName, conn) => this.cancelOnServer(nodeName, conn),
      serverFailed: (nodeName, err) => {
        this.log.warn({ node: nodeName, err: err.message }, 'server failed on the data path')
        this.onServerFailure?.(nodeName, err)
      },
      onSessionEnd: (s) => this.forget(s as Session),
      gate: this.gate,
      catalogAfterDdl: () => this.catalogAfterDdl(),
      notifications: this.notifications,
      serverConnections: () => this.pools.serverConnections(),
      log: this.log.child({ component: 'transactions' }),
    }
  }

  listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.config.listen
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        const addr = this.server.address() as net.AddressInfo
        this.log.info({ host: addr.address, port: addr.port }, 'listening')
        resolve({ host: addr.address, port: addr.port })
      })
    })
  }

  get address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo
  }

  place(shard: number, role: Role, identity: Identity, options: PickOptions = {}): Placement {
    const node = this.topology.pick(shard, role, options)
    const creds = credentials(identity)
    const pool = this.pools.pool(node, creds)
    const serverDatabase = node.config.database ?? creds.database
    return { shard, shardName: this.topology.shards[shard].name, role: node.role === 'primary' ? 'primary' : 'replica', nodeName: node.name, node, pool, serverDatabase }
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true)
    socket.on('error', () => socket.destroy())
    if (!this.accepting) {
      socket.end(errorResponse(PgError.fatal(SqlState.CANNOT_CONNECT_NOW, 'the proxy is shutting down')))
      return
    }
    this.handshake(socket).catch((err) => {
      const e = err instanceof PgError ? err : null
      if (e) {
        this.log.info({ code: e.code, err: e.message }, 'client refused')
        socket.end(errorResponse(e.severity === 'FATAL' ? e : PgError.fatal(e.code, e.message, e.options.hint)))
      } else socket.destroy()
    })
  }

  private async handshake(raw: net.Socket): Promise<void> {
    this.handshaking++
    try {
      if (this.sessions.size + this.handshaking > this.config.listen.max_client_connections)
        throw PgError.fatal(SqlState.TOO_MANY_CONNECTIONS, 'sorry, too many clients already', 'Raise listen.max_client_connections or use fewer connections.')
      const startup = await readStartup(raw, {
        tls: this.tlsContext,
        tlsRequired: this.config.tls?.required ?? false,
        maxMessageSize: this.config.listen.max_message_size,
        onCancel: (pid, secret) => this.cancelRequest(pid, secret),
      })
      if (!startup) return
      const { socket, reader, params } = startup
      socket.on('error', () => socket.destroy())
      const input = new HandshakeInput(socket, reader)
      try {
        const userName = params.get('user')
        if (!userName) throw PgError.fatal(SqlState.INVALID_AUTHORIZATION, 'no PostgreSQL user name specified in startup packet')
        const replication = params.get('replication')
        if (replication && !['false', 'off', 'no', '0'].includes(replication.toLowerCase()))
          throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, 'replication connections are not supported by pgshard', 'Connect to a Postgres server directly for replication.')
        const dbName = params.get('database') || userName
        const user = this.config.users.find((u) => u.name === userName) ?? (await this.lookUpUser(userName, dbName))
        const keys = await authenticateClient(userName, user, this.verifiers, (b) => socket.write(b), () => input.next(AUTH_TIMEOUT_MS))
        if (dbName === ADMIN_DATABASE) {
          if (!user?.admin) throw PgError.fatal(SqlState.INSUFFICIENT_PRIVILEGE, `user "${userName}" may not use the admin console`, 'Only users with admin: true may connect to the database "pgshard".')
          if (!this.adminConsole) throw PgError.fatal(SqlState.CANNOT_CONNECT_NOW, 'the admin console is not available')
          const key = this.newKey()
          socket.write(Buffer.concat([parameterStatus('server_version', ADMIN_SERVER_VERSION), parameterStatus('client_encoding', 'UTF8'), parameterStatus('server_encoding', 'UTF8'), parameterStatus('DateStyle', 'ISO, MDY'), parameterStatus('integer_datetimes', 'on'), parameterStatus('standard_conforming_strings', 'on'), backendKeyData(key.pid, key.secret), readyForQuery('I')]))
          input.detach()
          this.adminConsole({ socket, reader, user: user!, params })
          return
        }
        const database = this.config.databases.find((d) => d.name === dbName)
        if (!database) throw PgError.fatal(SqlState.INVALID_CATALOG_NAME, `database "${dbName}" does not exist`, `pgshard serves: ${this.config.databases.map((d) => d.name).join(', ')}`)
        const perUser = user!.max_client_connections
        if (perUser !== undefined && [...this.sessions].filter((s) => s.identity.user.name === userName).length >= perUser)
          throw PgError.fatal(SqlState.TOO_MANY_CONNECTIONS, `too many connections for user "${userName}"`, 'Raise users[].max_client_connections.')
        const identity = identityOf(this.config, user!, database, keys)
        const reported = await this.reportedParams(identity, params)
        const key = this.newKey()
        const out: Buffer[] = []
        for (const [k, v] of reported) out.push(parameterStatus(k, v))
        out.push(backendKeyData(key.pid, key.secret), readyForQuery('I'))
        socket.write(Buffer.concat(out))
        input.detach()
        const session = new Session(this.services, socket, reader, identity, params, key)
        this.sessions.add(session)
        this.byPid.set(key.pid, session)
        this.log.debug({ user: userName, database: dbName, pid: key.pid }, 'client connected')
      } catch (err) {
        input.detach()
        throw err
      }
    } finally {
      this.handshaking--
    }
  }

  /**
   * What the client is told at log-in: what a server reported for this (user, database), with the client's own
   * settings on top. The first client of a (user, database) makes one server log-in (which also proves the
   * database and role exist there); later ones need no server, so clients still log in while a primary is down.
   */
  private async reportedParams(identity: Identity, params: Map<string, string>): Promise<Map<string, string>> {
    const cacheKey = `${identity.user.name}\u0000${identity.serverDatabase}`
    let server = this.serverParams.get(cacheKey)
    if (!server) {
      const shard = this.routingDefaultShard()
      let placement: Placement
      try {
        placement = this.place(shard, 'primary', identity)
      } catch {
        placement = this.place(shard, 'replica', identity)
      }
      const conn = await placement.pool.acquire()
      server = new Map(conn.serverParams)
      placement.pool.release(conn)
      this.serverParams.set(cacheKey, server)
    }
    const out = new Map<string, string>()
    for (const k of REPORTED) {
      const v = server.get(k)
      if (v !== undefined) out.set(k, v)
    }
    for (const [k, v] of params) {
      const known = REPORTED.find((r) => r.toLowerCase() === k.toLowerCase())
      if (known) out.set(known, v)
    }
    out.set('session_authorization', identity.user.name)
    if (!out.has('application_name')) out.set('application_name', '')
    return out
  }

  /** A user not in the config, from auth_query (never for the admin console: its users are the config's). */
  private async lookUpUser(name: string, database: string): Promise<UserConfig | undefined> {
    if (!this.config.auth_query || database === ADMIN_DATABASE) return undefined
    return (await this.authQuery.lookup(name)) ?? undefined
  }

  /** The shard's primary, else a replica: either can answer for what every node of a shard holds alike. */
  private pickNode(shard: number): NodeState {
    try {
      return this.topology.pick(shard, 'primary')
    } catch {
      return this.topology.pick(shard, 'replica')
    }
  }

  /** The shard of unsharded tables and catalog queries. */
  routingDefaultShard(): number {
    const r = this.routing.route({ plan: null, literals: [], firstParam: 1 }, () => undefined, { inTransaction: false, txReadOnly: false })
    return r.kind === 'shard' ? r.shard : 0
  }

  private newKey(): { pid: number; secret: number } {
    for (;;) {
      const pid = randomInt(1, 2 ** 31 - 1)
      if (!this.byPid.has(pid)) return { pid, secret: randomInt(-(2 ** 31), 2 ** 31 - 1) }
    }
  }

  private cancelRequest(pid: number, secret: Buffer): void {
    const s = this.byPid.get(pid)
    if (!s || secret.length !== 4 || secret.readInt32BE(0) !== s.key.secret) return
    s.cancelRunning()
  }

  /**
   * Sends a CancelRequest for the backend of `conn`. The server closes the request's socket once it has signalled
   * the backend; until then the pool does not lend the connection to anyone else.
   */
  private cancelOnServer(nodeName: string, conn: ServerConnection): void {
    const node = this.topology.node(nodeName)
    if (!node) return
    conn.cancelSent()
    const sock = net.connect({ host: node.host, port: node.port }, () => sock.end(serialize.cancel(conn.pid, conn.secret)))
    sock.once('close', () => conn.cancelDone())
    sock.on('error', () => sock.destroy())
    sock.setTimeout(CANCEL_TIMEOUT_MS, () => sock.destroy())
  }

  /** null when the proxy can serve clients, else why not (for /readyz). */
  notReadyReason(): string | null {
    if (!this.accepting) return 'shutting down'
    const down = this.topology.shards.filter((s, i) => !this.topology.primaryOf(i)?.up).map((s) => s.name)
    return down.length ? `no primary up for shard ${down.join(', ')}` : null
  }

  private forget(s: Session): void {
    this.notifications.unlisten(s, null)
    this.sessions.delete(s)
    this.byPid.delete(s.key.pid)
    this.onSessionEnd?.(s)
  }

  /**
   * Stops accepting clients at once; every client is ended (57P01) at its next transaction boundary, so that
   * transactions in flight finish and none starts; clients still inside a transaction at the timeout are ended
   * then. Resolves when no client is left.
   */
  async shutdown(timeoutMs: number): Promise<{ atBoundary: number; forced: number }> {
    this.accepting = false
    this.server.close()
    this.authQuery.close()
    this.notifications.close()
    const clients = this.sessions.size
    for (const s of this.sessions) s.drain()
    const deadline = Date.now() + timeoutMs
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const forced = this.sessions.size
    if (forced > 0) this.log.warn({ clients: forced }, 'shutdown timeout: ending clients still inside a transaction')
    for (const s of [...this.sessions]) s.fatal(PgError.fatal(SqlState.ADMIN_SHUTDOWN, 'terminating connection due to administrator command'))
    return { atBoundary: clients - forced, forced }
  }

  /**
   * Holds every client at its next transaction boundary, before it routes anything, and waits until nothing
   * runs on a server (transactions in flight end, statements past the gate finish), or with `nodeName` only
   * until nothing runs there. Resolves with how many server connections (and clients not yet settled) are
   * still busy after `timeoutMs` (0: quiet). releaseClients() lets them go on.
   */
  async holdClients(timeoutMs: number, nodeName?: string): Promise<number> {
    this.gate.close()
    const deadline = Date.now() + timeoutMs
    const busy = () => {
      let n = 0
      for (const e of this.pools.all()) if (nodeName === undefined || e.node.name === nodeName) n += e.pool.counts.active
      if (nodeName === undefined) for (const s of this.sessions) if (!s.quiet) n++
      return n
    }
    while (busy() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, HOLD_POLL_MS))
    return busy()
  }

  releaseClients(): void {
    this.gate.open()
  }

  /** Loads the certificate and key of a new config (a reload); an unreadable file leaves TLS as it was. */
  reloadTls(config: Config): void {
    this.tlsContext = loadTls(config)
  }
}

function credentials(identity: Identity): PoolCredentials {
  return {
    user: identity.user.name,
    password: identity.user.server_password ?? identity.user.password,
    scram: identity.scram,
    database: identity.serverDatabase,
  }
}

function identityOf(config: Config, user: UserConfig, database: DatabaseConfig, keys: ScramKeys | null): Identity {
  return {
    user,
    database,
    mode: user.pool_mode ?? database.pool_mode ?? config.pool.mode,
    readYourWrites: user.read_your_writes ?? config.routing.read_your_writes,
    serverDatabase: database.server_database ?? database.name,
    scram: (user.server_password ?? user.password) === undefined ? (keys ?? undefined) : undefined,
  }
}

function loadTls(config: Config): tls.SecureContext | null {
  if (!config.tls) return null
  return tls.createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) })
}
