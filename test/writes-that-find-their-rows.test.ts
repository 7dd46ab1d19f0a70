// An UPDATE or DELETE whose WHERE does not pin the sharding key (an ORM's save() and delete() of a row it
// addresses by its own id, a cleanup by another column) asks every shard first which holds its rows, then runs
// on that shard as a pinned write would. Rows on several shards: every one of them, all or nothing (a bulk update
// by status), unless the write names rows by a column each shard keeps unique on its own (a serial id repeats
// across shards: a delete() by id must not reach another tenant's row), which the shards' catalogs tell. Inside a
// transaction the shards it wrote count too (its own rows are not visible elsewhere), and the one-writer rule
// still holds.
import pg from 'pg'
import t from 'tap'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = {
  tables: [
    { name: 'orders', key: 'customer_id', type: 'bigint' },
    { name: 'orders_archive', key: 'customer_id', type: 'bigint' },
    { name: 'tickets', key: 'customer_id', type: 'bigint' },
    { name: 'members', key: 'customer_id', type: 'bigint' },
    { name: 'members_new', key: 'customer_id', type: 'bigint' },
  ],
}
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const shardOf = (customer: number) => map.shardForTypedHint('bigint', String(customer))
const customerOn = (shard: number, from = 1): number => {
  for (let c = from; ; c++) if (shardOf(c) === shard) return c
}
const [c0, c1] = [customerOn(0), customerOn(1)]
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
await client.query('CREATE TABLE orders (customer_id bigint NOT NULL, id bigint NOT NULL, status text, total int, PRIMARY KEY (customer_id, id))')
await client.query(`INSERT INTO orders (customer_id, id, status, total) VALUES (${c0}, 1, 'new', 10), (${c1}, 2, 'new', 20), (${c0}, 3, 'old', 30), (${c1}, 4, 'old', 40)`)
// Each shard numbers its tickets itself (serial): ids 1 and 2 on both.
await client.query('CREATE TABLE tickets (id serial PRIMARY KEY, customer_id bigint NOT NULL, status text, n int)')
await client.query(`INSERT INTO tickets (customer_id, status, n) VALUES (${c0}, 'open', 1), (${c0}, 'closed', 2), (${c1}, 'open', 3), (${c1}, 'closed', 4)`)
// Emails unique, whatever their case, on each shard.
await client.query('CREATE TABLE members (customer_id bigint NOT NULL, email text, n int)')
await client.query('CREATE UNIQUE INDEX ON members (lower(email))')
await client.query(`INSERT INTO members (customer_id, email) VALUES (${c0}, 'a@x'), (${c1}, 'A@x')`)
// The catalogs read now, as they are a moment after DDL: what the router knows of the tables' unique columns.
await fx.app.health.refreshCatalogs()
const onShards = async () =>
  (await fx.topo.queryPrimaries('SELECT id, total FROM orders ORDER BY id', 'app')).map((rows) => rows.map((r) => `${r.id}:${r.total}`))

t.test('Django\u2019s save() and delete() of a row by its id (the key set to its own value): the shard that holds it', async (t) => {
  const saved = await client.query('UPDATE "orders" SET "customer_id" = $1, "status" = $2, "total" = $3 WHERE "orders"."id" = $4', [c1, 'paid', 21, 2])
  t.equal(saved.rowCount, 1, 'UPDATE 1')
  const gone = await client.query('DELETE FROM orders WHERE id = 3 RETURNING id, current_setting(\'port\') AS port')
  t.same(gone.rows, [{ id: '3', port: String(fx.topo.shards[0]!.primary.port) }], 'DELETE … RETURNING from the shard that held it')
  t.same(await onShards(), [['1:10'], ['2:21', '4:40']])
  t.equal((await client.query('UPDATE orders SET total = 0 WHERE id = 99')).rowCount, 0, 'no shard holds it: UPDATE 0')
  await t.rejects(client.query('UPDATE orders SET customer_id = $1 WHERE id = 2', [c0]), { code: '0A000', message: /sets sharding key orders\.customer_id to a value owned by shard s0, but the statement runs on shard s1/ }, 'moving the row to another shard is still refused')
})

t.test('rows on several shards: each of them, unless named by a column each shard keeps unique on its own', async (t) => {
  // orders' id is unique only with customer_id: one Postgres would change both rows with id 7 too.
  await client.query(`INSERT INTO orders (customer_id, id, total) VALUES (${c0}, 7, 70), (${c1}, 7, 71)`)
  t.equal((await client.query('UPDATE orders SET total = total + 1 WHERE id IN (7)')).rowCount, 2, 'UPDATE 2: the row of each shard')
  t.same(await onShards(), [['1:10', '7:71'], ['2:21', '4:40', '7:72']])
  t.equal((await client.query('DELETE FROM orders WHERE id = 7')).rowCount, 2, 'DELETE 2')
  t.same(await onShards(), [['1:10'], ['2:21', '4:40']])
  // A bulk update and delete by a column that is not unique (an ORM's queryset update() and delete()).
  const bumped = await client.query("UPDATE tickets SET n = n * 10 WHERE status = 'open' RETURNING id, n")
  t.same(bumped.rows.map((r) => r.n).sort((a, b) => a - b), [10, 30], 'every open ticket, RETURNING from both shards')
  t.equal((await client.query("DELETE FROM tickets WHERE status = 'closed'")).rowCount, 2, 'DELETE 2, one per shard')
  // tickets' id is its serial primary key: id 1 is a ticket of each shard, one Postgres would have one.
  await t.rejects(client.query('DELETE FROM tickets WHERE id = 1'), {
    code: '0A000',
    message: /may change rows on shards s0, s1: a write without its key runs on one shard when it names rows by id, which each shard keeps unique on its own/,
    hint: /broadcast_writes/,
  })
  await t.rejects(client.query('UPDATE tickets SET n = 0 WHERE id = ANY($1) AND status = $2', [[1], 'open']), { code: '0A000', message: /names rows by id/ }, 'an array of ids too')
  await t.rejects(client.query("UPDATE members SET n = 1 WHERE lower(email) = 'a@x'"), {
    code: '0A000',
    message: /when a unique index of members is over an expression or part of its rows/,
  }, 'a unique index over an expression: which rows it keeps single cannot be told, refused')
  const tickets = await fx.topo.queryPrimaries('SELECT id, n FROM tickets ORDER BY id', 'app')
  t.same(tickets.map((rows) => rows.map((r) => `${r.id}:${r.n}`)), [['1:10'], ['1:30']], 'the refused writes changed nothing')
})

t.test('in a transaction: its own rows are found, and it still writes one shard', async (t) => {
  await client.query('BEGIN')
  await client.query('INSERT INTO orders (customer_id, id, total) VALUES ($1, 5, 50)', [c0])
  const own = await client.query('UPDATE orders SET total = 55 WHERE id = 5 RETURNING total')
  t.same(own.rows, [{ total: 55 }], 'a row the transaction made, seen only by it')
  t.equal((await client.query('UPDATE orders SET total = 11 WHERE id = 1')).rowCount, 1, 'another row of the same shard')
  await t.rejects(client.query('DELETE FROM orders WHERE id = 4'), { code: '0A000', message: /transaction writes shard s0; this statement may write shard s1/ }, 'a row of the other shard while the transaction writes s0: a second writer, refused')
  await client.query('ROLLBACK')
  t.same(await onShards(), [['1:10'], ['2:21', '4:40']], 'rolled back')
  await client.query('BEGIN')
  t.equal((await client.query('UPDATE orders SET total = 41 WHERE id = 4')).rowCount, 1, 'the first write of a transaction goes where its row is')
  await client.query('COMMIT')
  t.same(await onShards(), [['1:10'], ['2:21', '4:41']])
})

t.test('a locking read without the key (Django\u2019s update_or_create(), select_for_update()[:n]) goes to the shard that holds its rows', async (t) => {
  const locked = await client.query('SELECT "orders"."id", "orders"."total" FROM "orders" WHERE "orders"."id" = $1 LIMIT 21 FOR UPDATE', [2])
  t.same(locked.rows, [{ id: '2', total: 21 }], 'FOR UPDATE with LIMIT: on the one shard with the row')
  await client.query('BEGIN')
  t.same((await client.query('SELECT id, total FROM orders WHERE id = 1 LIMIT 21 FOR UPDATE')).rows, [{ id: '1', total: 10 }], 'update_or_create: the lock in a transaction')
  t.equal((await client.query('UPDATE orders SET total = 12 WHERE id = 1')).rowCount, 1, 'then the update, on the same shard')
  await client.query('COMMIT')
  t.same(await onShards(), [['1:12'], ['2:21', '4:41']])
  await client.query(`INSERT INTO orders (customer_id, id, total) VALUES (${c0}, 8, 80), (${c1}, 8, 81)`)
  t.same((await client.query('SELECT id FROM orders WHERE id = 8 LIMIT 1 FOR UPDATE')).rows, [{ id: '8' }], 'rows on both shards, outside a transaction block: each shard locks for its statement alone')
  await client.query('BEGIN')
  await t.rejects(client.query('SELECT id FROM orders WHERE id = 8 LIMIT 1 FOR UPDATE'), { code: '0A000', message: /may lock rows on shards s0, s1/, hint: /^pin the key \(WHERE customer_id = …\), or lock them in a transaction with sharding\.cross_shard_transactions: two_phase/ }, 'in a transaction that writes one shard: refused, with what a locking read can do')
  await client.query('ROLLBACK')
  await client.query(`DELETE FROM orders WHERE customer_id IN (${c0}, ${c1}) AND id = 8`)
})

t.test('with two-phase commit: saves by id on two shards in one transaction, each found inside it', async (t) => {
  const app = await ProxyApp.start(proxyConfig(fx.topo, { sharding: { ...SHARDING, cross_shard_transactions: 'two_phase' } }))
  t.teardown(() => app.stop(500))
  const c = new pg.Client({ ...fx.pgOptions, port: app.address.port })
  await c.connect()
  t.teardown(() => c.end())
  await c.query('BEGIN')
  t.equal((await c.query('UPDATE orders SET total = 13 WHERE id = 1')).rowCount, 1, 'a row of s0')
  t.equal((await c.query('UPDATE orders SET total = 42 WHERE id = 4')).rowCount, 1, 'then a row of s1: the shard written before is asked inside the transaction, and holds no such row')
  t.equal((await c.query('UPDATE orders SET total = 14 WHERE id = 1')).rowCount, 1, 'and s0 again')
  await c.query('COMMIT')
  t.same(await onShards(), [['1:14'], ['2:21', '4:42']])
  t.equal((await c.query(`UPDATE orders SET customer_id = ${c1}, total = 0 WHERE id = 999`)).rowCount, 0, 'a key set to another shard\u2019s value, no row anywhere: UPDATE 0 (Django\u2019s save() of a missing row)')
})

t.test('INSERT … SELECT whose rows take their key from the pinned key they read, or from a constant: on that shard', async (t) => {
  await client.query('CREATE TABLE orders_archive (customer_id bigint NOT NULL, id bigint NOT NULL, total int, PRIMARY KEY (customer_id, id))')
  t.teardown(() => client.query('DROP TABLE orders_archive'))
  const moved = await client.query('INSERT INTO orders_archive (customer_id, id, total) SELECT o.customer_id, o.id, o.total FROM orders o WHERE o.customer_id = $1 RETURNING id', [c1])
  const expected = (await client.query('SELECT id FROM orders WHERE customer_id = $1 ORDER BY id', [c1])).rows.map((r) => r.id)
  t.same(moved.rows.map((r) => r.id).sort(), expected, 'every row of the customer copied')
  await client.query(`INSERT INTO orders_archive (customer_id, id, total) SELECT ${c0}, 100 + count(*), sum(total) FROM orders WHERE customer_id = ${c0}`)
  const archived = await fx.topo.queryPrimaries('SELECT customer_id, id FROM orders_archive ORDER BY id', 'app')
  t.same(archived.map((rows) => rows.map((r) => Number(r.customer_id))), [[c0], expected.map(() => c1)], 'each row on its customer\'s shard')
  const all = await client.query('INSERT INTO orders_archive (customer_id, id, total) SELECT o.customer_id, o.id + 1000, o.total FROM orders o')
  const everyOrder = (await client.query('SELECT customer_id, id FROM orders ORDER BY id')).rows
  t.equal(all.rowCount, everyOrder.length, 'rows of every shard: each copied (INSERT 0 n)')
  const copied = await fx.topo.queryPrimaries('SELECT customer_id FROM orders_archive WHERE id > 1000', 'app')
  t.same(copied.map((rows) => rows.map((r) => Number(r.customer_id)).sort()), [everyOrder.filter((o) => Number(o.customer_id) === c0).map(() => c0), everyOrder.filter((o) => Number(o.customer_id) === c1).map(() => c1)], 'each on its customer\'s shard')
  await t.rejects(client.query(`INSERT INTO orders_archive (customer_id, id, total) SELECT ${c1}, o.id + 1000, o.total FROM orders o WHERE o.customer_id = ${c0}`), { code: '0A000', message: /touches shards s0, s1: a write must stay on one shard/ }, 'read on one shard, written to another: refused')
})

t.test('a table made moments ago (a migration, then a bulk write): the catalogs are read at once, not the write refused', async (t) => {
  // Made, then written at once: no timed read has run since (the first comes a second after the DDL).
  await client.query('CREATE TABLE members_new (customer_id bigint NOT NULL, id bigint NOT NULL, status text, PRIMARY KEY (customer_id, id))')
  await client.query('CREATE INDEX ON members_new (status)')
  t.teardown(() => client.query('DROP TABLE members_new'))
  await client.query(`INSERT INTO members_new (customer_id, id, status) VALUES (${c0}, 1, 'new'), (${c1}, 2, 'new'), (${c1}, 3, 'old')`)
  const bumped = await client.query("UPDATE members_new SET status = 'seen' WHERE status = 'new'")
  t.equal(bumped.rowCount, 2, 'a simple query: UPDATE 2, the row of each shard')
  const gone = await client.query('DELETE FROM members_new WHERE status = $1', ['seen'])
  t.equal(gone.rowCount, 2, 'the extended protocol: DELETE 2')
  const left = await fx.topo.queryPrimaries('SELECT id FROM members_new ORDER BY id', 'app')
  t.same(left.map((rows) => rows.map((r) => Number(r.id))), [[], [3]], 'on the shards')
  // Dropped and made again alike (a test suite's schema, a migration undone and redone): the same columns, but
  // another table, as the read's OIDs tell.
  await client.query('DROP TABLE members_new')
  await client.query('CREATE TABLE members_new (customer_id bigint NOT NULL, id bigint NOT NULL, status text, PRIMARY KEY (customer_id, id))')
  await client.query('CREATE INDEX ON members_new (status)')
  await client.query(`INSERT INTO members_new (customer_id, id, status) VALUES (${c0}, 1, 'new'), (${c1}, 2, 'new')`)
  t.equal((await client.query("UPDATE members_new SET status = 'seen' WHERE status = 'new'")).rowCount, 2, 'made again alike: UPDATE 2 at once')
})
