// GROUP BY a name that is an output alias (Sequelize with `underscored` models groups by the attribute, which is
// the alias of the underscored column) across shards: Postgres groups by a FROM column of that name if there is
// one, else by the alias; pgshard asks the shards' catalogs which, and merges the groups accordingly. Checked with
// node-postgres and postgres.js against the same rows read from each shard directly.
import pg from 'pg'
import postgres from 'postgres'
import t from 'tap'
import { startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'orders', key: 'id', type: 'bigint' }] }

const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING } })
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
await client.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text, label text, created date)')
await client.query(`INSERT INTO orders SELECT g, g % 13, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'open' END, 'L' || (g % 5), DATE '2026-01-01' + (g % 9)
  FROM generate_series(1, 600) g`)

const SEQUELIZE = 'SELECT "customer_id" AS "customerId", count("id") AS "n" FROM "orders" AS "Order" GROUP BY "customerId"'

/** The query's answer, retried while pgshard has not read the new table's columns (a catalog read follows DDL). */
async function whenColumnsKnown(sql: string, deadline = Date.now() + 20_000): Promise<pg.QueryResult> {
  for (;;) {
    try {
      return await client.query(sql)
    } catch (err) {
      if (!/has not read orders's columns/.test((err as Error).message) || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

/** Rows of `sql` run on each shard directly, each shard's own (a grouped count per shard, to be summed here). */
const perShard = async (sql: string) => (await fx.topo.queryPrimaries(sql, 'app')).flat() as Record<string, unknown>[]

function summed(rows: Record<string, unknown>[], key: string): Map<string, number> {
  const sums = new Map<string, number>()
  for (const r of rows) sums.set(String(r[key]), (sums.get(String(r[key])) ?? 0) + Number(r.n))
  return sums
}

t.test('Sequelize (underscored): GROUP BY the attribute, the alias of customer_id', async (t) => {
  const r = await whenColumnsKnown(SEQUELIZE)
  const expected = summed(await perShard('SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id'), 'customer_id')
  t.equal(r.rows.length, 13, 'one row per customer, not one per customer and shard')
  t.same(new Map(r.rows.map((row) => [String(row.customerId), Number(row.n)])), expected, 'each customer\u2019s count of all shards')
  t.same(r.fields.map((f) => f.name), ['customerId', 'n'])
})

t.test('expressions grouped by their aliases, ordered; postgres.js with a parameter', async (t) => {
  const r = await whenColumnsKnown(
    "SELECT date_trunc('month', o.created)::date AS month, to_char(o.created, 'DD') AS day, count(*) AS n FROM orders o WHERE o.status = 'paid' GROUP BY month, day ORDER BY day",
  )
  const expected = summed(await perShard("SELECT to_char(created, 'DD') AS day, count(*) AS n FROM orders WHERE status = 'paid' GROUP BY day"), 'day')
  t.same(r.rows.map((row) => row.day), [...expected.keys()].sort(), 'one row per day, in order')
  t.same(new Map(r.rows.map((row) => [row.day, Number(row.n)])), expected)
  const sql = postgres(fx.url, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const rows = await sql`SELECT upper(label) AS tag, count(*)::int AS n FROM orders WHERE status = ${'open'} GROUP BY tag`
  const direct = summed(await perShard("SELECT upper(label) AS tag, count(*) AS n FROM orders WHERE status = 'open' GROUP BY 1"), 'tag')
  t.same(new Map(rows.map((row) => [row.tag, row.n])), direct, 'extended protocol with a parameter: the same groups')
})

t.test('a name that is also a column of the table: refused, since Postgres groups by the column', async (t) => {
  await t.rejects(whenColumnsKnown('SELECT upper(label) AS status, count(*) FROM orders GROUP BY status'), {
    code: '0A000', message: /GROUP BY status in a read across shards: orders has a column status, which Postgres groups by/,
  })
  t.equal((await client.query('SELECT upper(label) AS status, count(*) FROM orders GROUP BY 1')).rows.length, 5, 'by position: the output column')
})

t.test('after DDL adds a column of the alias\u2019s name, the alias is no longer taken: refused, never merged by the wrong column', async (t) => {
  await client.query('ALTER TABLE orders ADD COLUMN "customerId" int')
  await t.rejects(client.query(SEQUELIZE), { code: '0A000', message: /GROUP BY customerId in a read across shards/ }, 'right after the DDL')
  await t.rejects(whenColumnsKnown(SEQUELIZE), { code: '0A000', message: /orders has a column customerId/ }, 'once the catalogs are read')
  await client.query('ALTER TABLE orders DROP COLUMN "customerId"')
  t.equal((await whenColumnsKnown(SEQUELIZE)).rows.length, 13, 'dropped again: the alias')
  await client.query('CREATE INDEX ON orders (status)')
  await client.query('VACUUM ANALYZE orders')
  await client.query("GRANT SELECT ON orders TO PUBLIC")
  t.equal((await client.query(SEQUELIZE)).rows.length, 13, 'DDL that changes no column (an index, VACUUM, GRANT) leaves the columns known')
})
