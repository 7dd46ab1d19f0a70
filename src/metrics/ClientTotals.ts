/** A client's counters, as a Session keeps them. */
export interface ClientCounters {
  queries: number
  transactions: number
  bytesIn: number
  bytesOut: number
}

export interface DatabaseTotals extends ClientCounters {
  /** Clients connected now. */
  clients: number
}

/**
 * Per-database totals over every client since start: the counters of clients that left are folded in here when
 * they leave, so SHOW STATS does not lose them. Keyed by the logical database name (bounded by the config).
 */
export class ClientTotals {
  private readonly ended = new Map<string, ClientCounters>()

  clientEnded(database: string, stats: ClientCounters): void {
    const t = this.ended.get(database) ?? { queries: 0, transactions: 0, bytesIn: 0, bytesOut: 0 }
    t.queries += stats.queries
    t.transactions += stats.transactions
    t.bytesIn += stats.bytesIn
    t.bytesOut += stats.bytesOut
    this.ended.set(database, t)
  }

  /** Totals by database: the clients that left plus `live`, the clients connected now. */
  byDatabase(live: Iterable<{ database: string; stats: ClientCounters }>): Map<string, DatabaseTotals> {
    const out = new Map<string, DatabaseTotals>()
    for (const [db, t] of this.ended) out.set(db, { ...t, clients: 0 })
    for (const c of live) {
      const t = out.get(c.database) ?? { queries: 0, transactions: 0, bytesIn: 0, bytesOut: 0, clients: 0 }
      t.queries += c.stats.queries
      t.transactions += c.stats.transactions
      t.bytesIn += c.stats.bytesIn
      t.bytesOut += c.stats.bytesOut
      t.clients++
      out.set(c.database, t)
    }
    return out
  }
}
