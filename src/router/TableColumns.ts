// The column names of the application's tables, as the shards' catalogs last listed them: what tells whether a
// GROUP BY name is a column or an output alias (ScatterSources.aliasGroups), and which columns a server keeps unique
// on its own (whether a write without its key addresses single rows). A table that DDL routed through
// pgshard touched is unknown from then until a catalog read that began after the DDL shows it changed (the DDL
// committed: other columns, or another table or set of indexes, as their OIDs tell, for a table dropped and made
// again alike or an index made), or one that began long enough after it to have seen it commit.
import type { TableRef } from './StatementPlan.js'

/** One table's columns from a shard's catalog (system columns included: they are names Postgres resolves too). */
export interface CatalogColumns {
  table: { schema: string; name: string }
  columns: string[]
  /**
   * The columns one server keeps unique on its own: a unique index of the column alone (not partial, not over an
   * expression), or values a sequence draws (serial, identity). Across shards such values repeat.
   */
  unique?: string[]
  /** A unique index of the table is over an expression or partial: which rows it keeps single cannot be told. */
  uniqueExpressions?: boolean
  /** The table's OID and its indexes' on that shard: another value, another table or set of indexes. */
  version?: string
}

/** What names single rows of a table on one server (TableColumns.uniqueColumns). */
export interface UniqueColumns {
  columns: ReadonlySet<string>
  /** A unique index over an expression or part of the rows, which pgshard cannot match to a WHERE clause. */
  expressions: boolean
}

/** How long after DDL routed on a table a catalog read may still not show it (the DDL had not committed yet). */
const DDL_UNSEEN_MS = 10_000

export class TableColumns {
  /** Column names by table name, then schema. */
  private readonly byName = new Map<string, Map<string, Set<string>>>()
  /** Of those, the ones each server keeps unique on its own (CatalogColumns.unique). */
  private readonly uniqueByName = new Map<string, Map<string, Set<string>>>()
  /** Tables (schema-qualified) with a unique index over an expression or partial. */
  private readonly uniqueExpressions = new Set<string>()
  /**
   * Table names DDL touched, with when and their columns then: unknown until a read that began after it shows
   * other columns (the DDL committed), or one that began DDL_UNSEEN_MS later.
   */
  private readonly changed = new Map<string, Touched>()
  /** Table names CREATE INDEX named, with when and their unique columns then: the same rule for those. */
  private readonly indexed = new Map<string, Touched>()
  /** Each table name's versions (CatalogColumns.version) on every shard and schema. */
  private readonly versions = new Map<string, Set<string>>()

  /** The catalogs' columns (every shard's: a column on any of them counts), from a read that began at readSince. */
  load(tables: CatalogColumns[], readSince: number): void {
    this.byName.clear()
    this.uniqueByName.clear()
    this.uniqueExpressions.clear()
    this.versions.clear()
    for (const { table, columns, unique, uniqueExpressions, version } of tables) {
      for (const c of columns) namesOf(this.byName, table).add(c)
      const kept = namesOf(this.uniqueByName, table)
      for (const c of unique ?? []) kept.add(c)
      if (uniqueExpressions === true) this.uniqueExpressions.add(`${table.schema}.${table.name}`)
      if (version !== undefined) this.versions.set(table.name, (this.versions.get(table.name) ?? new Set()).add(`${table.schema}.${version}`))
    }
    settle(this.changed, this.byName, this.versions, readSince)
    settle(this.indexed, this.uniqueByName, this.versions, readSince)
  }

  /** DDL routed on these tables may change their columns: unknown until the catalogs are read again. */
  forget(tables: TableRef[], now = Date.now()): void {
    for (const t of tables) this.changed.set(t.name, { at: now, columns: this.byName.get(t.name), versions: this.versions.get(t.name) })
  }

  /** CREATE INDEX routed on these tables may make a column unique: their unique columns are unknown until a read. */
  forgetUnique(tables: TableRef[], now = Date.now()): void {
    for (const t of tables) this.indexed.set(t.name, { at: now, columns: this.uniqueByName.get(t.name), versions: this.versions.get(t.name) })
  }

  /**
   * Whether the table has a column of that name: undefined when the catalog does not know the table. An
   * unqualified name counts every schema's table of that name (the session's search_path may hold any of them).
   */
  hasColumn(table: TableRef, column: string): boolean | undefined {
    if (this.changed.has(table.name)) return undefined
    const schemas = this.byName.get(table.name)
    if (table.schema !== undefined) return schemas?.get(table.schema)?.has(column)
    if (schemas === undefined) return undefined
    return [...schemas.values()].some((columns) => columns.has(column))
  }

  /**
   * The columns of the table each server keeps unique on its own (CatalogColumns.unique); undefined when the
   * catalog does not know the table. An unqualified name takes every schema's table of that name.
   */
  uniqueColumns(table: TableRef): UniqueColumns | undefined {
    const known = this.byName.get(table.name)
    if (this.changed.has(table.name) || this.indexed.has(table.name) || known === undefined || (table.schema !== undefined && !known.has(table.schema))) return undefined
    const schemas = table.schema !== undefined ? [table.schema] : [...known.keys()]
    return {
      columns: new Set(schemas.flatMap((schema) => [...(this.uniqueByName.get(table.name)?.get(schema) ?? [])])),
      expressions: schemas.some((schema) => this.uniqueExpressions.has(`${schema}.${table.name}`)),
    }
  }
}

/** A table name DDL touched: when, and its columns and versions then. */
interface Touched {
  at: number
  columns: Map<string, Set<string>> | undefined
  versions: Set<string> | undefined
}

/**
 * Forgets the DDL of tables that a read began after shows changed (it committed), or that a read began
 * DDL_UNSEEN_MS after.
 */
function settle(changed: Map<string, Touched>, now: Map<string, Map<string, Set<string>>>, versions: Map<string, Set<string>>, readSince: number): void {
  for (const [name, touched] of changed) {
    const seen = !sameColumns(touched.columns, now.get(name)) || !sameSet(touched.versions, versions.get(name))
    if (touched.at + DDL_UNSEEN_MS < readSince || (touched.at < readSince && seen)) changed.delete(name)
  }
}

function sameSet(a: Set<string> | undefined, b: Set<string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.size === b.size && [...a].every((v) => b.has(v))
}

/** The names kept for a table (made empty at its first sight). */
function namesOf(byName: Map<string, Map<string, Set<string>>>, table: { schema: string; name: string }): Set<string> {
  const schemas = byName.get(table.name) ?? new Map<string, Set<string>>()
  byName.set(table.name, schemas)
  const names = schemas.get(table.schema) ?? new Set<string>()
  schemas.set(table.schema, names)
  return names
}

function sameColumns(a: Map<string, Set<string>> | undefined, b: Map<string, Set<string>> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  if (a.size !== b.size) return false
  for (const [schema, columns] of a) {
    const other = b.get(schema)
    if (other === undefined || other.size !== columns.size || [...columns].some((c) => !other.has(c))) return false
  }
  return true
}
