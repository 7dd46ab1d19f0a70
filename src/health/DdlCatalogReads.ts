/** After DDL on a type or table, the catalogs are read again at these delays (the latest DDL's). */
const DELAYS_MS = [1_000, 5_000, 12_000, 30_000]

/** How long after DDL a statement refused for want of the catalogs may ask for a read of its own. */
const ON_DEMAND_WINDOW_MS = 60_000

/** Without new DDL, reads asked for by statements start at most this often (others share the one running). */
const ON_DEMAND_EVERY_MS = 250

/**
 * Catalog reads that follow DDL on types (CREATE TYPE, ALTER TYPE, CREATE DOMAIN, CREATE EXTENSION …) and tables:
 * each shard gives a new type its own OID, and clients are told the default shard's once a read has paired them;
 * a table's columns are unknown to the router from its DDL until a read. The DDL is seen when it is routed,
 * before it runs and commits (a migration's transaction may take a while), so the reads come after it: at 1, 5,
 * 12 (the first that a table's columns count from whatever it shows: TableColumns) and 30 s, again from the
 * start on each new such DDL. Meanwhile a statement that the router refuses for want of a new table's catalog
 * (a write without its key, right after the migration that made the table) may ask for a read at once.
 */
export class DdlCatalogReads {
  private timers: NodeJS.Timeout[] = []
  /** DDL seen so far, and when the latest came. */
  private ddls = 0
  private lastDdl = -Infinity
  /** How many DDL the latest read asked for here began after, and when it began. */
  private covered = -1
  private onDemandAt = -Infinity
  private onDemand: Promise<boolean> | null = null

  constructor(private readonly read: () => Promise<void>) {}

  changed(): void {
    this.stop()
    this.ddls++
    this.lastDdl = Date.now()
    this.timers = DELAYS_MS.map((ms) => setTimeout(() => void this.read(), ms).unref())
  }

  /**
   * A read for a statement refused for want of the catalogs: true once one has run that began after every DDL
   * seen (routing it again may find the table), false without recent DDL, or when such a read ran a moment ago.
   */
  readNow(): Promise<boolean> {
    if (Date.now() - this.lastDdl > ON_DEMAND_WINDOW_MS) return Promise.resolve(false)
    if (this.covered === this.ddls) {
      if (this.onDemand) return this.onDemand
      if (Date.now() - this.onDemandAt < ON_DEMAND_EVERY_MS) return Promise.resolve(false)
    }
    this.covered = this.ddls
    this.onDemandAt = Date.now()
    // A read asked for while one runs begins after it (the monitor queues it), so it sees the latest DDL.
    const shared: Promise<boolean> = this.read().then(
      () => true,
      () => false,
    ).finally(() => {
      if (this.onDemand === shared) this.onDemand = null
    })
    this.onDemand = shared
    return shared
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers = []
  }
}
