import { Counter, Histogram, type Registry } from 'prom-client'

export type RouteKind = 'single' | 'scatter' | 'broadcast' | 'split' | 'refused' | 'local'

/**
 * Counters the data path touches per statement. Labels are bounded: shard, role, kind, outcome, SQLSTATE
 * class. Children are bound once per label combination and cached, so a statement costs two or three
 * increments and one histogram observation.
 */
export class DataPathMetrics {
  private readonly queries: Counter<'shard' | 'role' | 'outcome'>
  private readonly transactions: Counter<'outcome'>
  private readonly duration: Histogram<'shard' | 'role'>
  private readonly routes: Counter<'kind'>
  private readonly cache: Counter<'result'>
  private readonly errors: Counter<'class'>
  private readonly bytes: Counter<'direction'>
  private readonly queueWait: Histogram<never>
  private readonly counters = new Map<string, { inc(v?: number): void }>()
  private readonly perShard = new Map<string, { ok: { inc(): void }; error: { inc(): void }; duration: { observe(v: number): void } }>()

  constructor(registry: Registry) {
    const registers = [registry]
    this.queries = new Counter({ name: 'pgshard_queries_total', help: 'Statements executed, by shard, role and outcome', labelNames: ['shard', 'role', 'outcome'], registers })
    this.transactions = new Counter({ name: 'pgshard_transactions_total', help: 'Transactions ended, by outcome (commit or rollback)', labelNames: ['outcome'], registers })
    this.duration = new Histogram({
      name: 'pgshard_query_duration_seconds',
      help: 'Time from a statement reaching the proxy to its last reply leaving it',
      labelNames: ['shard', 'role'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    })
    this.routes = new Counter({ name: 'pgshard_routing_decisions_total', help: 'Routing decisions by kind', labelNames: ['kind'], registers })
    this.cache = new Counter({ name: 'pgshard_parse_cache_total', help: 'Statement plan cache lookups by result (hit or miss)', labelNames: ['result'], registers })
    this.errors = new Counter({ name: 'pgshard_errors_total', help: 'Errors sent to clients, by SQLSTATE class (first two characters)', labelNames: ['class'], registers })
    this.bytes = new Counter({ name: 'pgshard_client_bytes_total', help: 'Bytes between clients and the proxy, by direction (in or out)', labelNames: ['direction'], registers })
    this.queueWait = new Histogram({
      name: 'pgshard_pool_wait_seconds',
      help: 'Time a client waited for a server connection',
      buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    })
  }

  /** A bound child counter, made once per label combination. */
  private child(key: string, make: () => { inc(v?: number): void }): { inc(v?: number): void } {
    let c = this.counters.get(key)
    if (!c) {
      c = make()
      this.counters.set(key, c)
    }
    return c
  }

  query(shard: string, role: string, ok: boolean, seconds: number): void {
    const key = `${shard}\u0000${role}`
    let s = this.perShard.get(key)
    if (!s) {
      s = { ok: this.queries.labels(shard, role, 'ok'), error: this.queries.labels(shard, role, 'error'), duration: this.duration.labels(shard, role) }
      this.perShard.set(key, s)
    }
    ;(ok ? s.ok : s.error).inc()
    s.duration.observe(seconds)
  }

  transaction(committed: boolean): void {
    this.transactions.inc({ outcome: committed ? 'commit' : 'rollback' })
  }

  route(kind: RouteKind): void {
    this.child(`r\u0000${kind}`, () => this.routes.labels(kind)).inc()
  }

  cacheLookup(hit: boolean): void {
    this.child(hit ? 'c\u0000hit' : 'c\u0000miss', () => this.cache.labels(hit ? 'hit' : 'miss')).inc()
  }

  error(sqlstate: string): void {
    const cls = /^[0-9A-Z]{2}/.test(sqlstate) ? sqlstate.slice(0, 2) : 'XX'
    this.child(`e\u0000${cls}`, () => this.errors.labels(cls)).inc()
  }

  clientBytes(inBytes: number, outBytes: number): void {
    if (inBytes) this.child('b\u0000in', () => this.bytes.labels('in')).inc(inBytes)
    if (outBytes) this.child('b\u0000out', () => this.bytes.labels('out')).inc(outBytes)
  }

  poolWait(seconds: number): void {
    this.queueWait.observe(seconds)
  }
}
