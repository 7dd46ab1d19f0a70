import { z } from 'zod'

// One definition gives the TypeScript types, the validation and the published JSON Schema
// (config/pgshard.schema.json). Every field carries a description: docs are checked against it.

const DURATION = /^(\d+)(ms|s|m|h)$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** A duration: an integer of milliseconds, or a string such as "500ms", "30s", "5m", "1h". */
export const duration = (description: string) =>
  z
    .union([
      z.number().int().nonnegative(),
      z.string().regex(DURATION, { message: 'expected a duration such as 500ms, 30s, 5m or an integer of milliseconds' }),
    ])
    .transform((v) => {
      if (typeof v === 'number') return v
      const m = DURATION.exec(v)!
      return Number(m[1]) * UNIT_MS[m[2]]
    })
    .describe(description)

/** The time between two rounds of something periodic: 0 would run it without pause. */
const period = (description: string) => duration(description).refine((ms) => ms > 0, { message: 'must be more than 0: it is the time between two rounds' })

const port = z.number().int().min(1).max(65535)
/** A port to listen on; 0 picks a free one (tests). */
const listenPort = z.number().int().min(0).max(65535)
const identifier = z.string().min(1).max(63)

export const NodeSchema = z
  .object({
    host: z.string().min(1).describe('Host name or IP address of the Postgres server'),
    port: port.default(5432).describe('TCP port of the Postgres server'),
    database: z
      .string()
      .min(1)
      .optional()
      .describe('Database name on this server, when it differs from the logical database name'),
    weight: z.number().int().min(0).max(1000).default(1).describe('Relative share of reads this node gets (replicas)'),
    name: identifier.optional().describe('Node name used in metrics, logs and the admin console (default shard/role/index)'),
  })
  .strict()

export const ShardSchema = z
  .object({
    name: identifier.describe('Shard name: a stable identifier, part of the ring (renaming a shard moves keys)'),
    primary: NodeSchema.describe('The shard primary: every write goes here'),
    replicas: z.array(NodeSchema).default([]).describe('Streaming replicas of the primary: reads go here'),
    failover: z
      .enum(['auto', 'manual'])
      .default('manual')
      .describe('auto: promote the best replica when the primary is down; manual: writes fail until a DBA acts'),
  })
  .strict()

export const UserSchema = z
  .object({
    name: identifier.describe('User name clients log in with; also the role used on the Postgres servers'),
    password: z
      .string()
      .min(1)
      .optional()
      .describe('Password (use ${ENV_VAR}); checks clients and logs in to the servers'),
    scram_verifier: z
      .string()
      .regex(/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/, {
        message: 'expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> as in pg_authid',
      })
      .optional()
      .describe('SCRAM-SHA-256 verifier from pg_authid.rolpassword, to check clients without storing the password'),
    server_password: z
      .string()
      .min(1)
      .optional()
      .describe('Password for logging in to the Postgres servers, when it differs from password'),
    auth: z
      .enum(['scram-sha-256', 'md5', 'trust'])
      .default('scram-sha-256')
      .describe('How clients must authenticate as this user'),
    pool_mode: z
      .enum(['transaction', 'session'])
      .optional()
      .describe('Pool mode for this user, overriding pool.mode'),
    max_client_connections: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Maximum simultaneous client connections of this user'),
    admin: z.boolean().default(false).describe('May use the admin console (database "pgshard")'),
    read_your_writes: z
      .boolean()
      .optional()
      .describe('Override routing.read_your_writes for this user'),
  })
  .strict()

export const MadeColumnSchema = z
  .object({
    table: z.string().min(1).describe('A table of sharding.tables or sharding.reference_tables, optionally schema-qualified'),
    column: z.string().min(1).describe('The column; not a sharded table\'s key (key_sequence and key_uuid make that)'),
    sequence: z.string().min(1).optional().describe('Sequence (optionally schema-qualified) on the default shard that gives the values'),
    uuid: z.boolean().default(false).describe('pgshard makes a random UUID (version 4) for each row instead'),
  })
  .strict()
  .refine((c) => (c.sequence !== undefined) !== c.uuid, {
    message: 'give either a sequence or uuid: true (where the column\'s values come from)',
  })

/** A foreign key along which a sharded table's rows are placed with their parents' (co-located joins). */
export const ParentSchema = z
  .object({
    column: z.string().min(1).describe('The column of this table that references the parent row'),
    table: z.string().min(1).describe('The parent: a sharded table, optionally schema-qualified, with a key of the same type family'),
    references: z.string().min(1).describe('The parent\'s column it references (usually its id)'),
  })
  .strict()

export const TableSchema = z
  .object({
    name: z.string().min(1).describe('Table name, optionally schema-qualified (schema.table)'),
    key: z.string().min(1).describe('Sharding key column'),
    type: z.enum(['bigint', 'integer', 'text', 'uuid']).describe('Type of the sharding key column'),
    broadcast_writes: z
      .boolean()
      .default(false)
      .describe('Allow UPDATE/DELETE without a pinned key: sent to every shard'),
    key_sequence: z
      .string()
      .min(1)
      .optional()
      .describe('Sequence (optionally schema-qualified) that gives the key to an INSERT that leaves it out: nextval on the default shard\'s primary; integer and bigint keys only'),
    key_uuid: z
      .boolean()
      .default(false)
      .describe('pgshard makes a random UUID (version 4) for each row of an INSERT that leaves the key out; uuid keys only'),
    parents: z
      .array(ParentSchema)
      .default([])
      .describe('Foreign keys whose rows are on the same shard: each row of this table is where the parent row it references is (your application gives it the parent\'s key), so joins and tied subqueries on the foreign key run on each shard'),
  })
  .strict()
  .refine((t) => t.key_sequence === undefined || t.type === 'integer' || t.type === 'bigint', {
    message: 'only an integer or bigint key can come from a sequence: remove key_sequence, or give the key in every INSERT',
    path: ['key_sequence'],
  })
  .refine((t) => !t.key_uuid || t.type === 'uuid', {
    message: 'only a uuid key can be a random UUID: remove key_uuid, or use key_sequence for an integer key',
    path: ['key_uuid'],
  })

export const ConfigSchema = z
  .object({
    version: z.literal(1).default(1).describe('Format version of this file'),
    map_version: z
      .union([z.string().min(1), z.number().int()])
      .default('1')
      .transform(String)
      .describe('Version label of the shard map, shown in metrics (pgshard_config_info) and the console'),
    listen: z
      .object({
        host: z.string().default('127.0.0.1').describe('Address the proxy listens on'),
        port: listenPort.default(6432).describe('Port the proxy listens on (0: any free port)'),
        max_client_connections: z
          .number()
          .int()
          .min(1)
          .default(10000)
          .describe('Maximum simultaneous client connections (all users)'),
        max_message_size: z
          .number()
          .int()
          .min(1024)
          .default(64 * 1024 * 1024)
          .describe('Largest client message accepted, in bytes; larger ones get 08P01 and a disconnect'),
      })
      .strict()
      .prefault({})
      .describe('Where clients connect'),
    tls: z
      .object({
        cert: z.string().min(1).describe('Path of the PEM certificate (chain)'),
        key: z.string().min(1).describe('Path of the PEM private key'),
        required: z.boolean().default(false).describe('Refuse clients that do not use TLS'),
      })
      .strict()
      .optional()
      .describe('TLS for client connections; without it SSLRequest is answered N'),
    server_tls: z
      .enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full'])
      .default('disable')
      .describe('TLS towards the Postgres servers, for client traffic and the proxy\u2019s control connections alike (as libpq\u2019s sslmode)'),
    server_tls_ca: z
      .string()
      .min(1)
      .optional()
      .describe('PEM file of the CAs that sign the servers\u2019 certificates, for verify-ca and verify-full (default: Node\u2019s bundled CAs)'),
    admin: z
      .object({
        host: z.string().default('127.0.0.1').describe('Address of the metrics and health HTTP endpoint'),
        metrics_port: listenPort.optional().describe('Port of /metrics, /healthz and /readyz (off when absent; 0: any free port)'),
      })
      .strict()
      .prefault({})
      .describe('Operator endpoints; the console itself is the database "pgshard" on the proxy port'),
    control: z
      .object({
        user: identifier.default('postgres').describe('Role used for health checks, catalog reads and promotion'),
        password: z.string().min(1).optional().describe('Its password (use ${ENV_VAR})'),
        database: z.string().min(1).default('postgres').describe('Database the control connections use'),
      })
      .strict()
      .prefault({})
      .describe('The proxy\u2019s own connections to the servers'),
    users: z.array(UserSchema).min(1).describe('Users that may connect'),
    auth_query: z
      .object({
        query: z
          .string()
          .min(1)
          .refine((q) => /\$1(?!\d)/.test(q), { message: 'must name the user as $1 (it is passed as the only parameter)' })
          .default('SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1 AND rolcanlogin AND (rolvaliduntil IS NULL OR rolvaliduntil > now())')
          .describe('Returns the SCRAM verifier of the user named by $1 (no row: no such user); run by the control role'),
        database: z.string().min(1).default('postgres').describe('Database the query runs in'),
        cache_ttl: duration('How long an answer (a verifier, or no such user) is kept').default(60_000),
      })
      .strict()
      .optional()
      .describe('Users not listed in users: their SCRAM verifier is read from the servers, and pgshard logs in to the servers with the client\u2019s own keys (pass-through)'),
    databases: z
      .array(
        z
          .object({
            name: identifier.describe('Database name clients connect to'),
            server_database: z
              .string()
              .min(1)
              .optional()
              .describe('Database name on the servers (default: name)'),
            pool_mode: z.enum(['transaction', 'session']).optional().describe('Pool mode for this database'),
          })
          .strict(),
      )
      .min(1)
      .describe('Logical databases; every shard holds each of them'),
    shards: z.array(ShardSchema).min(1).describe('The shards, in ring order'),
    pool: z
      .object({
        mode: z.enum(['transaction', 'session']).default('transaction').describe('Default pool mode'),
        size: z.number().int().min(1).default(20).describe('Server connections per (node, user, database)'),
        cross_shard_reserve: z
          .number()
          .int()
          .min(0)
          .default(2)
          .describe('Server connections per pool beyond size, only for a transaction or statement that already holds a connection of another shard (or a session-pooling client, which keeps its own)'),
        min_idle: z.number().int().min(0).default(0).describe('Idle server connections kept open per pool'),
        max_queue: z.number().int().min(0).default(10000).describe('Clients that may wait for a server connection per pool'),
        checkout_timeout: duration('How long a client waits for a server connection before 53300').default(5000),
        connect_timeout: duration('Timeout for opening and logging in a server connection').default(5000),
        idle_timeout: duration('Close server connections idle this long (0: never)').default(600_000),
        max_lifetime: duration('Close server connections older than this when released (0: never)').default(3_600_000),
        idle_in_transaction_timeout: duration('Disconnect a client idle inside a transaction this long (0: never)').default(0),
        query_timeout: duration('Cancel a query that runs longer than this; the client gets 57014 (0: never)').default(0),
        prepared_statements_cache: z
          .number()
          .int()
          .min(1)
          .default(500)
          .describe('Prepared statements kept per server connection (LRU) in transaction mode'),
      })
      .strict()
      .prefault({})
      .describe('Server connection pools'),
    sharding: z
      .object({
        ring: z
          .object({
            version: z.literal(1).default(1).describe('Ring algorithm version: changing it moves keys'),
            points_per_shard: z.number().int().min(16).max(4096).default(1024).describe('Points per shard on the ring'),
            seed: z.string().default('pgshard').describe('Seed of the point positions: changing it moves keys'),
          })
          .strict()
          .prefault({})
          .describe('How keys are placed; an on-disk contract'),
        default_shard: identifier.optional().describe('Shard holding unsharded tables (default: the first shard)'),
        tables: z.array(TableSchema).default([]).describe('Sharded tables'),
        reference_tables: z
          .array(z.string().min(1))
          .default([])
          .describe('Tables with the same rows on every shard'),
        made_columns: z
          .array(MadeColumnSchema)
          .default([])
          .describe('Columns of sharded and reference tables whose values pgshard makes when an INSERT leaves them out (or gives DEFAULT): drawn from one sequence on the default shard\'s primary, or random UUIDs; serial ids unique across shards, and a reference row\'s equal on every shard'),
        allow_key_movement: z
          .boolean()
          .default(false)
          .describe('Accept a reload that moves keys between shards (you move the rows)'),
        cross_shard_transactions: z
          .enum(['reject', 'two_phase'])
          .default('reject')
          .describe('A read-write transaction that writes a second shard: refused (0A000; it may read any shard, unless SERIALIZABLE), or it writes several and commits with two-phase commit (servers need max_prepared_transactions > 0)'),
        deadlock_check_interval: period('How often transactions across shards that wait on each other (which no server sees) are looked for; one of them then gets 40P01').default(1000),
      })
      .strict()
      .prefault({})
      .describe('The shard map'),
    routing: z
      .object({
        read_from: z
          .enum(['replica', 'primary'])
          .default('replica')
          .describe('Where read-only statements go'),
        replica_selection: z
          .enum(['round_robin', 'least_outstanding', 'random'])
          .default('round_robin')
          .describe('How a replica is chosen for a read'),
        primary_reads: z.boolean().default(false).describe('The primary also serves reads'),
        read_your_writes: z
          .boolean()
          .default(false)
          .describe('After a client commits a write, its reads go only to replicas that replayed it'),
        volatile_functions: z
          .array(z.string().min(1))
          .default([])
          .describe('Functions to treat as writes (in addition to the catalog)'),
        stable_functions: z
          .array(z.string().min(1))
          .default([])
          .describe('Functions to treat as read-only (overriding the catalog)'),
      })
      .strict()
      .prefault({})
      .describe('Read/write split'),
    health: z
      .object({
        interval: period('Time between checks of a node').default(1000),
        timeout: duration('Time a check may take before it counts as a failure').default(1000),
        failures: z.number().int().min(1).default(3).describe('Consecutive failures that mark a node down'),
        successes: z.number().int().min(1).default(2).describe('Consecutive successes that bring a node back'),
        max_lag_bytes: z.number().int().min(0).optional().describe('Replicas further behind get no reads'),
        max_lag: duration('Replicas whose replay delay exceeds this get no reads').optional(),
        resolve_prepared_interval: period('Time between looks for two-phase transactions left prepared (finished as the transaction decided on its first shard)').default(10_000),
        synchronous_policy: z
          .enum(['durability', 'availability'])
          .default('durability')
          .describe('After promotion: keep requiring a synchronous standby, or accept commits without one'),
      })
      .strict()
      .prefault({})
      .describe('Health checks and failover'),
    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Log level'),
        log_parameters: z.boolean().default(false).describe('Include query parameters in debug logs'),
      })
      .strict()
      .prefault({})
      .describe('Structured JSON logs on stdout'),
    shutdown_timeout: duration('On SIGTERM, how long in-flight transactions may run before connections are closed').default(30_000),
  })
  .strict()

export type Config = z.output<typeof ConfigSchema>
export type ConfigInput = z.input<typeof ConfigSchema>
export type NodeConfig = z.output<typeof NodeSchema>
export type ShardConfig = z.output<typeof ShardSchema>
export type UserConfig = z.output<typeof UserSchema>
export type TableConfig = z.output<typeof TableSchema>
export type DatabaseConfig = Config['databases'][number]
