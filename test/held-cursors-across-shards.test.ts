// SQL cursors declared WITH HOLD outside a transaction block whose query reads several shards: what Django's
// iterator() and psycopg's named cursors send in autocommit. Each shard holds its part of the rows on a
// connection the client keeps until CLOSE (or until it leaves); the rows come merged in the query's order a FETCH
// at a time, and the client's other statements are pooled meanwhile.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { assertDriverChecks } from './harness/driverChecks.js'
import { proxyClient } from './harness/proxyClient.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'items', key: 'id', type: 'integer' as const }] }
// More rows than a shard sends per fetch, so that the merge reads each shard in several batches.
const ROWS = 2600
const ids = (r: pg.QueryResult) => r.rows.map((row) => row.id as number)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING, pool: { size: 3 } } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const shardOf = (k: number) => map.ring.shardFor(canonicalKey('bigint', String(k), 0, 0))
const onShard = (shard: number) => range(1, ROWS).filter((k) => shardOf(k) === shard)
// A key of each shard among the rows the cursors below read after their first fetches.
const [k0, k1] = [onShard(0)[20]!, onShard(1)[20]!]

const setup = new pg.Client(fx.pgOptions)
await setup.connect()
await setup.query('CREATE TABLE items (id int PRIMARY KEY, label text)')
await setup.query(`INSERT INTO items (id, label) SELECT g, 'item ' || g FROM generate_series(1, ${ROWS}) g`)
await setup.end()


/** Server connections lent out of the pools now. */
const lent = () => fx.app.proxy.pools.all().reduce((n, e) => n + e.pool.counts.active, 0)

/** Server sessions, on every shard, whose last statement was on a cursor pgshard declared WITH HOLD. */
async function holdingSessions(): Promise<number> {
  let n = 0
  for (const s of fx.topo.shards) {
    const [row] = await fx.topo.query(s.primary, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'app' AND query LIKE '%pgshard_hold_%' AND pid <> pg_backend_pid()")
    n += row.n as number
  }
  return n
}

t.test('simple queries: a WITH HOLD cursor over both shards read in parts, in order, writes between', async (t) => {
  const c = await proxyClient(t, fx)
  const declared = await c.query('DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT id, label FROM items WHERE id > 2 ORDER BY id DESC')
  t.equal(declared.command, 'DECLARE', 'DECLARE CURSOR answered outside a transaction block')
  t.equal(lent(), 2, 'the cursor keeps one connection to each shard')
  const first = await c.query('FETCH FORWARD 1 FROM c')
  t.same([first.command, first.rowCount, ids(first)], ['FETCH', 1, [ROWS]], 'the first row of both shards merged')
  t.same(first.fields.map((f) => f.name), ['id', 'label'], 'described as the query')
  t.same(ids(await c.query('FETCH FORWARD 1500 FROM c')), range(ROWS - 1500, ROWS - 1).reverse(), 'the next 1500, past a batch of each shard')
  // Its rows were kept when it was declared: writes since do not show in them, as on a server.
  const written = await c.query(`UPDATE items SET label = 'changed' WHERE id IN (${k0}, ${k1})`)
  t.equal(written.rowCount, 2, 'the client writes both shards while the cursor is open')
  t.same((await c.query('SELECT count(*)::int AS n FROM items')).rows, [{ n: ROWS }], 'and reads both')
  const moved = await c.query('MOVE FORWARD 10 IN c')
  t.same([moved.command, moved.rowCount], ['MOVE', 10], 'MOVE skips rows')
  const rest = await c.query('FETCH ALL FROM c')
  t.same(ids(rest), range(3, ROWS - 1511).reverse(), 'FETCH ALL: the rest, in order')
  t.same(rest.rows.filter((r) => r.id === k0 || r.id === k1).map((r) => r.label).sort(), [`item ${k0}`, `item ${k1}`].sort(), 'rows as they were at DECLARE')
  t.same((await c.query('FETCH NEXT FROM c')).rowCount, 0, 'past its end, no rows')
  t.equal((await c.query('CLOSE c')).command, 'CLOSE', 'CLOSE CURSOR answered')
  t.equal(lent(), 0, 'CLOSE gives its connections back')
  t.ok(await waitFor(async () => (await holdingSessions()) === 0, 5000), 'reset before anyone else gets them (its shards\u2019 cursors end)')
  await t.rejects(c.query('FETCH 1 FROM c'), { code: '34000', message: 'cursor "c" does not exist' }, 'gone after CLOSE')
  await c.query(`UPDATE items SET label = 'item ' || id WHERE id IN (${k0}, ${k1})`)
})

t.test('aggregates and LIMIT merge through it, and it outlives transactions the client runs later', async (t) => {
  const c = await proxyClient(t, fx)
  await c.query('DECLARE a CURSOR WITH HOLD FOR SELECT length(label) AS len, count(*)::int AS n FROM items GROUP BY 1 ORDER BY 1')
  await c.query('DECLARE l CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id DESC LIMIT 4 OFFSET 1')
  await c.query('BEGIN')
  t.same((await c.query('FETCH 1 FROM a')).rows, [{ len: 6, n: 9 }], 'groups merged across shards, inside a transaction')
  await c.query(`UPDATE items SET label = label WHERE id = ${k0}`)
  await c.query('ROLLBACK')
  t.same((await c.query('FETCH ALL FROM a')).rows, [{ len: 7, n: 90 }, { len: 8, n: 900 }, { len: 9, n: 1601 }], 'a rollback after it leaves it open')
  t.same(ids(await c.query('FETCH ALL FROM l')), [ROWS - 1, ROWS - 2, ROWS - 3, ROWS - 4], 'LIMIT and OFFSET over the merged order')
  await t.rejects(c.query('DECLARE l CURSOR WITH HOLD FOR SELECT id FROM items'), { code: '42P03', message: 'cursor "l" already exists' }, 'a name in use')
  t.equal(lent(), 4, 'two cursors, two connections each')
  t.equal((await c.query('CLOSE ALL')).command, 'CLOSE', 'CLOSE ALL')
  t.equal(lent(), 0, 'closes them all')
  await t.rejects(c.query('FETCH 1 FROM a'), { code: '34000' }, 'gone')
})

t.test('what such a cursor cannot do is refused, and the client goes on', async (t) => {
  const c = await proxyClient(t, fx)
  await t.rejects(c.query('DECLARE s SCROLL CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id'), { code: '0A000', message: /^SCROLL of cursor "s", whose query reads several shards/ }, 'SCROLL')
  await c.query('BEGIN')
  await t.rejects(c.query('DECLARE h CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id'), { code: '0A000', message: /^WITH HOLD inside a transaction block of cursor "h"/ }, 'inside a transaction block (pgshard cannot keep a transaction\u2019s connections)')
  await c.query('ROLLBACK')
  await c.query('DECLARE b CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id')
  t.same(ids(await c.query('FETCH 2 FROM b')), [1, 2])
  await t.rejects(c.query('FETCH PRIOR FROM b'), { code: '0A000', message: /only moves forward/ }, 'backward')
  t.same(ids(await c.query('FETCH 1 FROM b')), [3], 'the refusal left it where it was')
  await t.rejects(c.query(`DECLARE z CURSOR WITH HOLD FOR SELECT id / (id - ${k1}) AS q FROM items`), { code: '22012' }, 'a shard\u2019s error at DECLARE')
  t.equal(lent(), 2, 'gives that cursor\u2019s connections back at once')
  await c.query('DISCARD ALL')
  t.equal(lent(), 0, 'DISCARD ALL closes every cursor')
  await t.rejects(c.query('FETCH 1 FROM b'), { code: '34000' })
})

t.test('with its connections held, the pools still serve the client and others', async (t) => {
  const c = await proxyClient(t, fx)
  await c.query('DECLARE busy CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id')
  await c.query('DECLARE busier CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id DESC')
  const others = await Promise.all([proxyClient(t, fx), proxyClient(t, fx), proxyClient(t, fx)])
  const counts = await Promise.all([c, ...others].map(async (o) => (await o.query('SELECT count(*)::int AS n FROM items')).rows[0].n))
  t.same(counts, [ROWS, ROWS, ROWS, ROWS], 'every client reads both shards (pool size 3: one connection of each left)')
  t.same(ids(await c.query('FETCH 2 FROM busier')), [ROWS, ROWS - 1])
  t.same(ids(await c.query('FETCH 3 FROM busy')), [1, 2, 3])
  await c.query('CLOSE ALL')
})

t.test('a client that leaves with the cursor open: its connections come back reset', async (t) => {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  await c.query('DECLARE gone CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id')
  await c.query('FETCH 1200 FROM gone')
  t.ok((await holdingSessions()) >= 2, 'each shard holds its cursor')
  await c.end()
  t.ok(await waitFor(async () => lent() === 0 && (await holdingSessions()) === 0, 5000), 'given back and reset')
  const next = await proxyClient(t, fx)
  t.same((await next.query('SELECT count(*)::int AS n FROM items')).rows, [{ n: ROWS }], 'the next client reads both shards')
})

t.test('psycopg 3 named cursors WITH HOLD in autocommit (Django iterator())', async (t) => {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'python', 'psycopg_held_cursors.py')
  await assertDriverChecks(t, '/usr/bin/python3', [script, `${fx.dsn} password=${fx.pgOptions.password}`, String(ROWS), String(k0), String(k1)], [
    'a cursor WITH HOLD over both shards in autocommit, in order, with writes between fetches',
    "iterating it in batches, as Django's iterator() does",
    'a binary cursor WITH HOLD',
    "a shard's error at DECLARE reaches the client, and the connection goes on",
  ], 60_000)
  t.ok(await waitFor(async () => lent() === 0, 5000), 'every cursor closed gave its connections back')
})
