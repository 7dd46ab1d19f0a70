/** After DDL made, changed or dropped a type, the catalogs are read again at these delays (the latest DDL's). */
const DELAYS_MS = [1_000, 5_000, 30_000]

/**
 * Catalog reads that follow DDL on types (CREATE TYPE, ALTER TYPE, CREATE DOMAIN, CREATE EXTENSION …): each
 * shard gives a new type its own OID, and clients are told the default shard's once a read has paired them.
 * The DDL is seen when it is routed, before it runs and commits (a migration's transaction may take a while),
 * so the reads come after it: at 1, 5 and 30 s, again from the start on each new such DDL.
 */
export class TypeDdlReads {
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
