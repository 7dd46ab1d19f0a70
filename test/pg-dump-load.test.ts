// Moving a database into pgshard: a plain pg_dump of one Postgres loads through pgshard with psql. Tables and
// their serial columns' sequences are made on every shard, rows go to the shards of their keys, and the dump's
// setval() sets every shard's sequence, so rows inserted afterwards get ids no loaded row has.
import pg from 'pg'
import t from 'tap'
import { ShardMap } from '../src/router/ShardMap.js'
import { runCommand } from './harness/runCommand.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = {
  tables: [
    { name: 'customers', key: 'id', type: 'bigint' },
    { name: 'orders', key: 'customer_id', type: 'bigint' },
  ],
  reference_tables: ['countries'],
}
const fx = await startProxy(t, { topology: { shards: 2, databases: ['app', 'plain'] }, config: { sharding: SHARDING } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const plainDsn = `host=127.0.0.1 port=${fx.topo.shards[0]!.primary.port} user=${fx.pgOptions.user} dbname=plain`

t.test('a pg_dump of one database loads through pgshard; serial ids go on from the loaded ones on every shard', async (t) => {
  const plain = new pg.Client({ ...fx.pgOptions, port: fx.topo.shards[0]!.primary.port, database: 'plain' })
  await plain.connect()
  t.teardown(() => plain.end())
  await plain.query(`
    CREATE TABLE countries (id serial PRIMARY KEY, code text UNIQUE NOT NULL);
    CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, country int REFERENCES countries (id));
    CREATE TABLE orders (customer_id bigint NOT NULL REFERENCES customers (id), id bigserial, total numeric(10, 2), PRIMARY KEY (customer_id, id));
    INSERT INTO countries (code) VALUES ('FR'), ('DE'), ('JP');
    INSERT INTO customers (name, country) SELECT 'customer ' || g, 1 + g % 3 FROM generate_series(1, 60) g;
    INSERT INTO orders (customer_id, total) SELECT 1 + g % 60, g * 1.5 FROM generate_series(1, 200) g;`)
  const dump = await runCommand('pg_dump', ['--no-owner', '--no-privileges', plainDsn], { env: fx.env })
  t.equal(dump.code, 0, `pg_dump: ${dump.stderr}`)
  t.match(dump.stdout, /CREATE SEQUENCE public\.orders_id_seq/, 'the dump makes sequences apart from their tables')
  const load = await runCommand('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', fx.dsn], { env: fx.env, input: dump.stdout })
  t.equal(load.code, 0, `psql loaded the dump through pgshard: ${load.stderr}`)

  const perShard = (sql: string) => fx.topo.queryPrimaries(sql, 'app')
  const customers = await perShard('SELECT id FROM customers')
  t.equal(customers.flat().length, 60, 'every customer once')
  t.ok(customers.every((rows, shard) => rows.every((r) => map.shardForTypedHint('bigint', String(r.id)) === shard)), 'each on the shard of its id')
  const orders = await perShard('SELECT customer_id FROM orders')
  t.equal(orders.flat().length, 200)
  t.ok(orders.every((rows, shard) => rows.every((r) => map.shardForTypedHint('bigint', String(r.customer_id)) === shard)), 'each order on its customer\u2019s shard')
  t.same((await perShard('SELECT count(*)::int AS n FROM countries')).map((r) => r[0]!.n), [3, 3], 'the reference table on every shard')
  const sequences = await perShard("SELECT last_value::int AS v FROM pg_sequences WHERE sequencename = 'orders_id_seq'")
  t.same(sequences.map((r) => r[0]?.v), [200, 200], 'the sequence on every shard, set by the dump\u2019s setval()')

  const proxy = new pg.Client(fx.pgOptions)
  await proxy.connect()
  t.teardown(() => proxy.end())
  const added = await proxy.query('INSERT INTO orders (customer_id, total) VALUES (7, 1), (8, 2) RETURNING id')
  t.ok(added.rows.every((r) => Number(r.id) > 200), 'new orders get ids past the loaded ones, whatever their shard')
  const country = await proxy.query("INSERT INTO countries (code) VALUES ('BR') RETURNING id")
  t.equal(country.rows[0].id, 4)
  t.same((await perShard("SELECT id FROM countries WHERE code = 'BR'")).map((r) => r[0]?.id), [4, 4], 'a reference row gets the same serial id on every shard')
  t.same((await proxy.query('SELECT count(*) AS n, sum(total) AS s FROM orders')).rows, [{ n: '202', s: '30153.00' }], 'the rows read back across shards')
})
