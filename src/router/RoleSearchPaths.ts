import { splitSearchPath } from './SearchPath.js'

/** What Postgres uses when nothing sets search_path. */
export const BUILT_IN_SEARCH_PATH: readonly string[] = Object.freeze(['$user', 'public'])

/** One database's search_path defaults as the servers hold them, as written there (`ledger, "$user"`). */
export interface DatabaseSearchPaths {
  /** Per login role: its `ALTER ROLE … IN DATABASE … SET search_path`, else its `ALTER ROLE … SET`. */
  roles: Map<string, string>
  /** `ALTER DATABASE … SET search_path`. */
  database: string | null
  /** The servers' configuration file or command line; null when the reader could not tell it. */
  server: string | null
}

/**
 * The search_path a server session starts with for each (database, role), as Postgres chooses it at log-in:
 * role in database, then role, then database, then the server's configuration. A client that sets none routes
 * by this one: its unqualified table names are resolved on the server by it. Keyed by the client-facing database
 * name. Lookups allocate nothing: they run for every statement of such a client.
 */
export class RoleSearchPaths {
  private readonly byRole = new Map<string, Map<string, readonly string[]>>()
  private readonly byDatabase = new Map<string, readonly string[]>()

  constructor(databases: Map<string, DatabaseSearchPaths> = new Map()) {
    for (const [name, paths] of databases) {
      const fallback = paths.database ?? paths.server
      this.byDatabase.set(name, fallback === null ? BUILT_IN_SEARCH_PATH : Object.freeze(splitSearchPath(fallback)))
      const roles = new Map<string, readonly string[]>()
      for (const [role, value] of paths.roles) roles.set(role, Object.freeze(splitSearchPath(value)))
      this.byRole.set(name, roles)
    }
  }

  /** The same array for the same answer until the catalog is read again, so callers may compare by identity. */
  of(database: string, role: string): readonly string[] {
    return this.byRole.get(database)?.get(role) ?? this.byDatabase.get(database) ?? BUILT_IN_SEARCH_PATH
  }

  /** Whether a (database, role) starts with the same search_path here and in `other`. */
  agrees(other: RoleSearchPaths, database: string, role: string): boolean {
    const a = this.of(database, role)
    const b = other.of(database, role)
    return a.length === b.length && a.every((name, i) => name === b[i])
  }
}
