/** After DDL on a type or table, the catalogs are read again at these delays (the latest DDL's). */
const DELAYS_MS = [1_000, 5_000, 12_000, 30_000]

/**
 * Catalog reads that follow DDL on types (CREATE TYPE, ALTER TYPE, CREATE DOMAIN, CREATE EXTENSION …) and tables:
 * each shard gives a new type its own OID, and clients are told the default shard's once a read has paired them;
 * a table's columns are unknown to the router from its DDL until a read. The DDL is seen when it is routed,
 * before it runs and commits (a migration's transaction may take a while), so the reads come after it: at 1, 5,
 * 12 (the first that a table's columns count from whatever it shows: TableColumns) and 30 s, again from the
 * start on each new such DDL.
 */
export class DdlCatalogReads {
  private timers: NodeJS.Timeout[] = []

  constructor(private readonly read: () => void) {}

  changed(): void {
    this.stop()
    this.timers = DELAYS_MS.map((ms) => setTimeout(this.read, ms).unref())
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers = []
  }
}
