// A child table whose rows the application keeps on its parent's shard (a line item carries its order's
// customer_id), declared in the shard map (sharding.tables[].parents): joins and tied subqueries on the foreign key
// alone (`lineitems.order_id = orders.id`, as Django's select_related, Rails' joins and an EXISTS send them) run on
// each shard and are merged, and a pinned parent key pins the children joined to it. Checked against the same rows
// in one plain database; a table joined on a foreign key that is not declared is still refused.
import pg from 'pg'
import t from 'tap'
import { startWithPlainTwin } from './harness/plainTwin.js'

const SHARDING = {
  tables: [
    { name: 'customers', key: 'id', type: 'bigint' },
    { name: 'orders', key: 'customer_id', type: 'bigint' },
    { name: 'lineitems', key: 'customer_id', type: 'bigint', parents: [{ column: 'order_id', table: 'orders', references: 'id' }] },
    { name: 'notes', key: 'customer_id', type: 'bigint' },
  ],
  reference_tables: ['products'],
}
// Order ids unique across shards (one sequence here; sharding.made_columns through pgshard), each line item with its
// order's customer.
const SCHEMA = [
  'CREATE TABLE customers (id bigint PRIMARY KEY, name text, tier int)',
  'CREATE TABLE products (id int PRIMARY KEY, sku text)',
  'CREATE TABLE orders (id bigint, customer_id bigint, number text, status text, PRIMARY KEY (id))',
  'CREATE TABLE lineitems (id bigint, customer_id bigint, order_id bigint, product_id int, qty int, PRIMARY KEY (customer_id, id))',
  'CREATE TABLE notes (id bigint, customer_id bigint, order_id bigint, body text)',
  "INSERT INTO customers SELECT g, 'c' || g, g % 3 FROM generate_series(1, 12) g",
  "INSERT INTO products SELECT g, 'P' || g FROM generate_series(1, 6) g",
  "INSERT INTO orders SELECT g, 1 + g % 12, 'O' || lpad(g::text, 3, '0'), (ARRAY['new', 'paid', 'shipped'])[1 + g % 3] FROM generate_series(1, 36) g",
  'INSERT INTO lineitems SELECT g, o.customer_id, o.id, 1 + g % 6, 1 + g % 5 FROM generate_series(1, 90) g JOIN orders o ON o.id = 1 + (g * 7) % 36',
  "INSERT INTO notes SELECT g, o.customer_id, o.id, 'n' || g FROM generate_series(1, 20) g JOIN orders o ON o.id = g",
]

const { fx, proxy, plain } = await startWithPlainTwin(t, 2, { sharding: SHARDING }, SCHEMA)
const perShard = await fx.topo.queryPrimaries('SELECT count(*)::int AS n FROM lineitems', 'app')
t.ok(perShard.every((rows) => (rows[0]!.n as number) > 10), `line items on both shards: ${perShard.map((rows) => rows[0]!.n).join(', ')}`)

const rowsOf = async (client: pg.Client, sql: string, values?: unknown[]) => (await client.query({ text: sql, values, rowMode: 'array' })).rows

t.test('joins and tied subqueries on the declared foreign key: the answers of one Postgres', async (t) => {
  const queries: [string, string][] = [
    ['select_related: line items with their orders', 'SELECT li.id, o.number, li.qty FROM lineitems li INNER JOIN orders o ON li.order_id = o.id ORDER BY li.id'],
    ['annotate: items per order, orders without items kept', 'SELECT o.number, count(li.id) AS n, sum(li.qty) AS q FROM orders o LEFT OUTER JOIN lineitems li ON o.id = li.order_id GROUP BY o.id ORDER BY o.number'],
    ['EXISTS on the foreign key', 'SELECT o.number FROM orders o WHERE EXISTS (SELECT 1 FROM lineitems U0 WHERE U0.order_id = o.id AND U0.qty >= 4) ORDER BY o.number'],
    ['IN a subquery tied on it', 'SELECT o.number FROM orders o WHERE o.id IN (SELECT U0.order_id FROM lineitems U0 WHERE U0.order_id = o.id AND U0.product_id = 3) ORDER BY 1'],
    ['through the customer too, and a reference table', "SELECT DISTINCT o.number FROM orders o JOIN customers c ON o.customer_id = c.id JOIN lineitems li ON o.id = li.order_id JOIN products p ON li.product_id = p.id WHERE c.tier = 1 AND p.sku = 'P1' ORDER BY 1"],
    ['a page of orders with their items', 'SELECT o.number, li.id FROM orders o JOIN lineitems li ON li.order_id = o.id ORDER BY o.number, li.id LIMIT 10 OFFSET 5'],
  ]
  for (const [name, sql] of queries) t.same(await rowsOf(proxy, sql), await rowsOf(plain, sql), name)
})

t.test('a pinned parent key: its shard answers for the children joined to it', async (t) => {
  const sql = 'SELECT o.number, count(li.id) FROM orders o LEFT JOIN lineitems li ON o.id = li.order_id WHERE o.customer_id = $1 GROUP BY o.id ORDER BY 1'
  for (const customer of [4, 7]) t.same(await rowsOf(proxy, sql, [customer]), await rowsOf(plain, sql, [customer]), `customer ${customer}`)
  const pinned = 'SELECT li.id, o.number FROM lineitems li JOIN orders o ON li.order_id = o.id WHERE li.customer_id = 5 ORDER BY 1'
  t.same(await rowsOf(proxy, pinned), await rowsOf(plain, pinned), 'a pinned child: its parents joined')
})

t.test('a foreign key that is not declared is still refused, saying how to declare it', async (t) => {
  await t.rejects(proxy.query('SELECT n.body, o.number FROM notes n JOIN orders o ON n.order_id = o.id'), {
    code: '0A000',
    message: /a join across shards: orders is not joined on its sharding key to notes/,
    hint: /declare the foreign key in sharding\.tables\[\]\.parents/,
  })
})
