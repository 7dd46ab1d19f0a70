import type { Config, DatabaseConfig, UserConfig } from '../config/ConfigSchema.js'
import type { DataPathMetrics } from '../metrics/DataPathMetrics.js'
import type { NodeState } from '../health/NodeState.js'
import type { PickOptions } from '../health/Topology.js'
import type { Logger } from '../log/Logger.js'
import type { ScramKeys } from '../protocol/ScramPassThrough.js'
import type { Pool } from '../pool/Pool.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import type { MergeTypes } from '../router/merge/EnumTypes.js'
import type { BoundParam, Role, Route, RoutingContext } from '../router/Route.js'
import type { StatementPlan } from '../router/StatementPlan.js'
import type { NotificationHub } from './NotificationHub.js'
import type { RoutingGate } from './RoutingGate.js'
import type { SequenceKeys } from './SequenceKeys.js'
import type { StatementNames } from './StatementNames.js'

/** A statement as the router sees it: its plan (null when the parser rejected it) and normalizer values. */
export interface Analyzed {
  plan: StatementPlan | null
  literals: string[]
  /** The literals as written, to put back into texts derived from the plan (restoreLiterals). */
  sources?: string[]
  firstParam: number
  /** The text the plan's byte ranges point into (for splitting a multi-row INSERT). */
  text?: string
  /** The plan came from the cache. */
  hit?: boolean
}

export interface Identity {
  user: UserConfig
  database: DatabaseConfig
  mode: 'session' | 'transaction'
  /** Reads after this client's writes go only to replicas that replayed them. */
  readYourWrites: boolean
  /** The database name on the servers. */
  serverDatabase: string
  /** For a user without a password for the servers: the keys of its SCRAM log-in, to log in there the same way. */
  scram?: ScramKeys
}

/** A node chosen for a statement, with the pool for this client's (user, database) there. */
export interface Placement {
  shard: number
  shardName: string
  role: Role
  nodeName: string
  node: NodeState
  pool: Pool
  /** The database the pool's connections are in on that node. */
  serverDatabase: string
}

/** What a session needs from the rest of the proxy. Kept small so the session can be read on its own. */
export interface SessionServices {
  config(): Config
  readonly statementNames: StatementNames
  /** Spare keys drawn from sequences for INSERTs that leave their key out. */
  readonly sequenceKeys: SequenceKeys
  readonly metrics: DataPathMetrics
  analyze(sql: string): Analyzed
  route(analyzed: Analyzed, param: (n: number) => BoundParam | undefined, ctx: RoutingContext): Route
  /** The shard of unsharded tables, where sequences are drawn from. */
  defaultShard(): number
  /** The statement may write or lock rows, or call a volatile function that may (nextval …). */
  mayWrite(plan: StatementPlan): boolean
  /** Enum labels from the shards' catalogs, for merges. */
  readonly mergeTypes: MergeTypes
  /** The search_path the client's server sessions start with (ALTER ROLE/DATABASE, the servers' configuration). */
  defaultSearchPath(identity: Identity): readonly string[]
  /** Chooses a node of the shard for the role, or throws a PgError (no healthy node, shard fenced …). */
  place(shard: number, role: Role, identity: Identity, options?: PickOptions): Placement
  /** Sends a CancelRequest to the server holding this backend. */
  cancel(nodeName: string, conn: ServerConnection): void
  /** Evidence for the health checker: a server connection failed on the data path. */
  serverFailed(nodeName: string, err: Error): void
  onSessionEnd(session: object): void
  /** Every open server connection of every pool (for what concerns a statement wherever it is prepared). */
  serverConnections(): Iterable<ServerConnection>
  /** LISTEN without a server connection of the client's own (transaction pooling). */
  readonly notifications: NotificationHub
  /** Closed while RESHARD moves rows or a switchover changes a primary: a client between transactions waits there before routing. */
  readonly gate: RoutingGate
  /** A catalog read for a statement refused for want of a table made moments ago: true once it ran (route again). */
  catalogAfterDdl(): Promise<boolean>
  /** For what a session does that operators must hear of (a cross-shard commit left unfinished). */
  readonly log: Logger
}
