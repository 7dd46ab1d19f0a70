// What the router knows about the functions a statement calls. Mainly which ones it may call and still be
// served by a replica. Unknown means volatile: a function that might write (nextval, setval, pg_advisory_lock, a
// user function) sends the statement to the primary. Precedence: the config's overrides, then what a shard's
// catalog says, then the built-in list. The catalog also tells which names are aggregates (prokind 'a'), so a
// scatter never concatenates per-shard results of an aggregate the merger does not know.

export type Volatility = 'immutable' | 'stable' | 'volatile'

export interface CatalogFunction {
  proname: string
  provolatile: 'i' | 's' | 'v'
  /** pg_proc.prokind: f function, p procedure, a aggregate, w window function (absent: not read). */
  prokind?: 'f' | 'p' | 'a' | 'w'
  /** The source of a user function in SQL or PL/pgSQL (null for others, absent: not read). */
  prosrc?: string | null
}

// Immutable or stable in every overload (checked against pg_proc of Postgres 15), plus the SQL constructs
// that look like calls (coalesce, greatest, current_timestamp…). Recorded as 'stable': only whether they
// may write matters here, and the catalog gives the exact class once loaded.
const BUILT_IN_READ_ONLY = `
  count sum avg min max bool_and bool_or every stddev stddev_pop stddev_samp variance var_pop var_samp
  percentile_cont percentile_disc mode bit_and bit_or array_agg string_agg json_agg jsonb_agg json_object_agg
  jsonb_object_agg row_number rank dense_rank first_value last_value lag lead ntile width_bucket
  coalesce nullif greatest least now current_timestamp current_date localtimestamp
  lower upper initcap length char_length character_length octet_length bit_length substr substring left
  right position strpos replace trim btrim ltrim rtrim lpad rpad concat concat_ws format split_part repeat
  reverse translate regexp_replace regexp_match regexp_matches regexp_split_to_array regexp_split_to_table
  starts_with md5 sha256 encode decode quote_ident quote_literal quote_nullable string_to_array
  string_to_table array_to_string
  to_char to_date to_timestamp to_number abs round trunc ceil ceiling floor sign sqrt power pow exp ln log
  mod div date_trunc date_part extract age make_date make_timestamp make_interval justify_days
  generate_series array_length array_upper array_lower cardinality unnest array_position array_remove
  array_append array_to_json
  json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb row_to_json
  json_extract_path jsonb_extract_path json_extract_path_text jsonb_extract_path_text json_typeof
  jsonb_typeof json_array_length jsonb_array_length json_array_elements jsonb_array_elements
  jsonb_array_elements_text json_object_keys jsonb_object_keys jsonb_each jsonb_each_text jsonb_set
  jsonb_strip_nulls jsonb_pretty jsonb_path_query jsonb_path_exists
  numeric int4 int8 float8 text
  pg_get_userbyid format_type pg_table_is_visible obj_description col_description shobj_description
  pg_get_expr pg_get_indexdef pg_get_constraintdef pg_get_triggerdef pg_get_viewdef pg_get_functiondef
  pg_get_function_arguments pg_get_function_result pg_get_function_identity_arguments pg_get_ruledef
  pg_get_statisticsobjdef pg_get_statisticsobjdef_columns pg_get_partkeydef pg_get_partition_constraintdef
  pg_get_serial_sequence pg_function_is_visible pg_type_is_visible pg_opclass_is_visible
  pg_operator_is_visible pg_collation_is_visible pg_conversion_is_visible pg_ts_config_is_visible
  pg_encoding_to_char pg_char_to_encoding pg_size_pretty pg_tablespace_location pg_has_role
  has_table_privilege has_schema_privilege has_database_privilege has_column_privilege
  has_function_privilege current_schema current_schemas current_database current_user session_user
  version pg_backend_pid inet_server_addr pg_postmaster_start_time pg_get_keywords pg_typeof
  pg_column_size to_regclass to_regtype to_regproc pg_relation_is_publishable pg_get_publication_tables
`
  .split(/\s+/)
  .filter((name) => name !== '')

const FROM_CATALOG: Record<CatalogFunction['provolatile'], Volatility> = { i: 'immutable', s: 'stable', v: 'volatile' }
const RANK: Record<Volatility, number> = { immutable: 0, stable: 1, volatile: 2 }

export class FunctionVolatility {
  private readonly builtIn = new Map<string, Volatility>(BUILT_IN_READ_ONLY.map((name) => [name, 'stable']))
  private catalog = new Map<string, Volatility>()
  private aggregates = new Set<string>()
  /** Bodies of user functions in SQL or PL/pgSQL (lower case; overloads joined), from the catalog and from CREATEs seen. */
  private bodies = new Map<string, string>()
  private readonly overrides = new Map<string, Volatility>()

  constructor(routing: { volatile_functions?: string[]; stable_functions?: string[] } = {}) {
    for (const name of routing.stable_functions ?? []) this.overrides.set(name.toLowerCase(), 'stable')
    // Listed in both: volatile wins, the safe side.
    for (const name of routing.volatile_functions ?? []) this.overrides.set(name.toLowerCase(), 'volatile')
  }

  /**
   * Learns every function of a shard's catalog (`SELECT proname, provolatile, prokind FROM pg_proc`), replacing
   * what an earlier call learnt. Overloads (and names differing only in case) take the most volatile of them; a
   * name is an aggregate when any overload is one.
   */
  loadCatalog(rows: CatalogFunction[]): void {
    const catalog = new Map<string, Volatility>()
    const aggregates = new Set<string>()
    const bodies = new Map<string, string>()
    for (const row of rows) {
      const name = row.proname.toLowerCase()
      const v = FROM_CATALOG[row.provolatile] ?? 'volatile'
      const known = catalog.get(name)
      if (known === undefined || RANK[v] > RANK[known]) catalog.set(name, v)
      if (row.prokind === 'a') aggregates.add(name)
      if (row.prosrc) bodies.set(name, `${bodies.get(name) ?? ''}\n${row.prosrc.toLowerCase()}`)
    }
    this.catalog = catalog
    this.aggregates = aggregates
    // A function created through pgshard since the last read keeps what its CREATE said.
    for (const [name, body] of this.bodies) if (!bodies.has(name)) bodies.set(name, body)
    this.bodies = bodies
  }

  /** What a CREATE FUNCTION/PROCEDURE seen on its way to the shards defines, before the catalog is read again. */
  learnBody(name: string, body: string): void {
    this.bodies.set(name.toLowerCase(), body.toLowerCase())
  }

  /** The body of a user function in SQL or PL/pgSQL, lower case; undefined when pgshard knows none. */
  body(name: string): string | undefined {
    return this.bodies.get(name.toLowerCase())
  }

  /** Whether a function called by name (lower case, schema dropped) is an aggregate in the learnt catalog. */
  isAggregate(name: string): boolean {
    return this.aggregates.has(name.toLowerCase())
  }

  /**
   * Whether pgshard knows what a name is: in the learnt catalog, the built-in list or the config's overrides.
   * A function created after the last catalog read is unknown: it could be an aggregate.
   */
  isKnown(name: string): boolean {
    const key = name.toLowerCase()
    return this.catalog.has(key) || this.builtIn.has(key) || this.overrides.has(key)
  }

  /** Volatility of a function called by name (lower case, schema dropped); unknown → volatile. */
  volatility(name: string): Volatility {
    const key = name.toLowerCase()
    return this.overrides.get(key) ?? this.catalog.get(key) ?? this.builtIn.get(key) ?? 'volatile'
  }

  isReadOnly(name: string): boolean {
    return this.volatility(name) !== 'volatile'
  }

  /** The first function of the list that is not read-only, if any. */
  firstVolatile(names: string[]): string | undefined {
    return names.find((name) => !this.isReadOnly(name))
  }
}
