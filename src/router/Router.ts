// Turns a StatementPlan, the bound values and the session's routing state into a Route: one shard and a
// role, every shard (scatter read or broadcast write), one INSERT per shard, or a clear refusal. Never a
// guess: what cannot be routed correctly is refused with SQLSTATE 0A000 and a message naming the reason.
//
// Choices made here (the contract with applications, DESIGN.md "Routing rules"):
// - Hints: the statement's comment hints win over SET pgshard.*; within each, shard= wins over key=.
//   shard=NAME names a shard (or, when no shard has that name, a 0-based index). key=VALUE is encoded with
//   the key type of the sharded tables the statement names when they agree, else guessed (ShardMap).
//   A hint never overrides what the statement itself pins: a key owned by another shard is refused, and a
//   write to a reference table (which must change on every shard) cannot be restricted to one shard.
// - Key pins: each occurrence of a sharded table is pinned by the analyzer's pins on its key column (several
//   pins on one occurrence intersect: they are ANDed). When a table occurs more than once (self-join), a pin
//   counts only for the occurrence with the same schema, name and alias; an occurrence without its own pin is
//   unpinned (the safe side).
//   A NULL compared in WHERE matches no row, so it pins nothing; a NULL key in INSERT VALUES is refused
//   (23502). Key conditions that match no row at all (k = NULL, k = 1 AND k = 2) go to one shard.
//   `k = ANY(array)` pins the shards of the array's elements (text or binary, a parameter or a literal); an
//   array that cannot be read pins nothing.
// - Reference tables only: reads go to the transaction's shard, else the default shard (deterministic;
//   replicas spread the load); writes go to every shard and may use only reference tables.
// - DDL naming a sharded or reference table goes to every shard, DDL naming only other tables to the default
//   shard, DDL naming no table (schema, function, type, extension, role) to every shard, since sharded
//   tables may depend on it everywhere.
// - UPDATE/DELETE on tables whose broadcast_writes is set go to every shard when they touch several
//   (pinned to several or unpinned) and read no other sharded or unsharded table.
// - A multi-shard route (scatter, broadcast, split) inside a transaction is refused: cross-shard
//   transactions are not supported.
// - A scattered read may join sharded tables only on their sharding keys (same key type: each shard's join is
//   then complete), and reference tables, as long as every result row holds a sharded row (a reference table
//   on the preserved side of an outer join would be answered by every shard). Its subqueries may read only
//   reference tables, and it may call no aggregate the merger does not know (the catalog names them).
// - Assigning a sharding key (UPDATE SET k = …, ON CONFLICT DO UPDATE, MERGE) is refused unless the new value
//   is owned by the shard the statement runs on: a row cannot move between shards.
// - Role: 'replica' when the statement writes nothing, calls only read-only functions (FunctionVolatility),
//   runs outside a transaction or in a READ ONLY one, and routing.read_from is 'replica'. A role hint
//   'primary' forces the primary; 'replica' allows a replica despite unknown functions or read_from, but
//   never for a write or inside a read-write transaction.
import { arrayElements } from './ArrayValue.js'
import { FunctionVolatility } from './FunctionVolatility.js'
import { buildInsertText, leavesOut } from './InsertRowsAnalyzer.js'
import { canonicalKey, KeyEncodingError, type KeyType } from './KeyEncoding.js'
import { pinnedSessionHint, sequenceText, startedByNote, type BoundParam, type KeySource, type Role, type Route, type RoutingContext } from './Route.js'
import { TableColumns } from './TableColumns.js'
import { FEATURE_NOT_SUPPORTED, inSubqueryReadFirst, Refusal, tableLabel } from './Refusal.js'
import { ScatterSourcesCheck } from './ScatterSourcesCheck.js'
import { keyFamily, namesTable, type DrawnColumn, type GeneratedKey, type ShardedTable, type ShardMap } from './ShardMap.js'
import type { ColumnPin, CopyShape, DerivedSources, DetachedSubquery, InsertRows, InsertSelect, ScatterPlan, ScatterSources, StatementPlan, TableRef, ValueRef } from './StatementPlan.js'

export interface RouterOptions {
  /** routing.read_from: 'primary' keeps reads on the primary unless a role hint asks for a replica. */
  readFrom?: 'replica' | 'primary'
  /** sharding.cross_shard_transactions: 'two_phase' lets a read-write transaction go on to other shards. */
  crossShardTransactions?: 'reject' | 'two_phase'
  /** The tables' columns from the catalogs: without them, a GROUP BY name that is also an alias is refused. */
  columns?: TableColumns
}

const UNDEFINED_OBJECT = '42704'
const PROTOCOL_VIOLATION = '08P01'
const INT64_MAX = 2n ** 63n - 1n


interface ShardedUse {
  ref: TableRef
  table: ShardedTable
}

/** The statement's tables, sorted by where their rows live. */
interface Placement {
  sharded: ShardedUse[]
  reference: string[]
  unsharded: string[]
  /** In DDL: views over sharded tables, which exist on every shard. */
  views: string[]
  writtenSharded: Set<ShardedTable>
  writtenReference: string[]
}

/** Shards an occurrence's rows may be on: specific ones (maybe none), or every shard. */
type ShardSet = Set<number> | 'all'

const WRITE_KINDS = new Set<StatementPlan['kind']>(['insert', 'update', 'delete', 'merge', 'copy_from'])

/**
 * Volatile functions that write nothing and take no transaction id, so that calling them does not make a shard
 * the one a read-write transaction writes (set_config(…, true) starts the transactions of row-level security).
 * Not nextval: it takes a transaction id when it logs the sequence, which COMMIT would find as a second write.
 */
const WRITE_NO_ROWS = new Set(['set_config', 'random', 'setseed', 'clock_timestamp', 'timeofday', 'pg_sleep', 'gen_random_uuid', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared'])

export class Router {
  private readonly readFrom: 'replica' | 'primary'
  private readonly twoPhase: boolean
  private readonly scatterCheck: ScatterSourcesCheck
  private readonly columns: TableColumns

  constructor(
    readonly map: ShardMap,
    readonly volatility: FunctionVolatility = new FunctionVolatility(),
    options: RouterOptions = {},
  ) {
    this.readFrom = options.readFrom ?? 'replica'
    this.twoPhase = options.crossShardTransactions === 'two_phase'
    this.columns = options.columns ?? new TableColumns()
    this.scatterCheck = new ScatterSourcesCheck(map, volatility, this.columns)
  }

  /**
   * Where `plan` goes, given its bound values (`param(n)` for $n) and the session's state. Never throws for
   * bad input: refusals are error Routes.
   */
  route(plan: StatementPlan, param: (n: number) => BoundParam | undefined, ctx: RoutingContext): Route {
    try {
      const route = this.decide(plan, param, ctx)
      this.checkAssignments(plan, route, param, ctx.searchPath ?? ['public'])
      return this.inTransaction(plan, route, ctx)
    } catch (err) {
      if (err instanceof Refusal) {
        return { kind: 'error', code: err.code, message: err.message, ...(err.hint === undefined ? {} : { hint: err.hint }), ...(err.catalog ? { catalog: true } : {}) }
      }
      if (err instanceof KeyEncodingError) return { kind: 'error', code: err.code, message: err.message }
      throw err
    }
  }

  private decide(plan: StatementPlan, param: (n: number) => BoundParam | undefined, ctx: RoutingContext): Route {
    const searchPath = ctx.searchPath ?? ['public']
    const tables = this.place(plan, searchPath)
    this.checkViewsRead(plan, searchPath)
    const hinted = this.hintedShard(plan, ctx, tables)
    if (hinted !== undefined) return this.routeHinted(plan, param, ctx, tables, searchPath, hinted)
    this.checkConflictTargets(plan, searchPath)
    if (plan.overridingUser) this.refuseOverridingUser(plan, tables)
    if (plan.statements) this.checkStatementsTogether(plan.statements, param, ctx)
    return this.evaluateFirst(plan, param, ctx, searchPath, tables) ?? this.decideAsWritten(plan, param, ctx, searchPath, tables)
  }

  /** Where the statement goes as it is written. */
  private decideAsWritten(plan: StatementPlan, param: (n: number) => BoundParam | undefined, ctx: RoutingContext, searchPath: string[], tables: Placement): Route {
    if (plan.kind === 'ddl') return this.routeDdl(plan, ctx, tables)
    if (plan.commandTag === 'LOCK TABLE' && this.spans(ctx) && tables.sharded.length + tables.reference.length > 0) return this.routeLock(plan, ctx, tables)
    if (plan.kind === 'copy_from') return this.routeCopyFrom(plan, ctx, tables)
    if (plan.kind === 'insert' && plan.insert) {
      const drawn = this.drawnColumnRoute(plan.insert, param, searchPath)
      if (drawn) return drawn
    }
    const listed = plan.insertColumns
    const target = plan.writtenTables[0]
    if (plan.kind === 'insert' && listed !== undefined && listed.length > 0 && target !== undefined) {
      const left = this.map.drawnColumns(target, searchPath).filter((d) => !listed.includes(d.column))
      if (left.length > 0) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `INSERT … SELECT into ${tableLabel(target)} leaves out ${left.map((d) => d.column).join(', ')}, which pgshard makes (sharding.made_columns) only for INSERT … VALUES: each shard would number the rows on its own`,
          'insert the rows with INSERT … VALUES (pgshard makes the column there), or give its values in the SELECT',
        )
      }
    }
    if (plan.kind === 'insert') {
      const targetRef = plan.insert?.table ?? plan.writtenTables[0]
      const table = targetRef && this.map.shardedTable(targetRef, searchPath)
      if (table) return this.routeShardedInsert(plan, param, ctx, tables, searchPath, table)
    }
    if (plan.tables.length === 0 && plan.kind === 'select' && plan.functions.includes('setval')) {
      // Every shard has the sequence (serial columns of sharded and reference tables): pg_dump's setval after
      // loading rows sets each, so that no shard's next value is one its rows already have.
      return { kind: 'broadcast', role: 'primary', tag: 'first', reason: 'setval(): the sequence on every shard' }
    }
    if (plan.tables.length === 0) {
      this.refuseCallsReadingShards(plan)
      const shard = ctx.txShard ?? this.map.defaultShard
      return this.single(plan, ctx, shard, `no table: ${ctx.txShard === undefined ? 'default shard' : 'the transaction\u2019s shard'} ${this.map.shardName(shard)}`)
    }
    return this.routeTables(plan, param, ctx, tables, searchPath)
  }

  // ---- subqueries read first ----------------------------------------------------------------------------

  /**
   * A statement whose self-contained subqueries read sharded tables: as it is written when it runs so (the
   * subqueries pinned to its shard, `key IN (SELECT key …)` of co-located tables), except where each shard would
   * answer them over its own rows for a write (a write sent to every shard, the probe finding a write's rows, the
   * read of an INSERT … SELECT split by key); otherwise those subqueries are read first (the 'evaluate' route).
   * Undefined when it has none.
   */
  private evaluateFirst(plan: StatementPlan, param: (n: number) => BoundParam | undefined, ctx: RoutingContext, searchPath: string[], tables: Placement): Route | undefined {
    const detached = plan.detached
    const sharded = (sub: DetachedSubquery) => sub.plan.tables.filter((t) => this.map.shardedTable(t, searchPath) !== undefined)
    if (detached === undefined || !detached.subqueries.some((sub) => sub.form === 'values' || sharded(sub).length > 0)) return undefined
    let refused: Refusal | undefined
    let asWritten: Route | undefined
    try {
      asWritten = this.decideAsWritten(plan, param, ctx, searchPath, tables)
      if (asWritten.kind !== 'locate' && asWritten.kind !== 'broadcast' && asWritten.kind !== 'copy_split') return asWritten
    } catch (err) {
      if (!(err instanceof Refusal)) throw err
      refused = err
    }
    // An INSERT's rows (RETURNING, ON CONFLICT) are read first when it cannot run as written (as VALUES, its rows
    // find their shards by key), or when they come from sharded tables, as any subquery's.
    const readFirst = (sub: DetachedSubquery) => sharded(sub).length > 0 || (sub.form === 'values' && refused !== undefined)
    if (!detached.subqueries.some(readFirst)) return asWritten
    // What the statement does besides its subqueries, and each of them, must be possible. A subquery in FROM that
    // is not is refused as the statement was (the planner says why in its place); another for its own reason. An
    // INSERT whose rows are read first is routed once they are written in.
    if (!detached.subqueries.some((sub) => sub.form === 'values' && readFirst(sub))) {
      const outer = this.decide(detached.outer, param, ctx)
      if (outer.kind === 'error') return outer
    }
    for (const sub of detached.subqueries) {
      if (!readFirst(sub)) continue
      try {
        this.decide(sub.plan, param, ctx)
      } catch (err) {
        if (!(err instanceof Refusal)) throw err
        throw sub.form === 'table' && refused !== undefined ? refused : new Refusal(err.code, inSubqueryReadFirst(err.message), err.hint)
      }
    }
    // The subqueries over no sharded table stay in the text.
    const parts = [detached.parts[0]!]
    const subqueries: DetachedSubquery[] = []
    detached.subqueries.forEach((sub, i) => {
      if (readFirst(sub)) {
        subqueries.push(sub)
        parts.push(detached.parts[i + 1]!)
      } else parts[parts.length - 1] += sub.sql + detached.parts[i + 1]!
    })
    const names = list([...new Set(subqueries.flatMap((sub) => sharded(sub).map(tableLabel)))])
    const reason = subqueries.some((sub) => sub.form === 'values')
      ? 'the rows of INSERT \u2026 SELECT with RETURNING or ON CONFLICT, read first and written in as VALUES'
      : `a subquery over sharded table ${names}, read first on its own`
    const route: Route = { kind: 'evaluate', parts, subqueries, reason }
    return refused === undefined ? route : { ...route, refused: refused.message }
  }

  // ---- hints ------------------------------------------------------------------------------------------

  private hintedShard(plan: StatementPlan, ctx: RoutingContext, tables: Placement): { shard: number; source: string } | undefined {
    const shardHint = plan.hints.find((h) => h.kind === 'shard')?.value
    const keyHint = plan.hints.find((h) => h.kind === 'key')?.value
    if (shardHint !== undefined) return { shard: this.namedShard(shardHint), source: `hint shard=${shardHint}` }
    if (keyHint !== undefined) return { shard: this.keyShard(keyHint, tables), source: 'hint key=\u2026' }
    if (ctx.shardHint !== undefined) {
      return { shard: this.namedShard(ctx.shardHint), source: `SET pgshard.shard = ${ctx.shardHint}` }
    }
    if (ctx.keyHint !== undefined) return { shard: this.keyShard(ctx.keyHint, tables), source: 'SET pgshard.key' }
    return undefined
  }

  private namedShard(name: string): number {
    const byName = this.map.shardIndex(name)
    if (byName !== undefined) return byName
    if (/^\d+$/.test(name) && Number(name) < this.map.shards.length) return Number(name)
    const names = this.map.shards.map((s) => s.name).join(', ')
    throw new Refusal(UNDEFINED_OBJECT, `unknown shard "${name}" in pgshard hint; the shards are: ${names}`)
  }

  private keyShard(value: string, tables: Placement): number {
    const types = new Set<KeyType>(tables.sharded.map((u) => u.table.keyType))
    if (types.size === 1) return this.map.shardForTypedHint([...types][0], value)
    return this.map.shardForHint(value)
  }

  private roleHint(plan: StatementPlan, ctx: RoutingContext): Role | undefined {
    const hint = plan.hints.find((h) => h.kind === 'role')
    return hint?.kind === 'role' ? hint.value : ctx.roleHint
  }

  private routeHinted(
    plan: StatementPlan,
    param: (n: number) => BoundParam | undefined,
    ctx: RoutingContext,
    tables: Placement,
    searchPath: string[],
    hinted: { shard: number; source: string },
  ): Route {
    const name = this.map.shardName(hinted.shard)
    if (tables.writtenReference.length > 0) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${hinted.source} restricts the statement to shard ${name}, but it writes reference table ${list(tables.writtenReference)}, which must change on every shard`,
      )
    }
    for (const use of tables.sharded) {
      const shards = this.useShards(use, plan, param, tables, searchPath)
      const other = shards === 'all' ? undefined : [...shards].find((s) => s !== hinted.shard)
      if (other !== undefined) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `${hinted.source} sends the statement to shard ${name}, but it pins ${tableLabel(use.ref)}.${use.table.key} to shard ${this.map.shardName(other)}`,
        )
      }
    }
    if (plan.kind === 'insert' && plan.insert) {
      const table = this.map.shardedTable(plan.insert.table, searchPath)
      const keyIndex = table ? plan.insert.columns.indexOf(table.key) : -1
      if (table && keyIndex >= 0) {
        const other = this.rowShards(plan, table, keyIndex, param, true).find((s) => s !== undefined && s !== hinted.shard)
        if (other !== undefined) {
          throw new Refusal(
            FEATURE_NOT_SUPPORTED,
            `${hinted.source} sends the INSERT to shard ${name}, but a row's ${table.key} belongs to shard ${this.map.shardName(other)}`,
          )
        }
      }
    }
    return this.single(plan, ctx, hinted.shard, `${hinted.source} \u2192 ${name}`)
  }

  // ---- statement kinds --------------------------------------------------------------------------------

  private routeDdl(plan: StatementPlan, ctx: RoutingContext, tables: Placement): Route {
    const everywhere = [...new Set([...tables.sharded.map((u) => tableLabel(u.ref)), ...tables.reference, ...tables.views])]
    if (everywhere.length === 0 && tables.unsharded.length === 0) {
      return { kind: 'broadcast', role: 'primary', tag: 'first', reason: 'DDL naming no table: every shard' }
    }
    if (everywhere.length === 0) {
      return this.single(plan, ctx, this.map.defaultShard, `DDL on unsharded table ${list(tables.unsharded)}: default shard ${this.defaultName()}`)
    }
    if (tables.unsharded.length > 0) {
      // CREATE VIEW; CREATE MATERIALIZED VIEW and CREATE TABLE … AS (whose command tag is SELECT) keep rows.
      const view = plan.commandTag === 'CREATE VIEW' && plan.definesView?.materialized !== true
      const copy = plan.commandTag === 'SELECT' || plan.definesView?.materialized === true
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `DDL names ${list(everywhere)} (on every shard) and unsharded table ${list(tables.unsharded)} (only on shard ${this.defaultName()}): it cannot run on one shard or on all`,
        view
          ? `a view over sharded tables is made on every shard, so it may read only sharded and reference tables and views over them: ${list(tables.unsharded)} is only on shard ${this.defaultName()}`
          : copy
            ? 'a materialized view or a table made from a query over sharded tables would hold one shard\u2019s rows: query the tables themselves (pgshard merges reads across shards), or make a plain view'
            : 'run it for the sharded and reference tables and for the others in separate statements',
      )
    }
    const what = tables.views.length > 0 ? 'sharded/reference tables and views over them' : 'sharded/reference table'
    const warnings = this.perShardUniqueness(plan, ctx.searchPath ?? ['public'])
    return { kind: 'broadcast', role: 'primary', tag: 'first', reason: `DDL on ${what} ${list(everywhere)}: every shard`, ...(warnings.length > 0 ? { warnings } : {}) }
  }

  /**
   * The unique constraints and indexes the DDL makes on sharded tables that each shard can only keep on its own
   * rows: they leave out the sharding key (equal values may sit on two shards, under different keys), and are not
   * of one column whose values pgshard draws unique across shards. Said to the client as a WARNING.
   */
  private perShardUniqueness(plan: StatementPlan, searchPath: string[]): string[] {
    return (plan.uniqueness ?? []).flatMap((u) => {
      const table = this.map.shardedTable(u.table, searchPath)
      if (table === undefined || u.columns.includes(table.key)) return []
      if (u.columns.length === 1 && this.map.drawnColumns(u.table, searchPath).some((d) => d.column === u.columns[0])) return []
      return [
        `${u.what} of sharded table ${tableLabel(u.table)} holds on each shard alone: rows with equal values and different ${table.key} may sit on two shards; include ${table.key} in it for it to hold across shards`,
      ]
    })
  }

  /**
   * The statements of one Query run together wherever it goes: refuses a statement that must run on every shard
   * (DDL on a sharded or reference table, a write to a reference table) next to one that must not (a write or
   * read of a sharded table's rows, which every shard would run on its own rows: an INSERT would be stored on
   * every shard).
   */
  private checkStatementsTogether(statements: StatementPlan[], param: (n: number) => BoundParam | undefined, ctx: RoutingContext): void {
    // One that cannot run alone (a read of several shards: no merge is planned among several statements) is refused.
    const routed = statements.filter((p) => p.tables.length > 0).map((plan) => ({ plan, route: this.decide(plan, param, ctx) }))
    // A call, in a statement naming no table, of a function that reads a sharded table (created by an earlier one).
    for (const plan of statements) if (plan.tables.length === 0) this.refuseCallsReadingShards(plan)
    const everywhere = routed.find(({ plan, route }) => route.kind === 'broadcast' && (plan.kind === 'ddl' || route.tag === 'first'))
    const other = routed.find(({ plan, route }) => route.kind !== 'broadcast' || (plan.kind !== 'ddl' && route.tag !== 'first'))
    // Rows read on several shards come back one shard's after the other's, not merged (nor in ORDER BY order).
    const read = routed.find(({ plan, route }) => plan.kind === 'select' && route.kind !== 'broadcast' && plan.writtenTables.length === 0)
    const shards = new Set(routed.flatMap(({ route }) => this.routeShards(route)))
    if (read !== undefined && shards.size > 1) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `a query of several statements that runs on shards ${[...shards].sort((a, b) => a - b).map((s) => this.map.shardName(s)).join(', ')} reads sharded rows (${routeReason(read.route)}): the shards' rows would not be merged`,
        'send the SELECT as a query of its own',
      )
    }
    if (everywhere === undefined || other === undefined) return
    throw new Refusal(
      FEATURE_NOT_SUPPORTED,
      `a query of several statements runs ${statementVerb(everywhere.plan)} on every shard (${routeReason(everywhere.route)}) and ${statementVerb(other.plan)} where its rows are (${routeReason(other.route)}): run together, each would run in the other's place`,
      'send them as separate queries',
    )
  }

  /** The shards a route runs on. */
  private routeShards(route: Route): number[] {
    if (route.kind === 'shard') return [route.shard]
    if (route.kind === 'split') return route.parts.map((p) => p.shard)
    if (route.kind === 'broadcast' && route.shards) return route.shards
    return route.kind === 'error' ? [] : this.map.shards.map((_, i) => i)
  }

  /** Whether the open transaction may write, or lock, on other shards: READ ONLY, or any with two-phase commit. */
  private spans(ctx: RoutingContext): boolean {
    return ctx.inTransaction && (ctx.txReadOnly || this.twoPhase)
  }

  /**
   * Whether the open transaction may read other shards: any but a SERIALIZABLE read-write one without two-phase
   * commit (serializable on each shard is not serializable across them). Its writes stay on one shard.
   */
  private readsSpan(ctx: RoutingContext): boolean {
    return this.spans(ctx) || (ctx.inTransaction && ctx.pinnedBy === undefined && ctx.serializable !== true)
  }

  /**
   * A statement that may write (or lock rows): a write, DDL, a locking read, a call of a volatile function but
   * those that write no rows (set_config for row-level security, random …).
   */
  mayWrite(plan: StatementPlan): boolean {
    if (plan.kind === 'transaction' || plan.kind === 'set' || plan.kind === 'show' || plan.kind === 'empty') return false
    // EXPLAIN writes only what it runs (ANALYZE of a write): it is routed like what it explains.
    const utility = (plan.kind === 'ddl' || plan.kind === 'utility') && plan.commandTag !== 'EXPLAIN'
    if (plan.writes || plan.writtenTables.length > 0 || WRITE_KINDS.has(plan.kind) || utility) return true
    const calls = plan.functions.filter((f) => !WRITE_NO_ROWS.has(f))
    return calls.length > 0 && this.volatility.firstVolatile(calls) !== undefined
  }

  /**
   * LOCK TABLE of sharded or reference tables in a transaction that may span shards (pg_dump's READ ONLY one,
   * before it reads each table): every shard joins the transaction and takes the lock.
   */
  private routeLock(plan: StatementPlan, ctx: RoutingContext, tables: Placement): Route {
    const names = list([...new Set([...tables.sharded.map((u) => tableLabel(u.ref)), ...tables.reference])])
    if (tables.unsharded.length > 0) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `LOCK TABLE names ${names} (on every shard) and unsharded table ${list(tables.unsharded)} (only on shard ${this.defaultName()})`,
        'lock them in two statements',
      )
    }
    if (!ctx.txReadOnly) return { kind: 'broadcast', role: 'primary', tag: 'first', reason: `LOCK TABLE ${names} in a two-phase transaction: every shard` }
    const role: Role = this.roleHint(plan, ctx) ?? (ctx.serializable === true || this.readFrom === 'primary' ? 'primary' : 'replica')
    return { kind: 'broadcast', role, tag: 'first', reason: `LOCK TABLE ${names} in a READ ONLY transaction: every shard` }
  }

  private routeCopyFrom(plan: StatementPlan, ctx: RoutingContext, tables: Placement): Route {
    if (tables.writtenSharded.size > 0) {
      const t = [...tables.writtenSharded][0]
      const copy = plan.copy
      const refusedInTransaction = ctx.inTransaction && !this.twoPhase
      if (copy?.stdin !== true || refusedInTransaction)
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `COPY FROM into sharded table ${t.name} must split its rows by ${t.key}, which pgshard does only for ${
            copy?.stdin !== true
              ? 'rows sent by the client (FROM STDIN), not a file on the server'
              : 'a COPY outside a transaction block (it is all or nothing by itself), unless sharding.cross_shard_transactions is two_phase'
          }`,
          'use COPY … FROM STDIN outside a transaction, or COPY each shard\u2019s rows with /* pgshard: shard=NAME */',
        )
      return this.splitRows(t, copy, plan, ctx, 'COPY')
    }
    if (tables.writtenReference.length > 0) {
      const drawn = this.drawnLeftOut(plan, plan.copy?.columns, ctx)
      if (drawn.length > 0) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `COPY into reference table ${list(tables.writtenReference)} leaves out ${drawn.map((d) => d.column).join(', ')}, which pgshard makes (sharding.made_columns): each shard would number the rows on its own`,
          'give the column in the data, or insert the rows with INSERT … VALUES',
        )
      }
      return { kind: 'broadcast', role: 'primary', tag: 'first', reason: `COPY into reference table ${list(tables.writtenReference)}: every shard` }
    }
    return this.single(plan, ctx, this.map.defaultShard, `COPY into unsharded table ${list(tables.unsharded)}: default shard ${this.defaultName()}`)
  }

  /**
   * Rows of a COPY (or of an INSERT … SELECT, `what`) into sharded table `t`, each to the shard of its key; pgshard
   * makes one column the rows leave out, the key or a drawn one.
   */
  private splitRows(t: ShardedTable, copy: CopyShape, plan: StatementPlan, ctx: RoutingContext, what: string): Extract<Route, { kind: 'copy_split' }> {
    const map = this.map
    const generated = copy.columns !== null && !copy.columns.includes(t.key) ? t.generatedKey : undefined
    const drawn = this.drawnLeftOut(plan, copy.columns, ctx)
    if (drawn.length + (generated === undefined ? 0 : 1) > 1) {
      const names = [...(generated === undefined ? [] : [t.key]), ...drawn.map((d) => d.column)].join(', ')
      throw new Refusal(FEATURE_NOT_SUPPORTED, `${what} into ${t.name} leaves out ${names}, which pgshard makes: it makes one column of a ${what}`, 'give the other columns')
    }
    const made =
      generated !== undefined
        ? { column: t.key, from: this.keySource(generated), places: true }
        : drawn[0] !== undefined
          ? { column: drawn[0].column, from: this.keySource(drawn[0].made), places: false }
          : undefined
    return {
      kind: 'copy_split',
      copy,
      key: t.key,
      keyShard: (value, format, typeOid) => map.shardForValue(t.keyType, value, format, typeOid),
      ...(made !== undefined ? { made } : {}),
      reason: `${what} into sharded table ${t.name}: each row to the shard of its ${t.key}${made === undefined ? '' : made.from === 'uuid' ? ', a random UUID made for each' : `, ${made.column} drawn for each from sequence ${made.from.sequence} (shard ${this.defaultName()})`}`,
    }
  }

  /**
   * INSERT … SELECT into sharded table `t` whose keys are known only once the SELECT has run: pgshard runs it as
   * `COPY (query) TO STDOUT`, routed as any such COPY, and sends its rows to their shards as a COPY into `t`.
   */
  private insertSelectRoute(plan: StatementPlan, rows: InsertSelect, ctx: RoutingContext, t: ShardedTable): Route {
    if (ctx.inTransaction && !this.twoPhase)
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `INSERT into sharded table ${t.name} takes its keys (${t.key}) from its SELECT, so its rows may go to several shards, which pgshard does only outside a transaction block (it is all or nothing by itself), unless sharding.cross_shard_transactions is two_phase`,
        'run it outside the transaction, or select the key as a constant or as the pinned key of the table read',
      )
    const copy: CopyShape = { table: rows.table, columns: rows.columns, stdin: true, format: 'text', delimiter: '\t', quote: '"', escape: '"', nullText: '\\N', header: false }
    return { ...this.splitRows(t, copy, plan, ctx, 'INSERT \u2026 SELECT'), source: `COPY (${rows.query}) TO STDOUT` }
  }

  private routeShardedInsert(
    plan: StatementPlan,
    param: (n: number) => BoundParam | undefined,
    ctx: RoutingContext,
    tables: Placement,
    searchPath: string[],
    target: ShardedTable,
  ): Route {
    const insert = plan.insert
    if (!insert && plan.statements) return this.routeStatementsWithInsert(plan, plan.statements, param, ctx, target)
    if (!insert) {
      // Reading the target table too, the SELECT's rows of it are on every shard: the key's value says nothing of them.
      const keyPins = plan.insertReadsTarget ? undefined : this.insertSelectKeyPins(plan, target, searchPath)
      if (keyPins !== undefined) return this.routeTables({ ...plan, pins: [...plan.pins, ...keyPins] }, param, ctx, tables, searchPath)
      if (plan.insertSelect) return this.insertSelectRoute(plan, plan.insertSelect, ctx, target)
      if (plan.insertsNoRows) return this.single(plan, ctx, ctx.txShard ?? this.map.defaultShard, `INSERT into ${target.name} of no row`)
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `INSERT into sharded table ${target.name} must give its key column ${target.key} in VALUES, or take it in its SELECT from a constant or from a sharded table's key that the WHERE clause pins; this INSERT \u2026 SELECT cannot be routed`,
        'name the columns, and select the key as a constant or as the pinned key of the table read (INSERT INTO t (key, …) SELECT s.key, … FROM s WHERE s.key = …); or use /* pgshard: shard=NAME */ when every row belongs to that shard; pgshard splits the rows of an INSERT … SELECT by key itself when its query stands on its own (not over a WITH query of the INSERT) and writes nothing',
      )
    }
    const keyIndex = insert.columns.indexOf(target.key)
    // Keys pgshard makes: for an INSERT that leaves the key out, or gives DEFAULT in every row (Sequelize).
    const generated = target.generatedKey
    if (generated !== undefined && leavesOut(insert, keyIndex, generated === 'uuid' ? undefined : generated.sequence, (ref) => sequenceText(ref, param))) {
      return this.generatedKeys(ctx, target, insert, generated, keyIndex < 0 ? null : keyIndex)
    }
    if (keyIndex < 0) {
      const unnamed = insert.columnsAt === null && !insert.defaultValues
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        insert.defaultValues
          ? `INSERT … DEFAULT VALUES into sharded table ${target.name} gives no key (column ${target.key})`
          : `INSERT into sharded table ${target.name} must name its key column ${target.key} in the column list`,
        unnamed
          ? `name the columns (INSERT INTO t (a, b) VALUES …): pgshard finds the key by its name${generated !== undefined ? ' and adds the key it makes to a column list' : ''} (pg_dump: --column-inserts)`
          : target.keyType === 'bigint' || target.keyType === 'integer'
            ? 'give the key, or let pgshard draw it from a sequence: key_sequence for the table in sharding.tables (docs/routing.md)'
            : target.keyType === 'uuid'
              ? 'give the key, or let pgshard make random UUIDs: key_uuid: true for the table in sharding.tables (docs/routing.md)'
              : undefined,
      )
    }
    const rowShards = this.rowShards(plan, target, keyIndex, param, false) as number[]
    const shards = [...new Set(rowShards)].sort((a, b) => a - b)
    // Other occurrences of sharded tables (a subquery in VALUES, a CTE) are reads that must stay local; the
    // target's own use among them when the statement reads it too.
    const targetUse = tables.sharded.findIndex((u) => u.table === target)
    const reads = tables.sharded.filter((_, i) => i !== targetUse || plan.insertReadsTarget === true)
    if (shards.length <= 1) {
      const shard = shards[0] ?? ctx.txShard ?? this.map.defaultShard
      const name = this.map.shardName(shard)
      for (const use of reads) {
        const s = this.useShards(use, plan, param, tables, searchPath)
        if (s === 'all' || [...s].some((x) => x !== shard)) {
          throw new Refusal(
            FEATURE_NOT_SUPPORTED,
            `INSERT into ${target.name} goes to shard ${name}, but it reads sharded table ${tableLabel(use.ref)} from other shards`,
          )
        }
      }
      this.requireDefault(shard, tables, `INSERT into ${target.name} goes to shard ${name}`)
      return this.single(plan, ctx, shard, `${target.name}.${target.key} in VALUES \u2192 ${name}`)
    }
    const names = shards.map((s) => this.map.shardName(s)).join(', ')
    if (reads.length > 0 || tables.unsharded.length > 0) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `INSERT rows of ${target.name} belong to shards ${names}, and the statement also reads ${list([...reads.map((u) => tableLabel(u.ref)), ...tables.unsharded])}: it cannot be split`,
      )
    }
    if ((ctx.inTransaction || ctx.txShard !== undefined) && !(this.twoPhase && ctx.inTransaction)) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `INSERT rows of ${target.name} belong to shards ${names}; inside a transaction a multi-shard INSERT cannot be split: cross-shard transactions are not supported`,
        'insert each shard\u2019s rows in its own transaction, or run the INSERT outside a transaction block',
      )
    }
    return { kind: 'split', parts: splitInsert(insert, rowShards), rowShards, reason: `INSERT rows of ${target.name} span shards ${names}: one INSERT per shard` }
  }

  /**
   * A query of several statements, one an INSERT into sharded table `target`: it runs where every statement
   * that names a table goes, when that is one shard.
   */
  private routeStatementsWithInsert(
    plan: StatementPlan,
    statements: StatementPlan[],
    param: (n: number) => BoundParam | undefined,
    ctx: RoutingContext,
    target: ShardedTable,
  ): Route {
    const routes = statements.filter((p) => p.tables.length > 0).map((p) => this.decide(p, param, ctx))
    const shards = new Set(routes.map((r) => (r.kind === 'shard' ? r.shard : -1)))
    const [shard] = shards
    if (shards.size === 1 && shard !== undefined && shard >= 0) return this.single(plan, ctx, shard, `every statement of the query \u2192 ${this.map.shardName(shard)}`)
    throw new Refusal(
      FEATURE_NOT_SUPPORTED,
      `a query of several statements with an INSERT into sharded table ${target.name} runs only where all its statements go together, and they do not go to one shard (${routes.map((r) => routeReason(r)).join('; ')})`,
      'send the INSERT as a query of its own',
    )
  }

  /**
   * INSERT … SELECT that takes the key of every row from a constant or parameter, or from the key of a sharded
   * table it reads (placed alike), which its WHERE clause pins: those values pin the inserted rows too, so the
   * statement runs on one shard when everything it reads is there. Undefined when the key's source is unknown.
   */
  private insertSelectKeyPins(plan: StatementPlan, target: ShardedTable, searchPath: string[]): ColumnPin[] | undefined {
    const index = plan.insertColumns?.indexOf(target.key) ?? -1
    const source = index < 0 ? undefined : plan.insertSources?.[index]
    const ref = plan.writtenTables[0]
    if (!source || ref === undefined) return undefined
    if ('value' in source) return [{ table: ref, column: target.key, values: [source.value] }]
    const from = this.map.shardedTable(source.table, searchPath)
    if (from?.key !== source.column || keyFamily(from.keyType) !== keyFamily(target.keyType)) return undefined
    const pins = plan.pins.filter((p) => p.column === source.column && sameReference(p.table, source.table))
    return pins.length === 0 ? undefined : pins.map((p) => ({ table: ref, column: target.key, values: p.values }))
  }

  /**
   * An INSERT that leaves out (or gives DEFAULT in every row for) a column whose values pgshard draws
   * (sharding.made_columns): they are drawn and written in, then the INSERT is routed.
   */
  private drawnColumnRoute(insert: InsertRows, param: (n: number) => BoundParam | undefined, searchPath: string[]): Route | undefined {
    for (const { column, made } of this.map.drawnColumns(insert.table, searchPath)) {
      const index = insert.columns.indexOf(column)
      if (!leavesOut(insert, index, made === 'uuid' ? undefined : made.sequence, (ref) => sequenceText(ref, param))) continue
      return {
        kind: 'keys',
        key: column,
        keyIndex: index < 0 ? null : index,
        from: this.keySource(made),
        insert,
        oneShard: false,
        places: false,
        shardOf: () => this.map.defaultShard,
        reason: `INSERT into ${tableLabel(insert.table)} ${index < 0 ? 'leaves out' : 'gives DEFAULT for'} ${column}: ${made === 'uuid' ? 'random UUIDs' : `values from sequence ${made.sequence} (shard ${this.defaultName()})`}`,
      }
    }
    return undefined
  }

  /**
   * The shard of the key value a write assigns (`SET key = 50`), where a write that found no rows runs to answer
   * `UPDATE 0` (Django's save() of a row that is gone sets the key it had); none when it assigns none.
   */
  private assignedKeyShards(plan: StatementPlan, table: ShardedTable, param: (n: number) => BoundParam | undefined): number[] {
    const value = plan.assignments?.find((a) => a.column === table.key && a.value !== null && a.value !== 'unchanged')?.value
    return value === undefined || value === null || value === 'unchanged' ? [] : [this.valueShard(table, value, param, true)!]
  }

  /** The columns pgshard draws (sharding.made_columns) that a COPY's column list leaves out. */
  private drawnLeftOut(plan: StatementPlan, columns: string[] | null | undefined, ctx: RoutingContext): DrawnColumn[] {
    const target = plan.writtenTables[0]
    if (columns === null || columns === undefined || target === undefined) return []
    return this.map.drawnColumns(target, ctx.searchPath ?? ['public']).filter((d) => !columns.includes(d.column))
  }

  /** Where a table's made keys come from: random UUIDs, or its sequence on the default shard. */
  private keySource(generated: GeneratedKey): KeySource {
    return generated === 'uuid' ? 'uuid' : { sequence: generated.sequence, shard: this.map.defaultShard }
  }

  /** An INSERT that leaves out a key pgshard makes for its table: the keys are made, then it is routed. */
  private generatedKeys(ctx: RoutingContext, target: ShardedTable, insert: InsertRows, generated: GeneratedKey, keyIndex: number | null): Route {
    // A transaction that cannot go on to other shards (or a pinned session) keeps its rows on one: its own.
    const oneShard = ctx.pinnedBy !== undefined || (ctx.inTransaction && !this.spans(ctx))
    // The shard the transaction writes, or, where it cannot leave its shard, that one.
    const held = !oneShard ? undefined : ctx.pinnedBy !== undefined || !this.readsSpan(ctx) ? ctx.txShard : ctx.txWriter
    const where = held !== undefined ? `keys of shard ${this.map.shardName(held)}, the transaction's` : oneShard ? 'keys of one shard' : 'the shards of the keys'
    return {
      kind: 'keys',
      key: target.key,
      keyIndex,
      from: this.keySource(generated),
      insert,
      shard: held,
      oneShard,
      places: true,
      shardOf: (key) => this.map.shardForTypedHint(target.keyType, key),
      reason: `INSERT into ${target.name} ${keyIndex === null ? 'leaves out' : 'gives DEFAULT for'} ${target.key}: ${generated === 'uuid' ? 'random UUIDs' : `keys from sequence ${generated.sequence} (shard ${this.defaultName()})`}, ${where}`,
    }
  }

  private routeTables(
    plan: StatementPlan,
    param: (n: number) => BoundParam | undefined,
    ctx: RoutingContext,
    tables: Placement,
    searchPath: string[],
  ): Route {
    const verb = statementVerb(plan)
    if (tables.writtenReference.length > 0) {
      const others = [...tables.sharded.map((u) => tableLabel(u.ref)), ...tables.unsharded]
      if (others.length > 0) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `${verb} writes reference table ${list(tables.writtenReference)} using ${list(others)}: a reference table is written on every shard, so the statement may use only reference tables`,
        )
      }
      // Each shard would call it on its own: a different id, UUID or random value in each copy of the table.
      const volatile = this.volatility.firstVolatile(plan.functions)
      if (volatile !== undefined) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `${verb} writes reference table ${list(tables.writtenReference)} calling ${volatile}(), which every shard would call on its own: the copies of the table would differ`,
          volatile === 'nextval' || volatile === 'gen_random_uuid' || volatile === 'uuid_generate_v4'
            ? 'leave the column out and list it in sharding.made_columns (pgshard makes the value once), or make the value first (SELECT nextval(…)) and give it'
            : this.volatility.isKnown(volatile)
              ? 'compute the value first and give it as a constant or parameter'
              : `compute the value first and give it as a constant or parameter; if ${volatile}() is immutable or stable and was created since pgshard started, RELOAD (or SIGHUP) makes pgshard read the catalog again`,
        )
      }
      return { kind: 'broadcast', role: 'primary', tag: 'first', reason: `${verb} on reference table ${list(tables.writtenReference)}: every shard` }
    }
    if (tables.sharded.length === 0) {
      this.refuseCallsReadingShards(plan)
      this.refuseViewsOverShards(plan, searchPath)
      if (tables.reference.length === 0 && this.readsCatalogOnly(plan)) {
        // Every shard has its own catalog, with its own oids: the default shard answers all of a session's catalog
        // reads, but in a transaction that cannot leave its shard, which answers them.
        const shard = ctx.txShard !== undefined && !this.readsSpan(ctx) ? ctx.txShard : this.map.defaultShard
        return { kind: 'shard', shard, role: this.role(plan, ctx), reason: `system catalog ${list(tables.unsharded)} only: shard ${this.map.shardName(shard)}`, catalog: true }
      }
      if (tables.unsharded.length > 0) {
        return this.single(plan, ctx, this.map.defaultShard, `unsharded table ${list(tables.unsharded)}: default shard ${this.defaultName()}`)
      }
      const shard = ctx.txShard ?? this.map.defaultShard
      const where = ctx.txShard === undefined ? 'default shard' : 'the transaction\u2019s shard'
      return this.single(plan, ctx, shard, `reference table ${list(tables.reference)} only: ${where} ${this.map.shardName(shard)}`)
    }

    const sets = tables.sharded.map((use) => this.useShards(use, plan, param, tables, searchPath))
    this.pinThroughTies(plan, tables, sets, searchPath)
    // A write that found where its rows are (locate): that shard, as if its key had pinned it. Rows on several
    // shards: every one of them, all or nothing (a bulk UPDATE or DELETE by other columns), unless the write
    // addresses rows by a column each shard keeps unique on its own (serial ids repeat across shards, each shard
    // counting its own: an ORM's delete() by id would change another tenant's row with the same id), or the
    // catalog does not know the table yet, or it is a locking read (each shard would lock its own first rows).
    const located = ctx.located !== undefined && this.locatable(plan, tables) ? ctx.located : undefined
    const bySingleRows = located !== undefined && located.length > 1 ? this.addressedByUnique(plan, tables.sharded[0]!, searchPath) : null
    if (located !== undefined && located.length > 1 && bySingleRows !== null) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${verb} on ${tableLabel(tables.sharded[0]!.ref)} has no condition on the sharding key ${tables.sharded[0]!.table.key}, and may ${plan.kind === 'select' ? 'lock' : 'change'} rows on shards ${located.map((s) => this.map.shardName(s)).join(', ')}: ${plan.kind === 'select' ? 'a locking read' : 'a write'} without its key runs on one shard${bySingleRows}`,
        plan.kind === 'select'
          ? `pin the key (WHERE ${tables.sharded[0]!.table.key} = …), or lock them in a transaction with sharding.cross_shard_transactions: two_phase, which locks rows on every shard (with LIMIT, only those it returns)`
          : `pin the key (WHERE ${tables.sharded[0]!.table.key} = …), or set broadcast_writes for the table to write every shard; a serial id of a sharded table repeats across shards (each shard counts its own) unless sharding.made_columns draws it`,
        this.columns.uniqueColumns(tables.sharded[0]!.ref) === undefined,
      )
    }
    if (located !== undefined) sets[0] = new Set(located.length > 0 ? located : this.assignedKeyShards(plan, tables.sharded[0]!.table, param))
    const unpinned = tables.sharded.filter((_, i) => sets[i] === 'all')
    const needed = new Set<number>()
    for (const s of sets) if (s !== 'all') for (const shard of s) needed.add(shard)
    const keys = [...new Set(tables.sharded.map((u) => `${tableLabel(u.ref)}.${u.table.key}`))].join(', ')
    if (unpinned.length === 0 && needed.size <= 1) {
      const shard = needed.size === 1 ? [...needed][0] : (ctx.txShard ?? this.map.defaultShard)
      const name = this.map.shardName(shard)
      this.requireDefault(shard, tables, `${verb} pins ${keys} to shard ${name}`)
      return this.single(plan, ctx, shard, needed.size === 1 ? `${keys} pinned \u2192 ${name}` : `${keys} conditions match no row \u2192 ${name}`)
    }

    const sharded = list([...new Set(tables.sharded.map((u) => tableLabel(u.ref)))])
    const where =
      unpinned.length > 0
        ? `has no condition on the sharding key ${[...new Set(unpinned.map((u) => `${tableLabel(u.ref)}.${u.table.key}`))].join(', ')}`
        : `touches shards ${[...needed].sort((a, b) => a - b).map((s) => this.map.shardName(s)).join(', ')}`
    if (tables.unsharded.length > 0) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${verb} on ${sharded} ${where}, but unsharded table ${list(tables.unsharded)} exists only on shard ${this.defaultName()}`,
        `pin the key to a value owned by shard ${this.defaultName()}`,
      )
    }
    if (plan.cursor?.use === 'declare') {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `DECLARE of a cursor over ${sharded}, which ${where}: a cursor reads from one shard (psycopg's and Django's named cursors declare one) unless it is declared WITH HOLD outside a transaction block, or WITHOUT HOLD in a transaction that may span shards`,
        'in transaction pooling, declare it in a READ ONLY transaction, or in any transaction with sharding.cross_shard_transactions: two_phase; declare it WITH HOLD in autocommit; pin the key to one shard; or read without a cursor (Django: DISABLE_SERVER_SIDE_CURSORS)',
      )
    }
    if (isWrite(plan)) {
      const broadcastable =
        (plan.kind === 'update' || plan.kind === 'delete') &&
        tables.writtenSharded.size > 0 &&
        tables.sharded.every((u) => tables.writtenSharded.has(u.table)) &&
        [...tables.writtenSharded].every((t) => t.broadcastWrites)
      if (broadcastable) {
        return { kind: 'broadcast', role: 'primary', tag: 'sum', reason: `${verb} on ${sharded} ${where}: broadcast_writes, every shard` }
      }
      if (unpinned.length > 0 && this.locatable(plan, tables)) {
        return { kind: 'locate', probe: plan.locate!, reason: `${verb} on ${sharded} ${where}: the shards that hold its rows are found first` }
      }
      // An UPDATE or DELETE of one sharded table whose key conditions (IN, OR) name rows on several shards, and
      // that reads no other sharded table: each shard runs it on its own rows.
      const lone = tables.sharded.length === 1 && tables.writtenSharded.has(tables.sharded[0].table)
      if ((plan.kind === 'update' || plan.kind === 'delete') && unpinned.length === 0 && lone) {
        const shards = [...needed].sort((a, b) => a - b)
        return { kind: 'broadcast', role: 'primary', tag: 'sum', shards, reason: `${verb} on ${sharded} ${where}: the statement on each of them, all or nothing` }
      }
      // One whose other sharded tables it reads only in subqueries tied to its rows on co-located keys: each shard
      // writes its own rows reading only its own rows of them (a counter recomputed for every customer).
      const tied = plan.kind === 'update' || plan.kind === 'delete' ? this.tiedOnKeys(plan, tables, searchPath) : undefined
      if (tied !== undefined) {
        const bySingleRows = this.addressedByUnique(plan, tied, searchPath)
        if (bySingleRows !== null) {
          throw new Refusal(FEATURE_NOT_SUPPORTED, `${verb} on ${sharded} ${where}: a write on several shards is refused${bySingleRows}`, `pin the key (WHERE ${tied.table.key} = \u2026)`)
        }
        const own = sets[tables.sharded.indexOf(tied)]!
        const shards = own === 'all' ? {} : { shards: [...own].sort((a, b) => a - b) }
        return { kind: 'broadcast', role: 'primary', tag: 'sum', ...shards, reason: `${verb} on ${sharded} ${where}: each shard writes its own rows, reading the rows tied to them on co-located keys; all or nothing` }
      }
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${verb} on ${sharded} ${where}: a write must stay on one shard`,
        unpinned.length > 0
          ? `pin the key (WHERE ${unpinned[0].table.key} = \u2026), use /* pgshard: shard=NAME */, or set broadcast_writes for the table`
          : 'pin the key to one shard, or send one statement per shard',
      )
    }
    if (plan.kind === 'copy_to' && plan.unmergeable === undefined) {
      // Each shard runs the client's own query: a subquery's LIMIT would pick that shard's first rows. (A count,
      // a function call, is refused before: COPY (query) runs only queries that filter and pick columns.)
      if (plan.scatter && this.scatterCheck.check(plan.scatter, searchPath).limited?.some((l) => l.spread)) {
        throw new Refusal(FEATURE_NOT_SUPPORTED, `${verb} on ${sharded} ${where}, with a subquery whose LIMIT or OFFSET picks rows: each shard would pick its own first rows`, 'run the query as a SELECT, or pin the key to one shard')
      }
      return { kind: 'copy_out', role: this.role(plan, ctx), reason: `${verb} on ${sharded} ${where}: every shard's rows, one shard after another` }
    }
    // A locking read that could not run on every shard (with LIMIT, or in a transaction that writes one shard,
    // which its locks would make a writer): where its rows are, if on one shard.
    if (plan.kind === 'select' && plan.writes && unpinned.length > 0 && this.locatable(plan, tables) && (!plan.scatter || (ctx.inTransaction && !ctx.txReadOnly && !this.spans(ctx)))) {
      return { kind: 'locate', probe: plan.locate!, reason: `${verb} on ${sharded} ${where}: the shard that holds the rows it locks is found first` }
    }
    if (plan.explainsWrite) {
      const shards = unpinned.length === 0 ? { shards: [...needed].sort((a, b) => a - b) } : {}
      return { kind: 'broadcast', role: 'primary', tag: 'first', ...shards, explain: true, reason: `${verb} of a write on ${sharded}, which ${where}: each shard it may write explains it` }
    }
    if (!plan.scatter) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${verb} on ${sharded} ${where} and cannot be merged across shards: ${plan.unmergeable ?? 'this statement cannot be scattered'}`,
        'pin the key to one shard, or use /* pgshard: shard=NAME */',
      )
    }
    const scatter = this.scatterCheck.check(plan.scatter, searchPath)
    return this.scatter(plan, ctx, scatter, `${verb} on ${sharded} ${where}: scatter to ${this.map.shards.length} shards`)
  }

  // ---- refusals ---------------------------------------------------------------------------------------

  /**
   * INSERT … OVERRIDING USER VALUE into a sharded or reference table: each shard would put its own sequence's
   * values in the identity columns, in place of the ones given, so a key among them is not the one the row was
   * routed by, and a reference row gets a different id on each shard.
   */
  private refuseOverridingUser(plan: StatementPlan, tables: Placement): void {
    const target = plan.writtenTables[0]
    if (target === undefined || (tables.writtenSharded.size === 0 && tables.writtenReference.length === 0)) return
    throw new Refusal(
      FEATURE_NOT_SUPPORTED,
      `INSERT … OVERRIDING USER VALUE into ${tableLabel(target)}: each shard would number its identity columns itself, in place of the values given`,
      'leave the identity columns out of the column list: pgshard draws a key or made column from one sequence (sharding.key_sequence, sharding.made_columns)',
    )
  }

  /**
   * A call of a user function whose body names a sharded table, from a statement that names none (so it runs on
   * one shard): the function would read only that shard's rows. Refused rather than answered with a part.
   */
  private refuseCallsReadingShards(plan: StatementPlan): void {
    if (plan.kind === 'ddl' || (plan.functions.length === 0 && plan.doBody === undefined)) return
    const bodies = plan.functions.map((fn) => ({ what: `${fn}()`, body: this.volatility.body(fn) }))
    if (plan.doBody !== undefined) bodies.push({ what: 'the DO block', body: plan.doBody })
    for (const { what, body } of bodies) {
      const table = body === undefined ? undefined : this.map.shardedTables.find((t) => namesTable(body, t))
      if (table === undefined) continue
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${what} reads sharded table ${table.name} (its body names it), and the statement names no sharded table: on one shard it would read only that shard's rows`,
        `pin the shard that holds the rows it reads: /* pgshard: shard=NAME */, or read ${table.name} in the statement itself with its key`,
      )
    }
  }

  /**
   * A view over sharded tables that the statement does not read as its query (a write through it, a materialized
   * view): on one shard it would see only that shard's rows. Refused rather than a part.
   */
  private refuseViewsOverShards(plan: StatementPlan, searchPath: string[]): void {
    if (plan.kind === 'ddl') return
    for (const ref of plan.tables) {
      const table = this.map.shardsUnderView(ref, searchPath)
      if (table === undefined) continue
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `view ${tableLabel(ref)} reads sharded table ${table.name}, and the statement names no sharded table: on one shard it would read only that shard's rows`,
        plan.writes
          ? `write ${table.name} itself: pgshard reads views over sharded tables in FROM, but does not write through them`
          : `read it in FROM (pgshard reads a plain view there as its query), query ${table.name} itself, or read it shard by shard with /* pgshard: shard=NAME */`,
      )
    }
  }

  /**
   * Null when a write without its key found on several shards may run on each of them: it addresses no rows by a
   * column each shard keeps unique on its own (but one pgshard draws, unique across shards). Else why not, to end
   * the refusal's sentence ('' for a locking read).
   */
  private addressedByUnique(plan: StatementPlan, use: ShardedUse, searchPath: string[]): string | null {
    if (plan.kind === 'select') return ''
    const unique = this.columns.uniqueColumns(use.ref)
    if (unique === undefined) return ` while pgshard has not read ${tableLabel(use.ref)} in the shards' catalogs since it, or an index on it, was made (a read follows within seconds; RELOAD reads at once), to tell which of its columns name single rows`
    if (unique.expressions) return ` when a unique index of ${tableLabel(use.ref)} is over an expression or part of its rows (each shard keeps those single on its own, and pgshard cannot tell whether the write names one)`
    const drawn = new Set(this.map.drawnColumns(use.ref, searchPath).map((d) => d.column))
    const column = plan.pins.find((p) => sameReference(p.table, use.ref) && p.column !== use.table.key && unique.columns.has(p.column) && !drawn.has(p.column))?.column
    return column === undefined ? null : ` when it names rows by ${column}, which each shard keeps unique on its own (a unique index, or a sequence's values): the same value may be another row on each shard`
  }

  /**
   * An UPDATE or DELETE that reads its other sharded tables only in subqueries tied to its target on co-located keys
   * (or a parent's foreign key), each table named once: the target's use; undefined for any other.
   */
  private tiedOnKeys(plan: StatementPlan, tables: Placement, searchPath: string[]): ShardedUse | undefined {
    const ties = plan.writeTies
    const written = tables.sharded.filter((u) => tables.writtenSharded.has(u.table))
    if (ties === undefined || written.length !== 1) return undefined
    const once = (ref: TableRef) => ties.named.filter((r) => sameReference(r, ref)).length === 1
    const tiedRefs = ties.correlated.flatMap((c) => {
      const tie = this.scatterCheck.colocatedTie(c, ties, searchPath)
      return tie === undefined ? [] : [c.tables[tie.table]!]
    })
    const covered = (u: ShardedUse) => u === written[0] || (once(u.ref) && tiedRefs.some((r) => sameReference(r, u.ref)))
    return once(written[0]!.ref) && tables.sharded.every(covered) ? written[0] : undefined
  }

  /**
   * An UPDATE or DELETE of one sharded table, or a locking read of one, that reads no other: its rows can be
   * found by its `locate` query.
   */
  private locatable(plan: StatementPlan, tables: Placement): boolean {
    const table = tables.sharded.length === 1 ? tables.sharded[0]!.table : undefined
    return plan.locate !== undefined && table !== undefined && (plan.kind === 'select' || tables.writtenSharded.has(table)) && tables.unsharded.length === 0
  }

  // ---- key assignments --------------------------------------------------------------------------------

  /** Refuses giving a row a sharding key that the shard the statement runs on does not own. */
  private checkAssignments(
    plan: StatementPlan,
    route: Route,
    param: (n: number) => BoundParam | undefined,
    searchPath: string[],
  ): void {
    // A write whose rows are found first is checked once it is routed to the shards that hold them.
    if (route.kind === 'error' || route.kind === 'locate' || route.kind === 'evaluate' || plan.assignments === undefined) return
    for (const a of plan.assignments) {
      const table = this.map.shardedTable(a.table, searchPath)
      if (table === undefined || a.column !== table.key || a.value === 'unchanged') continue
      const what = `${statementVerb(plan)} sets sharding key ${tableLabel(a.table)}.${table.key}`
      const hint = 'a row cannot move between shards: DELETE it and INSERT it again with the new key'
      if (a.value === null) {
        throw new Refusal(FEATURE_NOT_SUPPORTED, `${what} to an expression: the row would move to a shard that does not own it`, hint)
      }
      const owner = this.valueShard(table, a.value, param, true)!
      if (route.kind !== 'shard') {
        throw new Refusal(FEATURE_NOT_SUPPORTED, `${what} on several shards: the rows would move to shards that do not own them`, hint)
      }
      if (owner !== route.shard) {
        throw new Refusal(
          FEATURE_NOT_SUPPORTED,
          `${what} to a value owned by shard ${this.map.shardName(owner)}, but the statement runs on shard ${this.map.shardName(route.shard)}: the row would move to a shard that does not own it`,
          hint,
        )
      }
    }
  }

  /**
   * Refuses ON CONFLICT (…) on a sharded table without its sharding key: each shard checks its own rows only,
   * so a conflicting row on another shard would not be found and the INSERT would store a second one.
   */
  private checkConflictTargets(plan: StatementPlan, searchPath: string[]): void {
    for (const target of plan.conflictTargets ?? []) {
      const table = this.map.shardedTable(target.table, searchPath)
      if (table === undefined || target.columns.includes(table.key)) continue
      const named = target.columns.length > 0 ? `(${target.columns.join(', ')})` : 'on an expression'
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `ON CONFLICT ${named} on sharded table ${tableLabel(target.table)} leaves out its sharding key ${table.key}: each shard checks only its own rows, so a conflicting row on another shard would not be found and a second one would be stored`,
        `make the unique index and the conflict target include ${table.key}, or look the row up by its key first; if uniqueness per shard is what you want, name the shard with /* pgshard: shard=… */`,
      )
    }
  }

  // ---- pins -------------------------------------------------------------------------------------------

  /**
   * A subquery tied on co-located keys reads only rows with the outer row's key: when that key is pinned, so is
   * the subquery's table (`WHERE i.id = 5 AND EXISTS (… t.item_id = i.id)` runs on one shard). Only where each
   * of the two names one occurrence of its table, so that no other subquery's rows are taken for its.
   */
  private pinThroughTies(plan: StatementPlan, tables: Placement, sets: ShardSet[], searchPath: string[]): void {
    const sources = plan.scatter?.sources ?? plan.writeTies
    if (sources === undefined || (sources.correlated.length === 0 && (plan.scatter?.sources.equalities.length ?? 0) === 0)) return
    // Every place the statement names a table (its uses are listed once per name).
    const named: TableRef[] = plan.writeTies?.named ?? [...plan.scatter!.sources.nested]
    const level = (l: DerivedSources | ScatterSources): void => {
      named.push(...l.relations, ...l.correlated.flatMap((c) => c.tables))
      for (const d of l.derived) level(d)
    }
    if (plan.scatter) level(plan.scatter.sources)
    const only = (ref: TableRef): number => (named.filter((r) => sameReference(r, ref)).length === 1 ? tables.sharded.findIndex((u) => sameReference(u.ref, ref)) : -1)
    for (const c of sources.correlated) {
      const tie = this.scatterCheck.colocatedTie(c, sources, searchPath)
      if (tie === undefined) continue
      const [o, i] = [only(sources.relations[tie.outer]!), only(c.tables[tie.table]!)]
      if (o >= 0 && i >= 0 && sets[o] !== 'all' && sets[i] === 'all') sets[i] = sets[o]!
    }
    // So does a join on a foreign key declared as a parent: `o.customer_id = 4` pins the line items joined to o.
    for (const [a, b] of plan.scatter?.sources.equalities ?? []) {
      if (!('relation' in a) || !('relation' in b)) continue
      const [ra, rb] = [plan.scatter!.sources.relations[a.relation]!, plan.scatter!.sources.relations[b.relation]!]
      const [i, j] = [only(ra), only(rb)]
      if (i < 0 || j < 0 || !this.map.colocatedBy(tables.sharded[i]!.table, a.column, tables.sharded[j]!.table, b.column)) continue
      if (sets[i] !== 'all' && sets[j] === 'all') sets[j] = sets[i]!
      else if (sets[j] !== 'all' && sets[i] === 'all') sets[i] = sets[j]!
    }
  }

  /** Shards the rows of one occurrence of a sharded table may be on, from the pins on its key. */
  private useShards(
    use: ShardedUse,
    plan: StatementPlan,
    param: (n: number) => BoundParam | undefined,
    tables: Placement,
    searchPath: string[],
  ): ShardSet {
    const occurrences = tables.sharded.filter((u) => u.table === use.table).length
    const pins = plan.pins.filter(
      (pin) =>
        pin.column === use.table.key &&
        this.map.shardedTable(pin.table, searchPath) === use.table &&
        (occurrences === 1 || sameReference(pin.table, use.ref)),
    )
    let result: Set<number> | undefined
    for (const pin of pins) {
      const shards = new Set<number>()
      let readable = true
      for (const v of pin.values) {
        const found = 'array' in v && v.array ? this.arrayShards(use.table, v, param) : [this.valueShard(use.table, v, param, false)]
        if (found === null) readable = false
        else for (const shard of found) if (shard !== undefined) shards.add(shard)
      }
      // An array pgshard cannot read narrows nothing (other pins on the key still may).
      if (readable) result = result === undefined ? shards : new Set([...result].filter((s) => shards.has(s)))
    }
    return result ?? 'all'
  }

  /** The shards of each element of an array compared with the key (`k = ANY($1)`); null if it cannot be read. */
  private arrayShards(table: ShardedTable, v: ValueRef, param: (n: number) => BoundParam | undefined): number[] | null {
    let bound: BoundParam | undefined
    if ('literal' in v) bound = { value: v.literal, format: 0, typeOid: 0 }
    else if ('param' in v) bound = param(v.param)
    if (bound === undefined) return null
    const elements = arrayElements(bound)
    if (elements === null) return null
    return elements.filter((e) => e.value !== null).map((e) => this.map.shardForKey(table, e))
  }

  /** Each INSERT row's shard; a key given by an expression is refused, or undefined when `expressions` allows it. */
  private rowShards(
    plan: StatementPlan,
    table: ShardedTable,
    keyIndex: number,
    param: (n: number) => BoundParam | undefined,
    expressions: boolean,
  ): (number | undefined)[] {
    return plan.insert!.rows.map((row, i) => {
      const v = row.values[keyIndex]
      if (v === undefined) throw new Refusal('42601', `INSERT row ${i + 1} has fewer values than columns`)
      if (v !== null) return this.valueShard(table, v, param, true)!
      if (expressions) return undefined
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `INSERT into sharded table ${table.name}: row ${i + 1} gives its key column ${table.key} by an expression (or DEFAULT), so pgshard cannot tell which shard owns it`,
        `give ${table.key} as a constant or a parameter, or use /* pgshard: shard=NAME */`,
      )
    })
  }

  /** The shard of one compared value; undefined for a NULL in WHERE (it matches no row). */
  private valueShard(
    table: ShardedTable,
    v: ValueRef,
    param: (n: number) => BoundParam | undefined,
    inValues: boolean,
  ): number | undefined {
    let bound: BoundParam
    if ('null' in v) bound = { value: null, format: 0, typeOid: 0 }
    else if ('literal' in v) bound = { value: v.literal, format: 0, typeOid: 0 }
    else {
      const p = param(v.param)
      if (p === undefined) throw new Refusal(PROTOCOL_VIOLATION, `no value is bound to parameter $${v.param}`)
      bound = p
    }
    if (bound.value === null && !inValues) return undefined
    if ('param' in v && v.negate) return this.negatedShard(table, bound)
    return this.map.shardForKey(table, bound)
  }

  private negatedShard(table: ShardedTable, bound: BoundParam): number {
    if (table.keyType !== 'bigint' && table.keyType !== 'integer') {
      throw new KeyEncodingError(`operator does not exist: - ${table.keyType} (sharding key ${table.key})`, '42883')
    }
    if (bound.value === null) return this.map.shardForKey(table, bound)
    const negated = -BigInt(canonicalKey(table.keyType, bound.value, bound.format === 1 ? 1 : 0, bound.typeOid))
    if (negated > INT64_MAX) throw new KeyEncodingError(`value "${negated}" is out of range for type bigint`, '22003')
    return this.map.ring.shardFor(negated.toString())
  }

  // ---- shared -----------------------------------------------------------------------------------------

  private place(plan: StatementPlan, searchPath: string[]): Placement {
    const placement: Placement = { sharded: [], reference: [], unsharded: [], views: [], writtenSharded: new Set(), writtenReference: [] }
    for (const ref of plan.tables) {
      const table = this.map.shardedTable(ref, searchPath)
      if (table) placement.sharded.push({ ref, table })
      else if (this.map.isReferenceTable(ref, searchPath)) placement.reference.push(tableLabel(ref))
      else if (this.viewOnEveryShard(plan, ref, searchPath)) placement.views.push(tableLabel(ref))
      else placement.unsharded.push(tableLabel(ref))
    }
    for (const ref of plan.writtenTables) {
      const table = this.map.shardedTable(ref, searchPath)
      if (table) {
        placement.writtenSharded.add(table)
        if (!placement.sharded.some((u) => u.table === table)) placement.sharded.push({ ref, table })
      } else if (this.map.isReferenceTable(ref, searchPath)) placement.writtenReference.push(tableLabel(ref))
      else if (this.viewOnEveryShard(plan, ref, searchPath)) placement.views.push(tableLabel(ref))
      else if (!placement.unsharded.includes(tableLabel(ref))) placement.unsharded.push(tableLabel(ref))
    }
    placement.views = [...new Set(placement.views)]
    placement.reference = [...new Set(placement.reference)]
    placement.unsharded = [...new Set(placement.unsharded)]
    placement.writtenReference = [...new Set(placement.writtenReference)]
    return placement
  }

  /**
   * In DDL, a view over sharded tables: one pgshard knows, or the one a CREATE VIEW makes (not materialized: a
   * materialized view would keep each shard's rows as they were).
   */
  private viewOnEveryShard(plan: StatementPlan, ref: TableRef, searchPath: string[]): boolean {
    if (plan.kind !== 'ddl') return false
    const made = plan.definesView
    if (made !== undefined && made.view.name === ref.name && made.view.schema === ref.schema) {
      return !made.materialized && this.map.shardedTableIn(made.body.toLowerCase()) !== undefined
    }
    return this.map.shardsUnderView(ref, searchPath) !== undefined
  }

  /**
   * A view read as its query was found by name alone, before the client's search_path was known: it must be one
   * that search_path shows.
   */
  private checkViewsRead(plan: StatementPlan, searchPath: string[]): void {
    for (const { view, ref } of plan.viewsRead ?? []) {
      if (ref.schema !== undefined || searchPath.includes(view.schema)) continue
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `view ${view.name} is read as the query of ${view.schema}.${view.name}, which the search_path (${searchPath.join(', ')}) does not show`,
        `qualify the view's name (${view.schema}.${view.name}, or the schema you mean)`,
      )
    }
  }

  private requireDefault(shard: number, tables: Placement, what: string): void {
    if (tables.unsharded.length > 0 && shard !== this.map.defaultShard) {
      throw new Refusal(
        FEATURE_NOT_SUPPORTED,
        `${what}, but unsharded table ${list(tables.unsharded)} exists only on shard ${this.defaultName()}`,
      )
    }
  }

  private defaultName(): string {
    return this.map.shardName(this.map.defaultShard)
  }

  /**
   * A read of system catalogs only (pg_catalog, information_schema, an unqualified pg_ name), calling no
   * volatile function: what drivers and ORMs read to learn a table's columns.
   */
  private readsCatalogOnly(plan: StatementPlan): boolean {
    if (plan.kind !== 'select' || plan.writes || plan.multiStatement || plan.tables.length === 0) return false
    const catalog = (t: TableRef) => t.schema === 'pg_catalog' || t.schema === 'information_schema' || (t.schema === undefined && t.name.startsWith('pg_'))
    return plan.tables.every(catalog) && this.volatility.firstVolatile(plan.functions) === undefined
  }

  private single(plan: StatementPlan, ctx: RoutingContext, shard: number, reason: string): Route {
    const route: Route = { kind: 'shard', shard, role: this.role(plan, ctx), reason }
    return ctx.inTransaction && !ctx.txReadOnly && this.mayWrite(plan) ? { ...route, write: true } : route
  }

  private scatter(plan: StatementPlan, ctx: RoutingContext, scatter: ScatterPlan, reason: string): Route {
    return { kind: 'scatter', plan: scatter, role: this.role(plan, ctx), reason }
  }

  private role(plan: StatementPlan, ctx: RoutingContext): Role {
    if (plan.writes || plan.writtenTables.length > 0 || WRITE_KINDS.has(plan.kind)) return 'primary'
    if ((ctx.inTransaction && !ctx.txReadOnly) || ctx.serializable === true) return 'primary'
    const hint = this.roleHint(plan, ctx)
    if (hint !== undefined) return hint
    if (this.readFrom === 'primary') return 'primary'
    return this.volatility.firstVolatile(plan.functions) === undefined ? 'replica' : 'primary'
  }

  /** checkTransaction's verdict, told of the transaction pgshard opened for the statements of one query. */
  private inTransaction(plan: StatementPlan, route: Route, ctx: RoutingContext): Route {
    const checked = this.checkTransaction(plan, route, ctx)
    if (checked === route || checked.kind !== 'error' || ctx.ofOneQuery !== true) return checked
    return {
      ...checked,
      message: `the statements of one query run as one transaction, as on one server, and ${checked.message}`,
      hint: 'send them as separate queries (each then commits on its own), or set sharding.cross_shard_transactions: two_phase (docs/routing.md)',
    }
  }

  private checkTransaction(plan: StatementPlan, route: Route, ctx: RoutingContext): Route {
    // The INSERT with its drawn keys, and the write whose rows are found first, are checked when routed.
    if (route.kind === 'error' || route.kind === 'keys' || route.kind === 'locate' || route.kind === 'evaluate') return route
    const pinned = ctx.txShard
    if (ctx.pinnedBy !== undefined && pinned !== undefined && (route.kind !== 'shard' || route.shard !== pinned)) return pinnedSessionRefusal(route, this.map.shardName(pinned), ctx.pinnedBy, (s) => this.map.shardName(s))
    if (route.kind === 'shard') {
      // A READ ONLY or two-phase transaction may go on to another shard, which joins it (docs/routing.md); another
      // read-write one reads any shard and writes one.
      const writer = ctx.txWriter
      if (this.readsSpan(ctx) && !this.spans(ctx) && route.write === true && writer !== undefined && writer !== route.shard) {
        return {
          kind: 'error',
          code: FEATURE_NOT_SUPPORTED,
          message: `transaction writes shard ${this.map.shardName(writer)}; this statement may write shard ${this.map.shardName(route.shard)} (${route.reason}); cross-shard transactions are not supported: a transaction reads any shard but writes one`,
          hint: 'commit the transaction first, keep its writes to one shard\u2019s keys, or set sharding.cross_shard_transactions: two_phase (docs/routing.md)',
        }
      }
      if (pinned === undefined || route.shard === pinned || this.spans(ctx) || this.readsSpan(ctx)) return route
      return {
        kind: 'error',
        code: FEATURE_NOT_SUPPORTED,
        message: `transaction is pinned to shard ${this.map.shardName(pinned)} by its first statement${startedByNote(ctx.txStartedBy)}; this statement needs shard ${this.map.shardName(route.shard)} (${route.reason}); cross-shard transactions are not supported`,
        hint: 'commit the transaction first, keep a transaction to one shard\u2019s keys, or set sharding.cross_shard_transactions: two_phase (docs/routing.md)',
      }
    }
    if (pinned === undefined && !ctx.inTransaction) return route
    // A READ ONLY transaction may read every shard, and lock their tables (docs/routing.md); a write the
    // server refuses there.
    if ((route.kind === 'scatter' || route.kind === 'copy_out' || route.kind === 'broadcast') && ctx.txReadOnly) return route
    // And a read-write one may read every shard (its writes stay on one).
    if ((route.kind === 'scatter' || route.kind === 'copy_out') && this.readsSpan(ctx) && !this.mayWrite(plan)) return route
    // A two-phase transaction may also write several shards (docs/routing.md).
    if (this.twoPhase && ctx.inTransaction) return route
    const writer = ctx.txWriter
    const first =
      this.readsSpan(ctx)
        ? writer === undefined
          ? 'a read-write transaction writes at most one shard (cross_shard_transactions: reject);'
          : `transaction writes shard ${this.map.shardName(writer)};`
        : pinned === undefined
          ? 'inside a transaction block'
          : `transaction is pinned to shard ${this.map.shardName(pinned)} by its first statement${startedByNote(ctx.txStartedBy)};`
    return {
      kind: 'error',
      code: FEATURE_NOT_SUPPORTED,
      message: `${first} this statement needs every shard (${route.reason}); cross-shard transactions are not supported`,
      hint: 'run it outside the transaction block or in a READ ONLY transaction, or set sharding.cross_shard_transactions: two_phase (docs/routing.md)',
    }
  }
}

/**
 * A statement for another shard than the one whose server connection a pinned session keeps (transaction
 * pooling): the pin, not a transaction, is why it cannot go there.
 */
function pinnedSessionRefusal(route: Exclude<Route, { kind: 'error' }>, pinnedName: string, pinnedBy: string, shardName: (s: number) => string): Route {
  const needs = route.kind === 'shard' ? `shard ${shardName(route.shard)}` : 'every shard'
  return {
    kind: 'error',
    code: FEATURE_NOT_SUPPORTED,
    message: `this session is pinned to shard ${pinnedName} by ${pinnedBy}; this statement needs ${needs} (${route.reason})`,
    hint: pinnedSessionHint(pinnedBy),
  }
}

function isWrite(plan: StatementPlan): boolean {
  if (plan.writtenTables.length > 0) return true
  // SELECT … FOR UPDATE locks rows but writes none: it may still be scattered.
  return plan.kind !== 'select' && (plan.writes || WRITE_KINDS.has(plan.kind))
}

function routeReason(route: Route): string {
  return 'reason' in route ? route.reason : route.message
}

function statementVerb(plan: StatementPlan): string {
  const tag = plan.commandTag.split(' ')[0]
  return tag === '' ? plan.kind.toUpperCase() : tag
}

function sameReference(a: TableRef, b: TableRef): boolean {
  return a.name === b.name && a.schema === b.schema && a.alias === b.alias
}

function list(names: string[]): string {
  return names.join(', ')
}

/** One INSERT per shard, each with that shard's rows of the VALUES list. */
function splitInsert(insert: NonNullable<StatementPlan['insert']>, rowShards: number[]): { shard: number; sql: string; rows: number }[] {
  const rowsByShard = new Map<number, number[]>()
  rowShards.forEach((shard, i) => rowsByShard.set(shard, [...(rowsByShard.get(shard) ?? []), i]))
  return [...rowsByShard.entries()]
    .sort(([a], [b]) => a - b)
    .map(([shard, rows]) => ({ shard, sql: buildInsertText(insert, rows), rows: rows.length }))
}
