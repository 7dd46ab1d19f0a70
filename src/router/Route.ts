import type { CopyShape, DetachedSubquery, InsertRows, ScatterPlan, StatementPlan, ValueRef } from './StatementPlan.js'

export type Role = 'primary' | 'replica'

/** A value bound to a $n parameter, as it arrived (Bind) or as the normalizer extracted it (text). */
export interface BoundParam {
  value: Buffer | string | null
  /** 0 text, 1 binary. */
  format: number
  /** Type OID from Parse (0 = unspecified). */
  typeOid: number
}

/** What a client refused because its session is pinned (transaction pooling, `reason`) can do about it. */
export function pinnedSessionHint(reason: string): string {
  const end = reason.includes('WITH HOLD') ? 'close its WITH HOLD cursors' : reason.includes('advisory') ? 'release its advisory locks with pg_advisory_unlock_all()' : 'run DISCARD ALL'
  return `A pinned session runs on its one server connection: ${end} to use every shard again (DISCARD ALL ends every pin: cursors, advisory locks, temporary tables, LISTEN), or connect again.`
}

/** The statement that started a transaction, as a refusal names it (an ORM's catalog read is often the one). */
export function startedByNote(sql: string | null | undefined): string {
  const text = sql?.replace(/\s+/g, ' ').trim()
  if (!text) return ''
  return ` (${text.length > 80 ? `${text.slice(0, 77)}…` : text})`
}

/** Session-level routing state the Router reads (SET pgshard.*, the pinned transaction shard). */
export interface RoutingContext {
  /** SET pgshard.shard / pgshard.key / pgshard.role, session or LOCAL, already merged. */
  shardHint?: string
  keyHint?: string
  roleHint?: Role
  /** Shard the open transaction (or the pinned session) is pinned to, if any. */
  txShard?: number
  /**
   * Shard a statement of the open read-write transaction that may write went to. Without two-phase commit the
   * transaction may read other shards but write only this one.
   */
  txWriter?: number
  /** What pins the session to its server connection in transaction pooling (a WITH HOLD cursor …), if anything. */
  pinnedBy?: string
  /** The statement that started the open transaction on its shard (named when a later one is refused). */
  txStartedBy?: string
  /** Inside an explicit transaction (BEGIN seen). */
  inTransaction: boolean
  /** The explicit transaction is READ ONLY. */
  txReadOnly: boolean
  /** The transaction is the one pgshard opened for the statements of one query, run one by one. */
  ofOneQuery?: boolean
  /** The transaction is SERIALIZABLE (its BEGIN or the session's default said so): a hot standby cannot run it. */
  serializable?: boolean
  /** The session's search_path, to resolve unqualified table names (default ['public']). */
  searchPath?: string[]
  /** An UPDATE/DELETE whose key is not pinned, after its `locate` route: the shards that hold its rows. */
  located?: number[]
}

/** Where the keys of a `keys` route come from. */
export type KeySource = { sequence: string; shard: number } | 'uuid'

/** Where one statement goes. Plain data: deciding where is kept apart from moving bytes. */
export type Route =
  /**
   * One shard. role 'replica' means a replica may serve it (the pool falls back to the primary). `catalog`: it
   * reads only system catalogs, which every shard has. `write`: inside a read-write transaction, it may write.
   */
  | { kind: 'shard'; shard: number; role: Role; reason: string; catalog?: true; write?: true }
  /** Every shard: a read merged by `scatter`, or a write/DDL sent to all (all or nothing). */
  | { kind: 'scatter'; plan: ScatterPlan; role: Role; reason: string }
  /**
   * The same statement on several shards (`shards`, else every one), all or nothing; the client gets one
   * shard's answer (`first`: DDL, a reference table, identical everywhere) or the rows and counts of all (`sum`).
   */
  | { kind: 'broadcast'; role: Role; tag: 'first' | 'sum'; shards?: number[]; reason: string; warnings?: string[]; explain?: true }
  /**
   * A multi-row INSERT split into one statement per shard; `sql` is the full text for that shard. `rowShards`
   * is the shard of each VALUES row in the client's order, which its RETURNING rows keep.
   */
  | { kind: 'split'; parts: { shard: number; sql: string; rows: number }[]; rowShards: number[]; reason: string }
  /**
   * An INSERT … VALUES that leaves out the key (or gives DEFAULT) of a table whose keys pgshard makes: a key per
   * row (`from`: nextval of a sequence on a shard's primary, or a random UUID), and the INSERT routed with them
   * written in (`insert`'s rows; `shardOf` takes a key's text and is bound to the shard map of this decision).
   * `oneShard`: all keys of one shard, `shard` when given (a transaction that cannot leave its shard, a pinned
   * session). `keyIndex`: the key's column, whose DEFAULT in each row the keys replace, or null when the column
   * list leaves it out. `places`: the values are the sharding key, which places the rows; false for another
   * column pgshard draws (sharding.made_columns), named by `key` too.
   */
  | { kind: 'keys'; key: string; keyIndex: number | null; from: KeySource; insert: InsertRows; shard?: number; oneShard: boolean; places: boolean; shardOf: (key: string) => number; reason: string }
  /**
   * COPY FROM STDIN into a sharded table: each row goes to the shard that owns its `key` column's value
   * (`keyShard`, bound to the shard map this decision was made with, so a reload mid-COPY moves no row).
   * `made`: the column list leaves out a column pgshard makes, the key (`places`: its values place the rows)
   * or a column it draws (sharding.made_columns); each row gets a value, from `from`. `source`: the rows come
   * from this `COPY (query) TO STDOUT` rather than from the client (an INSERT … SELECT).
   */
  | { kind: 'copy_split'; copy: CopyShape; key: string; keyShard: KeyShard; made?: { column: string; from: KeySource; places: boolean }; source?: string; reason: string }
  /**
   * An UPDATE or DELETE of one sharded table whose WHERE does not pin the key: the shards that hold its rows are
   * found first (`probe`, its plan's `locate` query, on every shard), then it is routed to them
   * (RoutingContext.located).
   */
  | { kind: 'locate'; probe: string; reason: string }
  /**
   * A statement with self-contained subqueries over sharded tables whose rows are not all on its shard: each of
   * `subqueries` is read first, on its own (routed as a statement of its own), its answer written into the
   * statement as constants between `parts` (DetachedSubqueries.parts, less the subqueries that stay), and the
   * statement so written is routed again. `refused`: why the statement as written cannot run (for the error when
   * an answer is too large to write in).
   */
  | { kind: 'evaluate'; parts: string[]; subqueries: DetachedSubquery[]; reason: string; refused?: string }
  /** COPY … TO STDOUT of a table or a filtering query on every shard: the client gets all their rows. */
  | { kind: 'copy_out'; role: Role; reason: string }
  /**
   * Refused: the client gets this SQLSTATE and message. `catalog`: for want of what the shards' catalogs say of a
   * table made moments ago (Refusal.catalog).
   */
  | { kind: 'error'; code: string; message: string; hint?: string; catalog?: true }

export interface RoutedStatement {
  plan: StatementPlan
  route: Route
}

/** The shard of a key value: text (format 0) or the binary form of the column's type `typeOid` (format 1; 0: unknown). */
export type KeyShard = (value: string | Buffer, format: 0 | 1, typeOid: number) => number

/** A sequence name given as a constant or a text parameter; null for a binary one (an oid pgshard cannot name) or NULL. */
export function sequenceText(arg: ValueRef, param: (n: number) => BoundParam | undefined): string | null {
  const bound = 'param' in arg ? param(arg.param) : 'literal' in arg ? { value: arg.literal, format: 0 } : undefined
  return bound === undefined || bound.format !== 0 || bound.value === null ? null : bound.value.toString()
}
