// The column names of the application's tables, as the shards' catalogs last listed them: what tells whether a
// GROUP BY name is a column or an output alias (ScatterSources.aliasGroups). A table that DDL routed through
// pgshard touched is unknown from then until a catalog read that began after the DDL shows it changed (the DDL
// committed), or one that began long enough after it to have seen it commit.
import type { TableRef } from './StatementPlan.js'

/** One table's columns from a shard's catalog (system columns included: they are names Postgres resolves too). */
export interface CatalogColumns {
  table: { schema: string; name: string }
  columns: string[]
}

/** How long after DDL routed on a table a catalog read may still not show it (the DDL had not committed yet). */
const DDL_UNSEEN_MS = 10_000

export class TableColumns {
  /** Column names by table name, then schema. */
  private readonly byName = new Map<string, Map<string, Set<string>>>()
  /** Table names DDL touched, with when: unknown until a read that began DDL_UNSEEN_MS later. */
  private readonly changed = new Map<string, number>()

  /** The catalogs' columns (every shard's: a column on any of them counts), from a read that began at readSince. */
  load(tables: CatalogColumns[], readSince: number): void {
    const before = new Map(this.byName)
    this.byName.clear()
    for (const { table, columns } of tables) {
      const schemas = this.byName.get(table.name) ?? new Map<string, Set<string>>()
      this.byName.set(table.name, schemas)
      const known = schemas.get(table.schema) ?? new Set<string>()
      schemas.set(table.schema, known)
      for (const c of columns) known.add(c)
    }
    for (const [name, at] of this.changed) {
      if (at + DDL_UNSEEN_MS < readSince || (at < readSince && !sameColumns(before.get(name), this.byName.get(name)))) this.changed.delete(name)
    }
  }

  /** DDL routed on these tables may change their columns: unknown until the catalogs are read again. */
  forget(tables: TableRef[], now = Date.now()): void {
    for (const t of tables) this.changed.set(t.name, now)
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
