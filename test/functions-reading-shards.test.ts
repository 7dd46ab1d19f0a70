// A user function whose body reads a sharded table, called from a statement that names no sharded table, would
// run on one shard and read only its rows (a silent part of the answer). pgshard refuses such a call, and runs
// it where a hint says. It knows the body from the shards' catalogs and from a CREATE it routed.
import pg from 'pg'
import t from 'tap'
import { ShardMap } from '../src/router/ShardMap.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'orders', key: 'customer_id', type: 'bigint' }], reference_tables: ['countries'] }
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())

t.test('a function created through pgshard that reads a sharded table: called alone, refused; with a shard hint, answered there', async (t) => {
  await client.query('CREATE TABLE orders (customer_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (customer_id, id))')
  await client.query('CREATE TABLE countries (code text PRIMARY KEY)')
  const c1 = [1, 2, 3, 4, 5, 6].find((c) => map.shardForTypedHint('bigint', String(c)) === 1)!
  await client.query(`INSERT INTO orders (customer_id, id) VALUES (${c1}, 1), (${c1}, 2), (${c1}, 3)`)
  await client.query('CREATE FUNCTION customer_order_count(cid bigint) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM orders WHERE customer_id = cid $$')
  await client.query('CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT x * 2 $$')
  await client.query('CREATE PROCEDURE purge_orders() LANGUAGE plpgsql AS $$ BEGIN DELETE FROM public.orders; END $$')
  await t.rejects(client.query('SELECT customer_order_count($1)', [c1]), {
    code: '0A000',
    message: /customer_order_count\(\) reads sharded table orders \(its body names it\), and the statement names no sharded table/,
    hint: /pgshard: shard=NAME/,
  }, 'alone it would have answered 0 from the default shard')
  await t.rejects(client.query('SELECT code, customer_order_count(1) FROM countries'), { code: '0A000' }, 'from a statement that reads a reference table only, too')
  await t.rejects(client.query('CALL purge_orders()'), { code: '0A000', message: /purge_orders\(\) reads sharded table orders/ }, 'a procedure')
  const hinted = await client.query(`/* pgshard: shard=s1 */ SELECT customer_order_count(${c1}) AS n`)
  t.same(hinted.rows, [{ n: '3' }], 'on the shard a hint names')
  const pinned = await client.query(`SELECT customer_order_count(customer_id) AS n FROM orders WHERE customer_id = ${c1} LIMIT 1`)
  t.same(pinned.rows, [{ n: '3' }], 'called from a statement pinned to the key: its shard')
  t.same((await client.query('SELECT twice(21) AS v')).rows, [{ v: 42 }], 'a function that reads no sharded table runs as before')
})

t.test('a DO block that names a sharded table: refused, or run on the shard a hint names', async (t) => {
  const block = "DO $$ DECLARE n int; BEGIN UPDATE public.orders SET id = id WHERE customer_id = 1; GET DIAGNOSTICS n = ROW_COUNT; RAISE NOTICE 'updated % rows', n; END $$"
  await t.rejects(client.query(block), { code: '0A000', message: /the DO block reads sharded table orders/ })
  await client.query(`/* pgshard: shard=s1 */ ${block}`)
  await client.query("DO $$ BEGIN PERFORM 1; END $$")
  t.pass('a DO block that names no sharded table runs as before')
})

t.test('a view over a sharded table made shard by shard: read alone, as its query across shards; with a shard hint, that shard\u2019s rows', async (t) => {
  for (const shard of ['s0', 's1']) await client.query(`/* pgshard: shard=${shard} */ CREATE VIEW order_counts AS SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id`)
  const all = await client.query('SELECT sum(n) AS total FROM order_counts')
  t.same(all.rows, [{ total: '3' }], 'alone: read as its query, every shard\u2019s rows merged')
  const s0 = await client.query('/* pgshard: shard=s0 */ SELECT count(*)::int AS n FROM order_counts')
  t.same(s0.rows, [{ n: 0 }], 'shard by shard with a hint: s0 has none of the rows')
  await t.rejects(client.query('UPDATE order_counts SET n = 0'), { code: '0A000', message: /view order_counts reads sharded table orders/, hint: /write orders itself/ }, 'written through: refused')
})

t.test('a view made on the shards directly: learnt from the catalogs, and read as its query', async (t) => {
  for (const s of fx.topo.shards) {
    await fx.topo.query(s.primary, 'CREATE VIEW big_orders AS SELECT * FROM public.orders WHERE id > 1', 'app')
    await fx.topo.query(s.primary, `GRANT SELECT ON big_orders TO ${fx.pgOptions.user}`, 'app')
  }
  await fx.app.health.refreshCatalogs()
  const all = await client.query('SELECT count(*) AS n FROM big_orders')
  t.same(all.rows, [{ n: '2' }], 'every shard\u2019s rows')
})

t.test('a query that creates a function writing a sharded table and calls it at once (Sequelize findOrCreate): refused, nothing stored twice', async (t) => {
  const before = await client.query('SELECT count(*) AS n FROM orders')
  const query = [
    'CREATE OR REPLACE FUNCTION pg_temp.testfunc(OUT response orders, OUT e text) RETURNS RECORD AS $f$ BEGIN INSERT INTO orders (customer_id, id) VALUES (2, 900) RETURNING * INTO response; EXCEPTION WHEN unique_violation THEN GET STACKED DIAGNOSTICS e = PG_EXCEPTION_DETAIL; END $f$ LANGUAGE plpgsql',
    'SELECT (testfunc.response).*, testfunc.e FROM pg_temp.testfunc()',
    'DROP FUNCTION IF EXISTS pg_temp.testfunc()',
  ].join('; ')
  // Its statements run one by one in one transaction, which without two-phase commit cannot make the function on
  // every shard; run together on every shard, the call would store the row on each.
  await t.rejects(client.query(query), { code: '0A000', message: /^the statements of one query run as one transaction, as on one server, and .*this statement needs every shard \(DDL naming no table/ }, 'refused at its CREATE FUNCTION')
  const after = await client.query('SELECT count(*) AS n FROM orders')
  t.same(after.rows, before.rows, 'no row was stored')
})
