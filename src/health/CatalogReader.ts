import type { Config } from '../config/ConfigSchema.js'
import type { CatalogFunction } from '../router/FunctionVolatility.js'
import type { CatalogType } from '../router/merge/EnumTypes.js'
import type { DatabaseCollation } from '../router/merge/TextCollation.js'
import type { CatalogColumns } from '../router/TableColumns.js'
import type { TableRef } from '../router/StatementPlan.js'
import { RoleSearchPaths, type DatabaseSearchPaths } from '../router/RoleSearchPaths.js'
import { controlAccess, queryOnce } from './ControlConnection.js'
import type { NodeState } from './NodeState.js'

/** pg_proc is small (about 3,300 rows on a fresh database); this is not a liveness check, so it may take longer. */
const CATALOG_TIMEOUT_MS = 10_000

// Every function's volatility and kind, and the source of user functions in SQL or PL/pgSQL (which tables a call
// reads decides where it may run).
const FUNCTIONS_SQL = `
SELECT p.proname, p.provolatile, p.prokind,
  CASE WHEN l.lanname IN ('sql', 'plpgsql') AND n.nspname NOT IN ('pg_catalog', 'information_schema') THEN p.prosrc END AS prosrc
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang JOIN pg_namespace n ON n.oid = p.pronamespace`

/** What the router learns from the shards' catalogs. */
export interface LearntCatalog {
  functions: CatalogFunction[]
  searchPaths: RoleSearchPaths
  /** Every partition and the table it is part of (the router keeps those of sharded tables). */
  partitions: { child: TableRef; parent: TableRef }[]
  /** Every view and materialized view of the application's schemas, with its definition. */
  views: CatalogView[]
  /** Types created after initdb, of every shard and database (OIDs differ between them): enums with their labels. */
  types: CatalogType[]
  /** The same types by name, per shard and database: what pairs a shard's OIDs with the default shard's. */
  typeNames: ShardTypeNames[]
  /** Every table's, view's and foreign table's column names in the application's schemas. */
  columns: CatalogColumns[]
  /** Each shard's server databases' default collation: how their text orders. */
  collations: ShardCollation[]
  /** When the oldest of the shard reads combined here started (Date.now()): what it cannot have seen came later. */
  readSince: number
}

export interface CatalogView {
  view: TableRef
  /** Its query, every name in it schema-qualified. */
  definition: string
  materialized: boolean
}

// pg_get_viewdef() qualifies every name the search_path does not show: with pg_catalog alone, all of the
// application's, so the query means the same to any client it is written into.
const VIEWS_SQL = `
SELECT n.nspname AS schema, c.relname AS name, pg_get_viewdef(c.oid) AS definition, c.relkind = 'm' AS materialized
FROM (SELECT set_config('search_path', 'pg_catalog', true)) AS qualified_names, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'`

interface ViewRow extends Record<string, unknown> {
  schema: string
  name: string
  definition: string | null
  materialized: boolean
}

const PARTITIONS_SQL = `
SELECT cn.nspname AS child_schema, c.relname AS child, pn.nspname AS parent_schema, p.relname AS parent
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
  JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE p.relkind = 'p'`

// Every type created after initdb (tables' row types and arrays too: a merge that meets a type missing here has
// the catalogs read again), with an enum's labels, and its schema-qualified name outside temporary schemas (what
// pairs it with the default shard's type of that name).
const TYPES_SQL = `
SELECT t.oid::int8 AS oid,
  (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels,
  CASE WHEN n.nspname !~ '^pg_(toast_)?temp_' THEN format('%I.%I', n.nspname, t.typname) END AS name
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid >= 16384`

// System columns too (attnum < 0): a GROUP BY name resolves to them as to any column. With them, the columns one
// server keeps unique on its own: a unique index of the column alone (not partial, not over an expression), or a
// default drawn from a sequence (serial, identity); whether a unique index is over an expression or partial; and
// the OIDs of the table and its indexes, which change when DDL made it again or indexed it.
const COLUMNS_SQL = `
SELECT n.nspname AS schema, c.relname AS name, array_agg(a.attname::text) AS columns,
  coalesce(array_agg(a.attname::text) FILTER (WHERE a.attnum > 0 AND (a.attidentity <> ''
    OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'
    OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
      AND i.indkey[0] = a.attnum AND i.indpred IS NULL AND i.indexprs IS NULL))), '{}') AS unique_columns,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique
    AND (i.indpred IS NOT NULL OR i.indexprs IS NOT NULL)) AS unique_expressions,
  c.oid::text || ':' || coalesce((SELECT string_agg(i.indexrelid::text, ',' ORDER BY i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid), '') AS version
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
GROUP BY n.nspname, c.relname, c.oid`

interface ColumnsRow extends Record<string, unknown> {
  schema: string
  name: string
  columns: string[]
  unique_columns: string[]
  unique_expressions: boolean
  version: string
}

interface TypeRow extends Record<string, unknown> {
  oid: string
  labels: string[] | null
  name: string | null
}

/** A shard's server database's default collation. */
export interface ShardCollation {
  shard: number
  serverDatabase: string
  collation: DatabaseCollation
}

// The database's default collation; Postgres 15 and 16 name its ICU locale daticulocale, 17 datlocale, and
// before 15 there is no provider (libc).
const COLLATION_SQL = `
SELECT to_jsonb(d) ->> 'datlocprovider' AS provider, d.datcollate AS collate,
  coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale') AS locale
FROM pg_database d WHERE d.datname = current_database()`

/** A shard's created types in one client database, by schema-qualified name. */
export interface ShardTypeNames {
  shard: number
  /** The client's database name, and the server database it is on this shard. */
  database: string
  serverDatabase: string
  types: { oid: number; name: string }[]
}

interface PartitionRow extends Record<string, unknown> {
  child_schema: string
  child: string
  parent_schema: string
  parent: string
}

// Per login role of the database, the search_path Postgres gives its sessions at log-in (role in this database
// first, then the role anywhere), the database's own, and the configuration's when that is what the control
// role sees (its own ALTER ROLE would hide it).
const SEARCH_PATHS_SQL = `
SELECT r.rolname AS role,
  (SELECT substr(c, 13) FROM pg_db_role_setting s CROSS JOIN unnest(s.setconfig) AS c
    WHERE s.setrole = r.oid AND s.setdatabase IN (d.oid, 0) AND c LIKE 'search\\_path=%'
    ORDER BY s.setdatabase = 0 LIMIT 1) AS role_path,
  (SELECT substr(c, 13) FROM pg_db_role_setting s CROSS JOIN unnest(s.setconfig) AS c
    WHERE s.setrole = 0 AND s.setdatabase = d.oid AND c LIKE 'search\\_path=%' LIMIT 1) AS database_path,
  (SELECT setting FROM pg_settings WHERE name = 'search_path'
    AND source IN ('default', 'configuration file', 'command line', 'environment variable')) AS server_path
FROM pg_database d CROSS JOIN pg_roles r
WHERE d.datname = current_database() AND r.rolcanlogin`

interface SearchPathRow extends Record<string, unknown> {
  role: string
  role_path: string | null
  database_path: string | null
  server_path: string | null
}

interface ShardCatalog {
  functions: CatalogFunction[]
  searchPaths: Map<string, DatabaseSearchPaths>
  partitions: { child: TableRef; parent: TableRef }[]
  views: CatalogView[]
  types: CatalogType[]
  typeNames: ShardTypeNames[]
  columns: CatalogColumns[]
  collations: ShardCollation[]
  startedAt: number
}

/**
 * Reads from the shard primaries, in each database clients use (pg_proc is per database: user functions live
 * in the application's database, not in the control database), every function's volatility and the
 * search_path each role's sessions start with. The router gets the union of all shards' functions (a name
 * volatile anywhere counts as volatile) and the first shard's search paths (a schema layout is the same on every
 * shard).
 */
export class CatalogReader {
  private readonly byShard = new Map<number, ShardCatalog>()

  constructor(
    private config: Config,
    private readonly onCatalog: (catalog: LearntCatalog) => void,
  ) {}

  reconfigure(config: Config): void {
    this.config = config
  }

  /** Reads the catalog of one shard from its primary and hands the merged catalog on; the functions' count. */
  async read(shard: number, primary: NodeState): Promise<number> {
    const target = { host: primary.host, port: primary.port }
    const access = controlAccess(this.config)
    const read: ShardCatalog = { functions: [], searchPaths: new Map(), partitions: [], views: [], types: [], typeNames: [], columns: [], collations: [], startedAt: Date.now() }
    const byServerDatabase = new Map<string, DatabaseSearchPaths>()
    const namedTypes = new Map<string, ShardTypeNames['types']>()
    for (const db of this.config.databases) {
      const serverDatabase = primary.config.database ?? db.server_database ?? db.name
      let paths = byServerDatabase.get(serverDatabase)
      if (paths === undefined) {
        const functions = await queryOnce<Pick<CatalogFunction, 'proname' | 'provolatile' | 'prokind' | 'prosrc'> & Record<string, unknown>>(
          target, access, FUNCTIONS_SQL, CATALOG_TIMEOUT_MS, serverDatabase,
        )
        read.functions.push(...functions.map((r) => ({ proname: r.proname, provolatile: r.provolatile, prokind: r.prokind, prosrc: r.prosrc })))
        paths = searchPathsOf(await queryOnce<SearchPathRow>(target, access, SEARCH_PATHS_SQL, CATALOG_TIMEOUT_MS, serverDatabase))
        const partitions = await queryOnce<PartitionRow>(target, access, PARTITIONS_SQL, CATALOG_TIMEOUT_MS, serverDatabase)
        read.partitions.push(...partitions.map((r) => ({ child: { schema: r.child_schema, name: r.child }, parent: { schema: r.parent_schema, name: r.parent } })))
        const views = await queryOnce<ViewRow>(target, access, VIEWS_SQL, CATALOG_TIMEOUT_MS, serverDatabase)
        read.views.push(...views.map((r) => ({ view: { schema: r.schema, name: r.name }, definition: r.definition ?? '', materialized: r.materialized })))
        const columns = await queryOnce<ColumnsRow>(target, access, COLUMNS_SQL, CATALOG_TIMEOUT_MS, serverDatabase)
        read.columns.push(...columns.map((r) => ({ table: { schema: r.schema, name: r.name }, columns: r.columns, unique: r.unique_columns, uniqueExpressions: r.unique_expressions, version: `${shard}/${r.version}` })))
        const types = await queryOnce<TypeRow>(target, access, TYPES_SQL, CATALOG_TIMEOUT_MS, serverDatabase)
        read.types.push(...types.map((r) => ({ oid: Number(r.oid), labels: r.labels })))
        namedTypes.set(serverDatabase, types.flatMap((r) => (r.name === null ? [] : [{ oid: Number(r.oid), name: r.name }])))
        const [collation] = await queryOnce<DatabaseCollation & Record<string, unknown>>(target, access, COLLATION_SQL, CATALOG_TIMEOUT_MS, serverDatabase)
        if (collation) read.collations.push({ shard, serverDatabase, collation: { provider: collation.provider, collate: collation.collate, locale: collation.locale } })
        byServerDatabase.set(serverDatabase, paths)
      }
      read.searchPaths.set(db.name, paths)
      read.typeNames.push({ shard, database: db.name, serverDatabase, types: namedTypes.get(serverDatabase)! })
    }
    this.byShard.set(shard, read)
    const shards = [...this.byShard.keys()].sort((a, b) => a - b).map((s) => this.byShard.get(s)!)
    this.onCatalog({ functions: shards.flatMap((s) => s.functions), searchPaths: new RoleSearchPaths(shards[0]!.searchPaths), partitions: shards.flatMap((s) => s.partitions), views: shards.flatMap((s) => s.views), types: shards.flatMap((s) => s.types), typeNames: shards.flatMap((s) => s.typeNames), columns: shards.flatMap((s) => s.columns), collations: shards.flatMap((s) => s.collations), readSince: Math.min(...shards.map((s) => s.startedAt)) })
    return read.functions.length
  }
}

function searchPathsOf(rows: SearchPathRow[]): DatabaseSearchPaths {
  const roles = new Map<string, string>()
  for (const r of rows) if (r.role_path !== null) roles.set(r.role, r.role_path)
  return { roles, database: rows[0]?.database_path ?? null, server: rows[0]?.server_path ?? null }
}
