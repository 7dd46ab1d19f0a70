// An UPDATE or DELETE without its key that reads another sharded table only in subqueries tied to its rows on
// co-located keys (`UPDATE customers c SET order_count = (SELECT count(*) FROM orders o WHERE o.customer_id = c.id)`,
// `DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND …)`, or on a foreign
// key declared as a parent, or joined so by UPDATE … FROM and DELETE … USING): each shard writes its own rows
// reading its own rows of the other table, all or nothing, with the summed count and every shard's RETURNING rows. Checked against the same rows in one plain
// database; a tie on other columns, or a write naming rows by an id each shard numbers, stays refused.
import pg from 'pg'
import t from 'tap'
import { startWithPlainTwin } from './harness/plainTwin.js'

const SHARDING = {
  tables: [
    { name: 'customers', key: 'id', type: 'bigint' },
    { name: 'orders', key: 'customer_id', type: 'bigint' },
    { name: 'lineitems', key: 'customer_id', type: 'bigint', parents: [{ column: 'order_id', table: 'orders', references: 'id' }] },
  ],
  reference_tables: ['tiers'],
  cross_shard_transactions: 'two_phase',
}
const SCHEMA = [
  'CREATE TABLE customers (id bigint PRIMARY KEY, tier int, order_count int, note text)',
  'CREATE TABLE tiers (tier int PRIMARY KEY, label text)',
  "INSERT INTO tiers VALUES (0, 'basic'), (1, 'gold'), (2, 'platinum')",
  'CREATE TABLE orders (id bigint, customer_id bigint, status text, items int, PRIMARY KEY (customer_id, id))',
  'CREATE TABLE lineitems (id bigint, customer_id bigint, order_id bigint, qty int, PRIMARY KEY (id))',
  'INSERT INTO customers SELECT g, g % 3, 0, NULL FROM generate_series(1, 30) g',
  "INSERT INTO orders SELECT g, 1 + g % 30, (ARRAY['new', 'paid', 'old'])[1 + g % 3], 0 FROM generate_series(1, 80) g",
  'INSERT INTO lineitems SELECT g, o.customer_id, o.id, 1 + g % 4 FROM generate_series(1, 150) g JOIN orders o ON o.id = 1 + (g * 7) % 80',
]

const { fx, proxy, plain } = await startWithPlainTwin(t, 2, { sharding: SHARDING }, SCHEMA)
await fx.app.health.refreshCatalogs()
const perShard = await fx.topo.queryPrimaries('SELECT count(*)::int AS n FROM orders', 'app')
t.ok(perShard.every((rows) => (rows[0]!.n as number) > 10), `orders on both shards: ${perShard.map((rows) => rows[0]!.n).join(', ')}`)

const rowsOf = async (client: pg.Client, sql: string) => (await client.query({ text: sql, rowMode: 'array' })).rows
const both = async (sql: string) => {
  const [a, b] = [await proxy.query(sql), await plain.query(sql)]
  return { proxy: { count: a.rowCount, rows: a.rows }, plain: { count: b.rowCount, rows: b.rows } }
}

t.test('a counter recomputed for every customer, from its own orders', async (t) => {
  const res = await both('UPDATE customers c SET order_count = (SELECT count(*) FROM orders o WHERE o.customer_id = c.id)')
  t.equal(res.proxy.count, 30, 'every customer, on both shards')
  t.same(res.proxy.count, res.plain.count)
  const check = 'SELECT id, order_count FROM customers ORDER BY id'
  t.same(await rowsOf(proxy, check), await rowsOf(plain, check), 'each count as one database computes it')
})

t.test('through a foreign key declared as a parent', async (t) => {
  const res = await both('UPDATE orders o SET items = (SELECT coalesce(sum(li.qty), 0) FROM lineitems li WHERE li.order_id = o.id) WHERE o.status <> $$old$$')
  t.same(res.proxy.count, res.plain.count)
  const check = 'SELECT id, items FROM orders ORDER BY id'
  t.same(await rowsOf(proxy, check), await rowsOf(plain, check))
})

t.test('DELETE … WHERE EXISTS tied on the keys, with RETURNING', async (t) => {
  const sql = "DELETE FROM orders o WHERE o.status = 'old' AND EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.tier = 0) RETURNING o.id"
  const res = await both(sql)
  t.ok((res.proxy.count ?? 0) > 0, `rows deleted: ${res.proxy.count}`)
  t.same(res.proxy.count, res.plain.count)
  t.same(res.proxy.rows.map((r) => r.id).sort(), res.plain.rows.map((r) => r.id).sort(), 'every shard\u2019s RETURNING rows')
  const check = 'SELECT id FROM orders ORDER BY id'
  t.same(await rowsOf(proxy, check), await rowsOf(plain, check))
})

t.test('UPDATE … FROM and DELETE … USING joined on the keys, pinned or not', async (t) => {
  const update = await both("UPDATE orders o SET status = 'vip' FROM customers c WHERE c.id = o.customer_id AND c.tier = 1 AND o.status = 'new'")
  t.ok((update.proxy.count ?? 0) > 0, `rows updated: ${update.proxy.count}`)
  t.same(update.proxy.count, update.plain.count)
  const pinned = await both('UPDATE customers c SET note = o.status FROM orders o WHERE o.customer_id = c.id AND c.id = 4 AND o.id = (SELECT min(id) FROM orders WHERE customer_id = 4)')
  t.same(pinned.proxy.count, pinned.plain.count, 'pinned: the one shard')
  const removed = await both("DELETE FROM lineitems li USING orders o WHERE o.id = li.order_id AND o.status = 'vip' RETURNING li.id")
  t.same(removed.proxy.count, removed.plain.count, 'DELETE … USING through a declared parent')
  const labels = await both("UPDATE customers c SET note = t.label FROM tiers t WHERE t.tier = c.tier AND t.label <> 'basic'")
  t.same(labels.proxy.count, labels.plain.count, 'UPDATE … FROM a reference table: every shard its own rows')
  for (const check of ['SELECT id, status FROM orders ORDER BY id', 'SELECT id, note FROM customers ORDER BY id', 'SELECT id FROM lineitems ORDER BY id']) {
    t.same(await rowsOf(proxy, check), await rowsOf(plain, check), check)
  }
})

t.test('still refused: a tie on other columns, and rows named by an id each shard numbers', async (t) => {
  await t.rejects(proxy.query('UPDATE customers c SET note = $$x$$ WHERE EXISTS (SELECT 1 FROM orders o WHERE o.id = c.id)'), {
    code: '0A000',
    message: /a write must stay on one shard/,
  })
  await t.rejects(proxy.query('DELETE FROM lineitems li WHERE li.id = 7 AND EXISTS (SELECT 1 FROM orders o WHERE o.id = li.order_id)'), {
    code: '0A000',
    message: /names rows by id, which each shard keeps unique on its own/,
  })
})
