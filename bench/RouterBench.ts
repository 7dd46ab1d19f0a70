import { parseConfig } from '../src/config/ConfigLoader.js'
import { StatementRouter } from '../src/proxy/StatementRouter.js'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { normalizeLiterals } from '../src/router/LiteralNormalizer.js'
import type { BoundParam, RoutingContext } from '../src/router/Route.js'
import { ShardRing } from '../src/router/ShardRing.js'
import { initSqlParser, parseSql } from '../src/router/SqlParser.js'
import { analyzeStatement } from '../src/router/StatementAnalyzer.js'
import { StatementCache } from '../src/router/StatementCache.js'
import { timePerOp, type Timing } from './MicroTimer.js'

export interface MicroResult {
  what: string
  statement: string
  timing: Timing
}

/** pgbench -S's statement, with a new literal each time as pgbench sends it. */
const pgbenchSelect = (aid: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`

/** A 30-line join: 7 joins, a derived table, EXISTS, IN, an aggregate, FOR UPDATE OF … SKIP LOCKED; literals vary. */
const join30 = (tenant: number) => `SELECT o.id,
       o.created_at,
       c.name AS customer,
       c.email,
       sum(oi.quantity * p.price) AS total,
       s.carrier,
       a.city
  FROM orders o
  JOIN customers c ON c.id = o.customer_id AND c.tenant_id = o.tenant_id
  JOIN order_items oi ON oi.order_id = o.id
  JOIN products p ON p.id = oi.product_id
  LEFT JOIN shipments s ON s.order_id = o.id
  LEFT JOIN addresses a ON a.id = s.address_id
  JOIN (SELECT order_id, max(paid_at) AS paid_at
          FROM payments
         WHERE status = 'settled'
         GROUP BY order_id) pay ON pay.order_id = o.id
 WHERE o.tenant_id = ${tenant}
   AND o.status IN ('open', 'paid', 'shipped')
   AND o.created_at >= now() - interval '30 days'
   AND EXISTS (SELECT 1
                 FROM audit_log l
                WHERE l.order_id = o.id
                  AND l.action = 'checked')
   AND p.category_id IN (3, 5, 8, 13)
 GROUP BY o.id, o.created_at, c.name, c.email, s.carrier, a.city
HAVING sum(oi.quantity * p.price) > 100
 ORDER BY o.created_at DESC
 LIMIT 50
   FOR UPDATE OF o SKIP LOCKED`

const DISTINCT_TEXTS = 4096
const MANY = 20_000

/** Per-statement costs of the router's parse cache and of key placement, in the bench process. */
export async function runRouterBench(): Promise<MicroResult[]> {
  await initSqlParser()
  const results: MicroResult[] = []
  const measure = (what: string, statement: string, op: (i: number) => unknown, iterations: number) =>
    results.push({ what, statement, timing: timePerOp(op, iterations) })
  const statements: [string, (n: number) => string, number][] = [
    ['pgbench -S SELECT', pgbenchSelect, MANY],
    ['30-line join', join30, 1000],
  ]
  const config = parseConfig(JSON.stringify({
    users: [{ name: 'app', password: 'x' }],
    databases: [{ name: 'app' }],
    shards: ['s0', 's1', 's2', 's3'].map((name, i) => ({ name, primary: { host: '127.0.0.1', port: 5432 + i } })),
    sharding: { tables: [{ name: 'pgbench_accounts', key: 'aid', type: 'integer' }, { name: 'orders', key: 'tenant_id', type: 'bigint' }] },
  }))
  const ctx: RoutingContext = { inTransaction: false, txReadOnly: false }
  for (const [name, make, iterations] of statements) {
    const texts = Array.from({ length: DISTINCT_TEXTS }, (_, i) => make(100_000 + i * 7919))
    const text = (i: number) => texts[i % DISTINCT_TEXTS]
    measure('libpg-query parse (parseSql)', name, (i) => parseSql(text(i)), iterations)
    measure('analyzer: parse + analysis (analyzeStatement)', name, (i) => analyzeStatement(text(i)), iterations)
    measure('literal normalizer (normalizeLiterals)', name, (i) => normalizeLiterals(text(i), 1), iterations * 5)
    measure('StatementCache miss (empty cache: normalize, parse, analyze, store)', name, (i) => new StatementCache(16).lookup(text(i)), iterations)
    const cache = new StatementCache(20_000)
    measure('StatementCache hit (a new literal: normalize, look up)', name, (i) => cache.lookup(text(i)), iterations * 5)
    const router = new StatementRouter(config)
    measure('StatementRouter hit + route (4 shards, key → ring → shard)', name, (i) => {
      const analyzed = router.analyze(text(i))
      const param = (n: number): BoundParam | undefined => {
        const v = analyzed.literals[n - analyzed.firstParam]
        return v === undefined ? undefined : { value: v, format: 0, typeOid: 0 }
      }
      return router.route(analyzed, param, ctx)
    }, iterations * 5)
  }
  const ints = Array.from({ length: DISTINCT_TEXTS }, (_, i) => String(1 + i * 2_654_435))
  const int8s = ints.map((s) => {
    const b = Buffer.alloc(8)
    b.writeBigInt64BE(BigInt(s))
    return b
  })
  const uuids = ints.map((s) => `${s.padStart(8, '0').slice(0, 8)}-1234-4ABC-9DEF-0123456789AB`)
  measure('canonical key: integer as text', '`12345…`', (i) => canonicalKey('integer', ints[i % DISTINCT_TEXTS], 0, 0), 200_000)
  measure('canonical key: binary int8 parameter', '8 bytes', (i) => canonicalKey('bigint', int8s[i % DISTINCT_TEXTS], 1, 20), 200_000)
  measure('canonical key: uuid as text', 'upper-case, dashed', (i) => canonicalKey('uuid', uuids[i % DISTINCT_TEXTS], 0, 0), 200_000)
  for (const shards of [1, 4, 16]) {
    const ring = new ShardRing(Array.from({ length: shards }, (_, i) => `s${i}`), { version: 1, pointsPerShard: 1024, seed: 'pgshard' })
    measure(`ShardRing.shardFor, ${shards} shard${shards > 1 ? 's' : ''} × 1024 points`, 'canonical integer', (i) => ring.shardFor(ints[i % DISTINCT_TEXTS]), 200_000)
  }
  return results
}

export function routerTable(results: MicroResult[]): string {
  const us = (v: number) => (v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1))
  return [
    '| operation | statement / key | µs per op (median of 7 rounds) | best round |',
    '|---|---|---:|---:|',
    ...results.map((r) => `| ${r.what} | ${r.statement} | ${us(r.timing.medianUs)} | ${us(r.timing.minUs)} |`),
  ].join('\n')
}
