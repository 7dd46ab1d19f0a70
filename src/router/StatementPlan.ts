// What the analyzer learns from one statement text. Plain data, independent of the shard map, so it is
// cached by (normalized) text and survives a reload of the map. The Router turns a plan plus the bound
// values and the session's hints into a Route.
import type { UniqueConstraint } from './ast/UniqueConstraints.js'
import type { DetachedForm } from './ast/DetachedSubqueries.js'
import type { NullExtendedGroups } from './ast/NullExtendedGroups.js'

/**
 * A value the statement compares a column with: a parameter ($n of the analyzed text) or a constant; `array`
 * when the column is compared with each element of it (`k = ANY($1)`, `k = ANY('{1,2}')`).
 */
export type ValueRef =
  | { param: number; negate?: boolean; cast?: string; array?: true }
  | { literal: string; cast?: string; array?: true }
  | { null: true }

export interface TableRef {
  schema?: string
  name: string
  /** Alias used in the statement, when any. */
  alias?: string
}

/** Rows this statement reads or writes in `table` have `column` in `values` (an equality / IN pin). */
export interface ColumnPin {
  table: TableRef
  column: string
  values: ValueRef[]
}

export type TxKind =
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'release'
  | 'rollback_to'
  | 'prepare_transaction'
  | 'commit_prepared'
  | 'rollback_prepared'

/** What a statement does to session state that transaction pooling must track, replay or pin. */
export type SessionEffect =
  | { kind: 'set'; name: string; local: boolean; text: string }
  | { kind: 'reset'; name: string }
  | { kind: 'reset_all' }
  | { kind: 'discard_all' }
  | { kind: 'set_transaction' }
  | { kind: 'prepare'; name: string; text: string; nameLocation: number }
  /** `args`: EXECUTE's arguments, the values of the prepared query's $1, $2 … (null for an expression). */
  | { kind: 'execute'; name: string; nameLocation: number; args: (ValueRef | null)[] }
  | { kind: 'deallocate'; name: string | null; nameLocation: number }
  | { kind: 'listen'; channel: string }
  | { kind: 'unlisten'; channel: string | null }
  | { kind: 'advisory_lock_session' }
  /** pg_advisory_unlock_all(): every session advisory lock released. */
  | { kind: 'advisory_unlock_all' }
  | { kind: 'temp_table' }
  | { kind: 'hold_cursor' }
  | { kind: 'unknown_set_config' }

/** A pgshard routing hint: a comment or SET pgshard.*. */
export type Hint =
  | { kind: 'shard'; value: string }
  | { kind: 'key'; value: string }
  | { kind: 'role'; value: 'primary' | 'replica' }

export type StatementKind =
  | 'select'
  | 'insert'
  | 'update'
  | 'delete'
  | 'merge'
  | 'copy_from'
  | 'copy_to'
  | 'ddl'
  | 'transaction'
  | 'set'
  | 'show'
  | 'utility'
  | 'empty'

export interface OrderKey {
  /** 0-based index into the output columns of the shard query. */
  column: number
  descending: boolean
  nullsFirst: boolean
  /** The collation its COLLATE clause names (`ORDER BY name COLLATE "C"`): text orders by it, not the column's. */
  collation?: string
}

export type AggregateKind = 'count' | 'sum' | 'min' | 'max' | 'avg' | 'bool_and' | 'bool_or' | 'array_agg' | 'string_agg' | 'var_samp' | 'var_pop' | 'stddev_samp' | 'stddev_pop' | RegressionKind | 'bit_and' | 'bit_or' | 'bit_xor' | OrderedSetKind

/** percentile_cont, percentile_disc and mode (… WITHIN GROUP (ORDER BY x)): folded from OrderedSetParts. */
export type OrderedSetKind = 'percentile_cont' | 'percentile_disc' | 'mode'

/**
 * The hidden columns an ordered-set aggregate is folded from: the shards group by its ORDER BY value as well, and
 * answer, per value, how many rows have it (the aggregate's FILTER applied) and the fraction asked for.
 */
export interface OrderedSetParts {
  /** The value x (set once the shards' text groups by it: byDistinctValues). */
  value?: number
  /** count(x) of the value's rows. */
  count: number
  /** The fraction as float8 (percentile_cont, percentile_disc), or the fractions as float8[] (`fractions`). */
  fraction?: number
  /** `percentile_…(ARRAY[…])`: an array of fractions, answered with an array. */
  fractions?: true
  descending: boolean
  /** What a COLLATE clause on x names. */
  collation?: string
}

/** The statistics of two variables (corr, covar_*, regr_*): folded from each shard's RegressionParts. */
export type RegressionKind = 'corr' | 'covar_pop' | 'covar_samp' | 'regr_avgx' | 'regr_avgy' | 'regr_count' | 'regr_intercept' | 'regr_r2' | 'regr_slope' | 'regr_sxx' | 'regr_sxy' | 'regr_syy'

/** How array_agg(x ORDER BY x) (or string_agg's) orders its elements; `distinct`: keeps one of equal ones. */
export interface ElementOrder {
  descending: boolean
  nullsFirst: boolean
  distinct?: true
}

export type OutputColumn =
  | { kind: 'value' }
  /**
   * An aggregate; for avg, sumColumn/countColumn name the hidden shard columns it is computed from; for
   * count, sum or avg of DISTINCT x folded by the proxy, distinctColumn names the hidden column of x (a shard row
   * per value); for COALESCE(agg(x), c), presentColumn names the hidden flag of whether a shard's agg(x) had a value;
   * array_agg(x ORDER BY x) has the order of its elements; string_agg(x, d), which the shards run as array_agg(x),
   * its delimiter d; a variance or standard deviation, the hidden columns of each shard's part (DeviationParts);
   * corr, covar_* and regr_* theirs (RegressionParts).
   */
  | { kind: 'aggregate'; fn: AggregateKind; sumColumn?: number; countColumn?: number; deviation?: DeviationParts; regression?: RegressionParts; distinctColumn?: number; presentColumn?: number; order?: ElementOrder; delimiter?: ValueRef; orderedSet?: OrderedSetParts }
  /**
   * `*` or `t.*`: as many value columns as the shards describe. Column numbers in the plan count a star as one
   * column; the merger resolves them against the shards' RowDescription.
   */
  | { kind: 'star' }

/**
 * The hidden columns corr(y, x), covar_*(y, x) and regr_*(y, x) are folded from: each shard's regr_count,
 * regr_avgx, regr_avgy, regr_sxx, regr_syy and regr_sxy of the same arguments (float8: Postgres computes them so),
 * combined as its parallel aggregation combines its workers' states.
 */
export interface RegressionParts {
  count: number
  avgx: number
  avgy: number
  sxx: number
  syy: number
  sxy: number
}

/**
 * The hidden columns a variance or standard deviation is folded from: each shard's count of the values, their sum
 * and sum of squares as numeric (exact, for numeric and integer values), and their mean and population variance in
 * the values' own type (for float values, combined as Postgres's parallel aggregation combines them).
 */
export interface DeviationParts {
  count: number
  sum: number
  squares: number
  mean: number
  variance: number
}

/** A ranking window function the proxy computes over merged groups: its output column, PARTITION BY and ORDER BY columns. */
export interface MergedWindow {
  column: number
  fn: 'row_number' | 'rank' | 'dense_rank'
  partition: number[]
  order: OrderKey[]
}

/** A HAVING condition, evaluated by the proxy on merged groups. */
export type MergeExpr =
  | { op: 'column'; column: number }
  | { op: 'const'; value: string | null }
  | { op: 'param'; param: number }
  | { op: 'compare'; cmp: '=' | '<>' | '<' | '<=' | '>' | '>='; left: MergeExpr; right: MergeExpr }
  | { op: 'and' | 'or'; args: MergeExpr[] }
  | { op: 'not'; arg: MergeExpr }
  | { op: 'is_null'; arg: MergeExpr; negated: boolean }

/** A column of one FROM relation of a scattered SELECT. */
export interface RelationColumn {
  /** Index into ScatterSources.relations. */
  relation: number
  column: string
}

/** A column of a FROM level: of one of its tables, or an output column of one of its subqueries in FROM. */
export type LevelColumn = RelationColumn | { /** Index into ScatterSources.derived. */ derived: number; column: string }

/** How the FROM items of a scattered SELECT are joined: a relation, a subquery, a set-returning function, or a join. */
export type JoinTree =
  | { relation: number }
  | { derived: number }
  | { function: string }
  | { join: 'inner' | 'left' | 'right' | 'full'; left: JoinTree; right: JoinTree }

/**
 * What a scattered SELECT reads, for the router to decide (with the shard map) whether each shard's part is
 * exactly its share of the answer: sharded tables joined on their keys, reference tables, nothing else.
 */
export interface ScatterSources {
  /** The tables of the FROM clause, in order of appearance. */
  relations: TableRef[]
  join: JoinTree
  /** Column equalities every output row satisfies where both relations are present (join ON/USING, WHERE). */
  equalities: [LevelColumn, LevelColumn][]
  /** Tables read by subqueries (in WHERE, the select list, …): each shard would see only its own rows of them. */
  nested: TableRef[]
  /**
   * Subqueries (in WHERE, the select list) tied to a relation of the FROM level by column equalities: exact on
   * each shard when a tie joins co-located sharding keys (CorrelatedSubqueries).
   */
  correlated: { tables: TableRef[]; ties: { outer: RelationColumn; table: number; innerColumn: string }[] }[]
  /** Functions called where the proxy merges (select list, HAVING, ORDER BY) other than the aggregates it merges. */
  calls: string[]
  /**
   * What each count, sum or avg of DISTINCT values takes: a column (the shards' results add up when it is a
   * sharding key), or null for an expression or a column whose table cannot be told (the proxy folds their values:
   * byDistinctValues).
   */
  distinctArgs: (RelationColumn | null)[]
  /**
   * When the statement's own level calls window functions: the columns each of them partitions by. Exact on each
   * shard when every list holds a sharding key (each partition's rows are then on one shard). A subquery in FROM
   * reports its windows in `groupKeys` instead.
   */
  windowKeys?: RelationColumn[][]
  /**
   * Of an aggregated level: the relations its aggregates take their arguments from, and those its filters and
   * groups name, when its aggregates ignore NULLs (NullExtendedGroups: what lets an outer join keep a reference
   * table's rows on every shard). Absent when not so.
   */
  nullExtendedGroups?: NullExtendedGroups
  /** Subqueries in FROM (a JoinTree `derived` leaf indexes them). */
  derived: DerivedSources[]
  /**
   * A set operation (UNION, INTERSECT, EXCEPT): `derived` are its SELECTs, each answered by every shard on its own
   * (not joined: nothing to co-locate).
   */
  union?: boolean
  /**
   * Of such a set operation: each output column by its name, and the name of the column each SELECT passes on in
   * its place (null: an expression). Empty behind a `*`.
   */
  unionColumns?: { name: string; branches: (string | null)[] }[]
  /**
   * Of such a set operation, the part that is exact on each shard only when a column holds the sharding key in
   * every SELECT, so that equal rows are on one shard (INTERSECT, EXCEPT, a UNION under UNION ALL …).
   */
  keyedBy?: string
  /**
   * A grouped statement planned as each shard computing its groups whole (the merge cannot regroup what it
   * computes: `unmergeable` says why): exact when each list of `keys` (its GROUP BY, its windows' PARTITION BY)
   * holds a sharding key, which the router decides; otherwise refused with that reason.
   */
  wholeGroups?: { keys: LevelColumn[][]; unmergeable: string }
  /**
   * GROUP BY names the plan takes as output aliases: right only when no table of `relations` has a column of
   * that name (Postgres would group by the column), which the router asks the catalog.
   */
  aliasGroups?: string[]
}

/**
 * A subquery in FROM of a scattered SELECT, described like a FROM level (its `nested` and `distinctArgs` stay
 * empty: the statement's cover them). Over sharded tables, each shard's rows of it must be that shard's share of
 * the whole: no construct that combines rows.
 */
export interface DerivedSources extends ScatterSources {
  /** The construct that combines rows (GROUP BY, an aggregate, DISTINCT, LIMIT, a window function), if any. */
  combines?: string
  /**
   * When only GROUP BY, DISTINCT or window functions combine its rows: the columns that group them, and those each
   * window function partitions by, a list each (the router looks for a key in every list).
   */
  groupKeys?: LevelColumn[][]
  /** Its alias, for messages. */
  alias: string
  /**
   * Its output columns that are columns of its FROM level as they are (`t.id`, `t.id AS uid`): through them a
   * sharding key reaches the level around it. Empty when an alias list renames its columns.
   */
  outputs: { name: string; column: LevelColumn }[]
  /** The relations whose every column it outputs under its own name (`*`, `t.*`). */
  stars: number[]
  /** Likewise its subqueries in FROM (`*`, `s.*`): their outputs pass on. */
  derivedStars: number[]
}

/** How to send a read to every shard and merge the answers into one result. */
export interface ScatterPlan {
  /** The text each shard runs (AVG split, LIMIT+OFFSET folded, HAVING removed, hidden columns appended). */
  shardSql: string
  /** EXPLAIN of this read: the text before its query (EXPLAIN and its options), which each shard runs on shardSql. */
  explain?: string
  /**
   * A locking read with LIMIT or OFFSET (`FOR UPDATE … LIMIT 1`, a job queue's SKIP LOCKED): each shard locks the
   * rows it returns, more than the merge keeps. In a transaction each shard locks inside a savepoint, rolled back
   * on the shards the merge kept no row of, so that their locks are released (LockingLimit).
   */
  lockingLimit?: true
  /** Output columns of shardSql, visible ones first. */
  columns: OutputColumn[]
  /** How many leading columns the client sees. */
  visibleColumns: number
  groupBy: number[] | null
  distinct: boolean
  /**
   * DISTINCT ON: how many leading ORDER BY keys are its expressions (Postgres requires them first). Each shard
   * keeps its first row of each key; the ordered merge keeps the first of those.
   */
  distinctOn?: number
  orderBy: OrderKey[]
  limit: ValueRef | null
  offset: ValueRef | null
  having: MergeExpr | null
  /**
   * row_number(), rank() and dense_rank() over the groups of an aggregated query: the shards compute them over
   * their own partial groups (which gives the column its type), and the proxy numbers the merged groups again,
   * after HAVING and before ORDER BY.
   */
  windows?: MergedWindow[]
  /**
   * Aggregates over all rows as windows in a query that does not aggregate (`count(*) OVER () AS total` beside a
   * page of rows): each shard's rows carry its own total, and the merge puts the total of the shards' totals in
   * every row (count and sum add up, min and max of them …).
   */
  totals?: { column: number; fn: AggregateKind }[]
  /**
   * `SELECT count(*) FROM (… LIMIT n OFFSET m) sub`: each shard counts at most n + m rows of its own, and the
   * answer is min(n + m, their sum) − m, at least 0 (n null: no LIMIT).
   */
  countCap?: { limit: ValueRef | null; offset: ValueRef | null }
  sources: ScatterSources
  /**
   * count, sum or avg of DISTINCT x of columns that are not sharding keys: the shards' text and columns when each
   * shard also groups by x and the proxy folds each value once (the router takes it when an x is not a key).
   */
  byDistinctValues?: { shardSql: string; columns: OutputColumn[] }
  /**
   * An existence test (ExistenceTest): whether one table holds a matching row, asked of every shard. Its outer
   * level reads no sharded table: 'value' merges the shards' EXISTS with bool_or, 'filter' keeps one shard's row.
   */
  existence?: 'value' | 'filter'
  /**
   * Subqueries in FROM whose rows their LIMIT or OFFSET picks (`FROM (SELECT … ORDER BY id LIMIT 5) s JOIN …`,
   * an ORM's eager load of the first rows): each shard's text holds a marker in place of that clause, replaced
   * before it runs (SharedSubqueries).
   */
  limited?: LimitedSubquery[]
  /**
   * `SELECT count(*) FROM (sub) s` alone, when sub combines rows by what is not a sharding key (Django's
   * `.values('x').distinct().count()`, its Paginator over a grouped queryset): sub runs as a read across shards of
   * its own (`plan`), merged, and pgshard answers the number of its rows in a column named `name`. The router
   * takes it only when the shards cannot count their own parts.
   */
  countRows?: { plan: ScatterPlan; name: string }
}

/**
 * A subquery in FROM that only its LIMIT and OFFSET make more than each shard's share of its rows. It runs first
 * across shards as a read of its own (`plan`), and each shard's `marker` becomes its share of the rows picked: the
 * OFFSET and LIMIT, in that shard's own order, that give the rows it holds among them.
 */
export interface LimitedSubquery {
  /** Its index among the level's subqueries in FROM (`sources.derived`). */
  derived: number
  /** A comment in `shardSql` where its LIMIT/OFFSET clause was. */
  marker: string
  /** That clause as written: put back when the subquery reads no sharded table (every shard has all its rows). */
  clause: string
  plan: ScatterPlan
  /** Whether its rows are spread over the shards (the router's finding; unset: not judged yet). */
  spread?: boolean
}

/** A multi-row INSERT whose rows may belong to several shards. */
export interface InsertRows {
  /** The statement text the byte ranges below point into (the analyzed text, literals normalized or not). */
  text: string
  table: TableRef
  columns: string[]
  /** Byte offset of the first column of the column list (null without one): where a generated key's column goes. */
  columnsAt: number | null
  /**
   * For each row: its values (null for an expression such as now() or DEFAULT, which routes nothing), and its
   * byte range in the text (to rebuild one INSERT per shard); `fillable`, when the row has one, each value
   * written DEFAULT or `nextval(name)` (a value pgshard may make in its place), null for the others.
   */
  rows: { values: (ValueRef | null)[]; start: number; end: number; fillable?: (FillableValue | null)[] }[]
  /** Byte range of the whole VALUES list (what a split replaces). */
  valuesStart: number
  valuesEnd: number
  /** `DEFAULT VALUES` (its byte range is the VALUES list's): one row, no column given. */
  defaultValues?: true
  /**
   * Byte offset of the VALUES keyword, where pgshard writes `OVERRIDING SYSTEM VALUE` when it puts values it drew
   * into the rows (an identity column `GENERATED ALWAYS` takes them only so). Absent with an OVERRIDING clause of
   * the client's, and for DEFAULT VALUES (rewritten whole).
   */
  valuesAt?: number
}

/** The value of a column of INSERT … SELECT: a constant or parameter, a column of a table in FROM, or unknown (null). */
export type InsertSource = { value: ValueRef } | { table: TableRef; column: string } | null

/** A value of an INSERT row written DEFAULT, or `nextval(sequence)`: its byte range in the text. */
export interface FillableValue {
  start: number
  end: number
  /** nextval's sequence name (a constant or a parameter); absent for DEFAULT. */
  nextval?: ValueRef
}

/** `SET column = …` of an UPDATE, an INSERT … ON CONFLICT DO UPDATE or a MERGE … UPDATE, on `table`. */
export interface Assignment {
  table: TableRef
  column: string
  /**
   * The new value when it is a constant or a parameter; 'unchanged' for `column = column` (or EXCLUDED.column
   * in ON CONFLICT, the value of the row being inserted there); null for any other expression.
   */
  value: ValueRef | 'unchanged' | null
}

/** INSERT … ON CONFLICT (…) on `table`: the plain columns its conflict target names (expressions left out). */
export interface ConflictTarget {
  table: TableRef
  columns: string[]
}

/** INSERT INTO table [(columns)] query: the query as written and where its rows go. */
export interface InsertSelect {
  query: string
  /** The table as SQL (quoted, schema-qualified if it was written so). */
  table: string
  /** The columns listed (null: every column of the table, in its order). */
  columns: string[] | null
}

/** COPY: what pgshard needs to cut the client's data into rows and find each row's key, or join shards' output. */
export interface CopyShape {
  /** The table as SQL (quoted, schema-qualified if it was written so), for looking its columns up; '' for a query. */
  table: string
  /** The columns listed, in order (null: every column of the table, in its order). */
  columns: string[] | null
  /** FROM STDIN / TO STDOUT: the rows come from / go to the client (else a file or program on the server). */
  stdin: boolean
  format: 'text' | 'csv' | 'binary'
  /** One byte each. */
  delimiter: string
  quote: string
  escape: string
  /** The text that stands for NULL. */
  nullText: string
  /** The first line names the columns. */
  header: boolean
}

/** `SELECT lastval()` / `SELECT currval(sequence)` / `SELECT nextval(sequence)` alone, with the column it answers under. */
export interface SequenceRead {
  fn: 'lastval' | 'currval' | 'nextval'
  /** currval's or nextval's argument: the sequence's name as a constant or a parameter. */
  sequence?: ValueRef
  column: string
}

/** What a statement does with a SQL cursor. */
export interface CursorUse {
  use: 'declare' | 'fetch' | 'close'
  name: string | null
  /** DECLARE: its options, and the query it reads as written (from its text). */
  declare?: { binary: boolean; scroll: boolean; hold: boolean; query: string }
  /** FETCH or MOVE: how many rows forward ('all'), or another direction (PRIOR, ABSOLUTE, BACKWARD …). */
  fetch?: { forward: boolean; count: number | 'all'; move: boolean }
}

export interface StatementPlan {
  kind: StatementKind
  /** EXPLAIN (in text, without ANALYZE) of a write: nothing runs, so every shard it may write can explain it. */
  explainsWrite?: true
  /** DDL: the unique constraints and indexes it makes (a sharded table's that leave out its key hold per shard). */
  uniqueness?: UniqueConstraint[]
  /** For kind 'transaction'. */
  tx?: TxKind
  /** BEGIN READ ONLY / START TRANSACTION READ ONLY. */
  txReadOnly?: boolean
  /** BEGIN ISOLATION LEVEL …: 'serializable', 'repeatable read', … (absent: the session's default). */
  txIsolation?: string
  /** VACUUM, CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY: Postgres refuses them inside a transaction block. */
  outsideTransactionBlock?: boolean
  /** COMMIT AND CHAIN / ROLLBACK AND CHAIN: a new transaction begins at once, on the same connection. */
  txChain?: boolean
  /** COPY: its columns and data format. */
  copy?: CopyShape
  /** SAVEPOINT / RELEASE / ROLLBACK TO: the savepoint's name as the server compares it (folded unless quoted). */
  savepoint?: string
  /** DECLARE, FETCH/MOVE and CLOSE: the SQL cursor's name as the server compares it (null: CLOSE ALL). */
  cursor?: CursorUse
  /** UPDATE/DELETE: subqueries tied to the target table (`relations`), and every table the statement names. */
  writeTies?: { relations: TableRef[]; correlated: ScatterSources['correlated']; named: TableRef[] }
  /** The CommandComplete tag the statement produces when it succeeds, for answers the proxy makes itself. */
  commandTag: string
  /** Every relation the statement reads or writes (CTE names excluded). */
  tables: TableRef[]
  /** Relations the statement writes (INSERT/UPDATE/DELETE/MERGE/COPY FROM target, DDL target). */
  writtenTables: TableRef[]
  /** Lower-cased names of every function called (schema dropped). */
  functions: string[]
  /** SELECT … FOR UPDATE/SHARE, a writing CTE, SELECT INTO, or any non-SELECT. */
  writes: boolean
  /** Equality pins found in WHERE / JOIN ON / VALUES, propagated through key = key joins. */
  pins: ColumnPin[]
  insert?: InsertRows
  /** INSERT … SELECT (or another INSERT without rows pgshard reads): the columns it lists (none: every column). */
  insertColumns?: string[]
  /** INSERT … OVERRIDING USER VALUE: the values it gives identity columns are dropped for each shard's own. */
  overridingUser?: true
  /** INSERT … SELECT: where the select list takes each value from (InsertSelectSources), in the listed columns' order. */
  insertSources?: InsertSource[]
  /** A plain INSERT … SELECT, whose rows pgshard can send to their shards itself when their keys are not known before. */
  insertSelect?: InsertSelect
  /**
   * UPDATE/DELETE or a locking read (FOR UPDATE) of one table: a SELECT of its table and WHERE clause that a
   * shard answers with a row when it holds rows the statement would change or lock (to find them when the key
   * is not pinned).
   */
  locate?: string
  /**
   * An INSERT that also reads the table it inserts into, under the same name: those rows may be on any shard,
   * not only on the inserted rows' own.
   */
  insertReadsTarget?: true
  /** `INSERT … SELECT constants WHERE false`: no row, any shard (an INSERT whose rows pgshard read first found none). */
  insertsNoRows?: true
  /** INSERT/UPDATE/DELETE … RETURNING: the write answers with rows. */
  returning?: boolean
  /**
   * Subqueries in expressions that refer to nothing outside themselves, each evaluated once by Postgres (an
   * InitPlan): where one reads a sharded table whose rows are not all on the statement's shard, pgshard reads it
   * first, on its own, and writes its answer into the statement as constants (DetachedSubqueries).
   */
  detached?: DetachedSubqueries
  /**
   * For `PREPARE name AS query`: the plan of the query, whose $n are EXECUTE's arguments. An EXECUTE must be
   * routed by it (with the execute effect's args), not by the EXECUTE text, which names no table.
   */
  prepared?: StatementPlan
  /** Columns the statement assigns to rows that already exist (UPDATE SET, ON CONFLICT DO UPDATE, MERGE). */
  assignments?: Assignment[]
  /** INSERT … ON CONFLICT (…) anywhere in the statement: the tables and the columns of their conflict targets. */
  conflictTargets?: ConflictTarget[]
  /** CREATE TABLE … PARTITION OF, ALTER TABLE … ATTACH PARTITION: the partition and the table it is part of. */
  partitionOf?: { child: TableRef; parent: TableRef }
  /**
   * Views over sharded tables the statement reads, which it was analyzed with in place of (ViewInliner): each
   * schema-qualified, with the reference as written (whose schema the client's search_path must agree with).
   */
  viewsRead?: { view: { schema: string; name: string }; ref: TableRef }[]
  /** ALTER TABLE|VIEW … RENAME TO: the relation and its new name. */
  renamed?: { from: TableRef; to: string }
  /**
   * CREATE [MATERIALIZED] VIEW: the view, the tables its query names, and the query that can stand in its place in
   * a FROM clause (a plain, permanent view), with the view's column names.
   */
  definesView?: { view: TableRef; body: string; materialized: boolean; query?: string }
  /** DO: its source, lower case (what it reads decides where it may run, as for a function's body). */
  doBody?: string
  /** CREATE FUNCTION/PROCEDURE in SQL or PL/pgSQL: the name and the body it defines (to see what a call reads). */
  defines?: { name: string; body: string }
  /** The statement is a lastval(), currval() or nextval() call alone (SessionRouting: drawn and answered by pgshard). */
  sequenceRead?: SequenceRead
  /** Present for a SELECT that may be scattered; absent when the statement cannot be merged. */
  scatter?: ScatterPlan
  /** Why a scatter of this SELECT cannot be merged correctly (window function, cross-shard join, …). */
  unmergeable?: string
  session: SessionEffect[]
  hints: Hint[]
  /** Several statements in one Query string. */
  multiStatement: boolean
  /** Several statements, one of them BEGIN/COMMIT/ROLLBACK/SAVEPOINT/…: which of their settings stick is unknown. */
  multiStatementTx?: boolean
  /** Of several statements in one Query, each one's own plan (they run together, wherever the query goes). */
  statements?: StatementPlan[]
  /** Number of $n parameters the text uses. */
  paramCount: number
}

/** The normalizer's output: the text with literals replaced by $n, and the literal values in order. */
export interface NormalizedText {
  text: string
  /** Values of the parameters the normalizer introduced, starting at $firstParam. */
  values: string[]
  firstParam: number
}

/** A statement's self-contained subqueries, and where the statement goes without them. */
export interface DetachedSubqueries {
  /** The statement's text around them: parts[i] comes before subqueries[i], the last part after them all. */
  parts: string[]
  subqueries: DetachedSubquery[]
  /** The plan of the statement with `SELECT NULL` in each subquery's place. */
  outer: StatementPlan
}

export interface DetachedSubquery {
  /** Its text between the parentheses (normalized, as the statement's: literals are $n). */
  sql: string
  form: DetachedForm
  plan: StatementPlan
}
