// Views over sharded tables, as the routing engine sees them: a CREATE VIEW over sharded tables runs on every shard,
// a statement reading such a view in FROM is routed as a read of the view's query (its filters pin the tables
// under the view), and DROP, RENAME and the shards' catalogs keep what pgshard knows up to date.
import t, { type Test } from 'tap'
import { ConfigSchema } from '../src/config/ConfigSchema.js'
import { StatementRouter } from '../src/proxy/StatementRouter.js'
import { RoleSearchPaths } from '../src/router/RoleSearchPaths.js'
import type { Route, RoutingContext } from '../src/router/Route.js'
import { initSqlParser } from '../src/router/SqlParser.js'
import { threeShardConfig } from './harness/threeShardConfig.js'

const config = ConfigSchema.parse(
  threeShardConfig({
    default_shard: 's1',
    tables: [
      { name: 'customers', key: 'id', type: 'bigint' },
      { name: 'orders', key: 'customer_id', type: 'bigint' },
    ],
    reference_tables: ['countries'],
  }),
)

const CTX: RoutingContext = { inTransaction: false, txReadOnly: false, searchPath: ['app', 'public'] }

/** Routes `sql` as a session does: the literals the cache took out of the text are bound to their parameters. */
function route(engine: StatementRouter, sql: string, ctx: Partial<RoutingContext> = {}): Route {
  const analyzed = engine.analyze(sql)
  const literal = (n: number) => analyzed.literals[n - analyzed.firstParam]
  return engine.route(analyzed, (n) => (literal(n) === undefined ? undefined : { value: literal(n)!, format: 0, typeOid: 0 }), { ...CTX, ...ctx })
}

/** A key the ring places on `shard`. */
function keyOn(engine: StatementRouter, shard: number): string {
  for (let i = 1; ; i++) if (engine.map.ring.shardFor(String(i)) === shard) return String(i)
}

function expectRoutes(t: Test, engine: StatementRouter, cases: [string, Record<string, unknown>][], ctx: Partial<RoutingContext> = {}): void {
  for (const [sql, expect] of cases) t.match(route(engine, sql, ctx), expect, sql)
}

t.before(initSqlParser)

t.test('a view made through pgshard over sharded tables is made on every shard and read as its query', async (t) => {
  const engine = new StatementRouter(config)
  const K0 = keyOn(engine, 0)
  const K2 = keyOn(engine, 2)
  expectRoutes(t, engine, [
    ["CREATE VIEW open_orders AS SELECT o.id, o.customer_id, o.total FROM orders o WHERE o.status = 'open'", { kind: 'broadcast', reason: /every shard/ }],
    ['CREATE VIEW customer_totals (customer, n, total) AS SELECT customer_id, count(*), sum(total) FROM open_orders GROUP BY customer_id', { kind: 'broadcast' }],
    ['CREATE VIEW rich AS SELECT c.id, c.name, t.total FROM customers c JOIN customer_totals t ON t.customer = c.id WHERE t.total > 100 WITH LOCAL CHECK OPTION', { kind: 'broadcast' }],
  ])
  expectRoutes(t, engine, [
    [`SELECT * FROM open_orders WHERE customer_id = ${K0}`, { kind: 'shard', shard: 0, reason: /orders.customer_id pinned/ }],
    [`SELECT * FROM open_orders v WHERE v.customer_id IN (${K2}, ${K2})`, { kind: 'shard', shard: 2 }],
    [`SELECT c.name, v.total FROM customers c JOIN open_orders v ON v.customer_id = c.id WHERE c.id = ${K2}`, { kind: 'shard', shard: 2 }],
    [`SELECT * FROM customer_totals WHERE customer = ${K0}`, { kind: 'shard', shard: 0 }],
    [`SELECT * FROM rich WHERE id = ${K2}`, { kind: 'shard', shard: 2 }],
    [`SELECT * FROM public.open_orders WHERE customer_id = ${K0}`, { kind: 'shard', shard: 0 }],
    [
      'SELECT count(*), sum(total) FROM open_orders',
      { kind: 'scatter', plan: { shardSql: `SELECT count(*), sum(total) FROM (SELECT o.id, o.customer_id, o.total FROM orders o WHERE o.status = 'open') AS "open_orders"` } },
    ],
    // Grouped by the key of a view it reads: followed through the inner view's output column, each group is whole.
    ['SELECT customer, n FROM customer_totals ORDER BY n DESC LIMIT 3', { kind: 'scatter' }],
    ['SELECT customer, n FROM customer_totals t JOIN open_orders o ON o.total = t.n', { kind: 'evaluate', refused: /is not joined on its sharding key/ }],
    ['CREATE VIEW order_counts AS SELECT o.customer_id, count(*) AS n FROM orders o GROUP BY o.customer_id', { kind: 'broadcast' }],
    ['SELECT customer_id, n FROM order_counts ORDER BY n DESC, customer_id LIMIT 3', { kind: 'scatter' }],
    [`SELECT * FROM orders o WHERE o.customer_id = ${K0} AND o.id IN (SELECT v.id FROM open_orders v WHERE v.customer_id = ${K0})`, { kind: 'shard', shard: 0 }],
    [`WITH open_orders AS (SELECT 1 AS customer_id) SELECT * FROM open_orders`, { kind: 'shard', shard: 1, reason: /no table/ }],
    [`UPDATE open_orders SET total = 0 WHERE customer_id = ${K0}`, { kind: 'error', code: '0A000', hint: /write orders itself/ }],
    [`SELECT * FROM ONLY open_orders`, { kind: 'error', code: '0A000', message: /view open_orders reads sharded table orders/ }],
  ])
  const deep = `SELECT * FROM open_orders WHERE ${'('.repeat(10_000)}true${')'.repeat(10_000)}`
  t.equal(engine.analyze(deep).plan, null, 'a statement nested too deep to analyze goes to the server as it is (Postgres answers), nothing thrown')
  t.match(route(engine, 'SELECT * FROM open_orders', { searchPath: ['other'] }), { kind: 'error', code: '0A000', message: /read as the query of public.open_orders, which the search_path \(other\) does not show/ })
})

t.test('CREATE VIEW that reads a table only the default shard has, and materialized views: refused with what to do', async (t) => {
  const engine = new StatementRouter(config)
  expectRoutes(t, engine, [
    ['CREATE VIEW mixed AS SELECT o.id, l.note FROM orders o JOIN local_notes l ON l.id = o.id', { kind: 'error', code: '0A000', hint: /may read only sharded and reference tables and views over them: local_notes is only on shard s1/ }],
    ['CREATE MATERIALIZED VIEW mv AS SELECT * FROM orders', { kind: 'error', code: '0A000', hint: /would hold one shard\u2019s rows/ }],
    ['CREATE VIEW by_country AS SELECT c.id, k.name FROM customers c JOIN countries k ON k.code = c.country', { kind: 'broadcast' }],
    ['CREATE VIEW local_view AS SELECT * FROM local_notes', { kind: 'shard', shard: 1 }],
  ])
  // A refused CREATE makes no view: its name stays a table of the default shard.
  t.match(route(engine, 'SELECT * FROM mixed'), { kind: 'shard', shard: 1, reason: /unsharded table mixed/ })
  t.match(route(engine, 'SELECT * FROM local_view'), { kind: 'shard', shard: 1 })
})

t.test('DROP VIEW and ALTER VIEW … RENAME TO: every shard, and pgshard follows', async (t) => {
  const engine = new StatementRouter(config)
  const K0 = keyOn(engine, 0)
  expectRoutes(t, engine, [
    ['CREATE VIEW v1 AS SELECT * FROM orders', { kind: 'broadcast' }],
    ['ALTER VIEW v1 RENAME TO v2', { kind: 'broadcast' }],
    [`SELECT * FROM v2 WHERE customer_id = ${K0}`, { kind: 'shard', shard: 0 }],
    [`SELECT * FROM v1 WHERE customer_id = ${K0}`, { kind: 'shard', shard: 1, reason: /unsharded table v1/ }],
    ['CREATE OR REPLACE VIEW v2 AS SELECT * FROM customers', { kind: 'broadcast' }],
    [`SELECT * FROM v2 WHERE id = ${K0}`, { kind: 'shard', shard: 0, reason: /customers.id pinned/ }],
    ['DROP VIEW v2', { kind: 'broadcast' }],
    [`SELECT * FROM v2 WHERE id = ${K0}`, { kind: 'shard', shard: 1, reason: /unsharded table v2/ }],
  ])
})

t.test('views the shards\u2019 catalogs hold: read as their (schema-qualified) queries; materialized ones refused', async (t) => {
  const engine = new StatementRouter(config)
  const K2 = keyOn(engine, 2)
  const catalog = {
    functions: [],
    searchPaths: new RoleSearchPaths(new Map()),
    partitions: [],
    views: [
      { view: { schema: 'public', name: 'paid' }, definition: " SELECT o.id,\n    o.customer_id\n   FROM public.orders o\n  WHERE (o.status = 'paid'::text);", materialized: false },
      { view: { schema: 'public', name: 'snapshot' }, definition: ' SELECT orders.id FROM public.orders;', materialized: true },
    ],
    types: [],
    typeNames: [],
    columns: [],
    collations: [],
    readSince: Date.now(),
  }
  engine.learnCatalog(catalog)
  engine.analyze('SELECT count(*) FROM paid')
  engine.learnCatalog({ ...catalog, types: [{ oid: 16400, labels: ['a', 'b'] }] })
  t.equal(engine.analyze('SELECT count(*) FROM paid').hit, true, 'a catalog read that changes no view keeps the plan cache')
  expectRoutes(t, engine, [
    [`SELECT id FROM paid WHERE customer_id = ${K2}`, { kind: 'shard', shard: 2 }],
    ['SELECT count(*) FROM paid', { kind: 'scatter', plan: { shardSql: "SELECT count(*) FROM (SELECT o.id,\n    o.customer_id\n   FROM public.orders o\n  WHERE (o.status = 'paid'::text)) AS \"paid\"" } }],
    ['SELECT * FROM snapshot', { kind: 'error', code: '0A000', message: /view snapshot reads sharded table orders/ }],
    ['REFRESH MATERIALIZED VIEW snapshot', { kind: 'broadcast' }],
  ])
  engine.learnCatalog({ functions: [], searchPaths: new RoleSearchPaths(new Map()), partitions: [], views: [], types: [], typeNames: [], columns: [], collations: [], readSince: Date.now() })
  t.match(route(engine, `SELECT id FROM paid WHERE customer_id = ${K2}`), { kind: 'shard', shard: 1, reason: /unsharded table paid/ }, 'a view gone from the catalogs is forgotten')
  t.equal(engine.analyze('SELECT count(*) FROM paid').hit, false, 'one that drops a view clears it')
})

t.test('a catalog read that began before DDL on a view neither forgets the view made nor brings back the one dropped', async (t) => {
  const engine = new StatementRouter(config)
  const paid = { view: { schema: 'public', name: 'paid' }, definition: ' SELECT o.id, o.customer_id FROM public.orders o;', materialized: false }
  const read = (views: (typeof paid)[], readSince: number) =>
    engine.learnCatalog({ functions: [], searchPaths: new RoleSearchPaths(new Map()), partitions: [], views, types: [], typeNames: [], columns: [], collations: [], readSince })
  read([paid], Date.now())
  const before = Date.now() - 1
  route(engine, 'CREATE VIEW fresh AS SELECT id, customer_id FROM orders')
  route(engine, 'DROP VIEW paid')
  read([paid], before)
  t.match(route(engine, 'SELECT count(*) FROM fresh'), { kind: 'scatter' }, 'the view made since is kept')
  t.match(route(engine, 'SELECT count(*) FROM paid'), { kind: 'shard', reason: /unsharded table paid/ }, 'the view dropped since stays dropped')
  read([], Date.now() + 60_000)
  t.match(route(engine, 'SELECT count(*) FROM fresh'), { kind: 'shard', reason: /unsharded table fresh/ }, 'a read that began well after the CREATE and does not list it: forgotten (the servers refused it)')
})
