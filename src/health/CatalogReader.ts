import type { Config } from '../config/ConfigSchema.js'
import type { CatalogFunction } from '../router/FunctionVolatility.js'
import { controlAccess, queryOnce } from './ControlConnection.js'
import type { NodeState } from './NodeState.js'

/** pg_proc is small (about 3,300 rows on a fresh database); this is not a liveness check, so it may take longer. */
const CATALOG_TIMEOUT_MS = 10_000

/**
 * Reads every function's volatility from the shard primaries, in each database clients use (pg_proc is per
 * database: user functions live in the application's database, not in the control database). The router gets
 * the union of all shards; a name volatile anywhere counts as volatile.
 */
export class CatalogReader {
  private readonly byShard = new Map<number, CatalogFunction[]>()

  constructor(
    private config: Config,
    private readonly onCatalog: (rows: CatalogFunction[]) => void,
  ) {}

  reconfigure(config: Config): void {
    this.config = config
  }

  /** Reads the catalog of one shard from its primary and hands the merged catalog on. */
  async read(shard: number, primary: NodeState): Promise<number> {
    const databases = [...new Set(this.config.databases.map((d) => primary.config.database ?? d.server_database ?? d.name))]
    const rows: CatalogFunction[] = []
    for (const database of databases) {
      rows.push(
        ...(await queryOnce<{ proname: string; provolatile: CatalogFunction['provolatile']; prokind: CatalogFunction['prokind'] } & Record<string, unknown>>(
          { host: primary.host, port: primary.port },
          controlAccess(this.config),
          'SELECT proname, provolatile, prokind FROM pg_proc',
          CATALOG_TIMEOUT_MS,
          database,
        )),
      )
    }
    this.byShard.set(shard, rows.map((r) => ({ proname: r.proname, provolatile: r.provolatile, prokind: r.prokind })))
    this.onCatalog([...this.byShard.values()].flat())
    return rows.length
  }
}
