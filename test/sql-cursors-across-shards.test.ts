// SQL cursors (DECLARE / FETCH / MOVE / CLOSE) whose query reads several shards, inside a transaction that may
// span shards: what psycopg's named cursors, SQLAlchemy's stream_results and Django's iterator() in a transaction
// send. The rows come merged in the query's order a FETCH at a time, with the transaction's other statements in
// between; what a cursor across shards cannot do (scroll, outlive its transaction) is refused.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { assertDriverChecks } from './harness/driverChecks.js'
import { sessionsInTransaction } from './harness/serverSessions.js'
import { proxyClient } from './harness/proxyClient.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'items', key: 'id', type: 'integer' as const }], cross_shard_transactions: 'two_phase' as const }
const ROWS = 600
const ids = (r: pg.QueryResult) => r.rows.map((row) => row.id as number)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING, pool: { size: 3 } } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const shardOf = (k: number) => map.ring.shardFor(canonicalKey('bigint', String(k), 0, 0))
const onShard = (shard: number) => Array.from({ length: ROWS }, (_, i) => i + 1).filter((k) => shardOf(k) === shard)
const [k0, k1] = [onShard(0)[0]!, onShard(1)[0]!]

const setup = new pg.Client(fx.pgOptions)
await setup.connect()
await setup.query('CREATE TABLE items (id int PRIMARY KEY, label text)')
await setup.query(`INSERT INTO items (id, label) VALUES ${range(1, ROWS).map((k) => `(${k}, 'item ${k}')`).join(', ')}`)
await setup.end()



t.test('simple queries (psycopg2, SQLAlchemy): a cursor over both shards read in parts, in order, with writes between', async (t) => {
  const c = await proxyClient(t, fx)
  await c.query('BEGIN')
  const declared = await c.query('DECLARE c NO SCROLL CURSOR WITHOUT HOLD FOR SELECT id, label FROM items WHERE id > 2 ORDER BY id')
  t.equal(declared.command, 'DECLARE', 'DECLARE CURSOR answered')
  const first = await c.query('FETCH FORWARD 1 FROM c')
  t.same([first.command, first.rowCount, ids(first)], ['FETCH', 1, [3]], 'the first row of both shards merged')
  t.same(first.fields.map((f) => f.name), ['id', 'label'], 'described as the query')
  t.same(ids(await c.query('FETCH FORWARD 250 FROM c')), range(4, 253), 'the next 250, across both shards')
  // The transaction writes both shards between fetches; the cursor's snapshot does not see it.
  await c.query(`UPDATE items SET label = 'changed' WHERE id IN (${k0}, ${k1})`)
  const moved = await c.query('MOVE FORWARD 10 IN c')
  t.same([moved.command, moved.rowCount, moved.rows.length], ['MOVE', 10, 0], 'MOVE skips rows without sending them')
  const rest = await c.query('FETCH ALL FROM c')
  t.same(ids(rest), range(264, ROWS), 'FETCH ALL: the rest, in order')
  t.equal(rest.rows.find((r) => r.id === Math.max(k0, k1, 264))?.label.startsWith('item'), true, 'rows as of the cursor’s snapshot')
  const none = await c.query('FETCH NEXT FROM c')
  t.same([none.command, none.rowCount], ['FETCH', 0], 'past its end, no rows')
  const closed = await c.query('CLOSE c')
  t.equal(closed.command, 'CLOSE', 'CLOSE CURSOR answered')
  t.same((await c.query(`SELECT label FROM items WHERE id IN (${k0}, ${k1}) ORDER BY id`)).rows.map((r) => r.label), ['changed', 'changed'], 'the writes stand in the transaction')
  await c.query('COMMIT')
  t.same((await c.query(`SELECT count(*)::int AS n FROM items WHERE label = 'changed'`)).rows[0].n, 2, 'and are committed on both shards')
  await c.query(`UPDATE items SET label = 'item ' || id WHERE id IN (${k0}, ${k1})`)
})

t.test('aggregates, DISTINCT and LIMIT merge through a cursor as in a plain read', async (t) => {
  const c = await proxyClient(t, fx)
  await c.query('BEGIN')
  await c.query('DECLARE a CURSOR FOR SELECT count(*) AS n, sum(id) AS s FROM items')
  t.same((await c.query('FETCH ALL FROM a')).rows, [{ n: String(ROWS), s: String((ROWS * (ROWS + 1)) / 2) }], 'count and sum over both shards')
  await c.query('DECLARE l CURSOR FOR SELECT id FROM items ORDER BY id DESC LIMIT 5 OFFSET 1')
  t.same(ids(await c.query('FETCH 3 FROM l')), [ROWS - 1, ROWS - 2, ROWS - 3])
  t.same(ids(await c.query('FETCH ALL FROM l')), [ROWS - 4, ROWS - 5], 'LIMIT and OFFSET over the merged order')
  await c.query("DECLARE d CURSOR FOR SELECT DISTINCT length(label) AS id FROM items ORDER BY 1")
  t.same(ids(await c.query('FETCH ALL FROM d')), [6, 7, 8], 'DISTINCT across shards')
  // A key pinned to one shard declares the cursor there, as before.
  await c.query(`DECLARE one CURSOR FOR SELECT id FROM items WHERE id = ${k1}`)
  t.same(ids(await c.query('FETCH ALL FROM one')), [k1])
  await c.query('COMMIT')
})

t.test('what a cursor across shards cannot do is refused, and ends with its transaction', async (t) => {
  const c = await proxyClient(t, fx)
  const inTx = async (sql: string, expect: { code: string; message: RegExp }, what: string) => {
    await c.query('BEGIN')
    await t.rejects(c.query(sql), expect, what)
    await c.query('ROLLBACK')
  }
  await inTx('DECLARE n CURSOR FOR SELECT count(*) FROM (SELECT DISTINCT label FROM items) s', { code: '0A000', message: /a cursor over count\(\*\) of a subquery whose rows pgshard counts across shards/ }, 'a count of merged rows runs without a cursor')
  await inTx('DECLARE s SCROLL CURSOR FOR SELECT id FROM items ORDER BY id', { code: '0A000', message: /^SCROLL of cursor "s", whose query reads several shards/ }, 'SCROLL')
  await inTx('DECLARE h CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id', { code: '0A000', message: /^WITH HOLD inside a transaction block of cursor "h"/ }, 'WITH HOLD inside the transaction (outside one it works: held-cursors-across-shards)')
  await inTx('DECLARE m CURSOR FOR SELECT sum(id)::int FROM items', { code: '0A000', message: /cannot be merged across shards: an expression over the aggregate sum\(\)/ }, 'a query no merge can answer: the reason, as for the query itself')
  await c.query('BEGIN')
  await c.query('DECLARE b CURSOR FOR SELECT id FROM items ORDER BY id')
  await t.rejects(c.query('DECLARE b CURSOR FOR SELECT id FROM items ORDER BY id'), { code: '42P03', message: 'cursor "b" already exists' }, 'a name in use')
  await c.query('ROLLBACK')
  await c.query('BEGIN')
  await c.query('DECLARE b CURSOR FOR SELECT id FROM items ORDER BY id')
  t.same(ids(await c.query('FETCH 2 FROM b')), [1, 2])
  await t.rejects(c.query('FETCH PRIOR FROM b'), { code: '0A000', message: /only moves forward/ }, 'backward')
  await t.rejects(c.query('FETCH 1 FROM b'), { code: '25P02' }, 'the refusal aborted the transaction, as an error on a server does')
  await c.query('ROLLBACK')
  await c.query('BEGIN')
  await c.query('DECLARE e CURSOR FOR SELECT id FROM items ORDER BY id')
  await c.query('COMMIT')
  await t.rejects(c.query('FETCH 1 FROM e'), { code: '34000' }, 'the cursor ended with its transaction')
  await t.rejects(c.query('DECLARE o CURSOR FOR SELECT id FROM items ORDER BY id'), { code: '0A000', message: /unless it is declared WITH HOLD outside a transaction block, or WITHOUT HOLD in a transaction that may span shards/ }, 'outside a transaction it is refused, saying where it would work')
})

t.test('ROLLBACK TO a savepoint ends the cursors declared since, as on a server; those declared before stay', async (t) => {
  const c = await proxyClient(t, fx)
  await c.query('BEGIN')
  await c.query('DECLARE outer_c CURSOR FOR SELECT id FROM items ORDER BY id')
  t.same(ids(await c.query('FETCH 2 FROM outer_c')), [1, 2])
  await c.query('SAVEPOINT sp')
  await c.query('DECLARE inner_c CURSOR FOR SELECT id FROM items ORDER BY id DESC')
  t.same(ids(await c.query('FETCH 1 FROM inner_c')), [ROWS])
  await c.query('SAVEPOINT sp2')
  await c.query('ROLLBACK TO SAVEPOINT sp2')
  t.same(ids(await c.query('FETCH 1 FROM inner_c')), [ROWS - 1], 'a rollback to a later savepoint keeps it')
  await c.query('ROLLBACK TO SAVEPOINT sp')
  await c.query('SAVEPOINT probe')
  await t.rejects(c.query('FETCH 1 FROM inner_c'), { code: '34000' }, 'the cursor declared after the savepoint is gone')
  await c.query('ROLLBACK TO SAVEPOINT probe')
  await c.query('DECLARE inner_c CURSOR FOR SELECT id FROM items ORDER BY id DESC')
  t.same(ids(await c.query('FETCH 1 FROM inner_c')), [ROWS], 'its name may be declared again')
  t.same(ids(await c.query('FETCH 1 FROM outer_c')), [3], 'the cursor declared before the savepoint goes on')
  await c.query('COMMIT')
})

t.test('CLOSE ALL closes the cursors on every shard the transaction holds', async (t) => {
  const c = await proxyClient(t, fx)
  const cursorsOn = async (shard: string) => (await c.query(`/* pgshard: shard=${shard} */ SELECT count(*)::int AS n FROM pg_cursors`)).rows[0].n
  await c.query('BEGIN')
  await c.query(`DECLARE on0 CURSOR FOR SELECT id FROM items WHERE id = ${k0}`)
  await c.query(`DECLARE on1 CURSOR FOR SELECT id FROM items WHERE id = ${k1}`)
  await c.query('DECLARE across CURSOR FOR SELECT id FROM items ORDER BY id')
  t.same([await cursorsOn('s0'), await cursorsOn('s1')].map((n) => n > 0), [true, true], 'cursors on both shards')
  await c.query('CLOSE ALL')
  t.same([await cursorsOn('s0'), await cursorsOn('s1')], [0, 0], 'none left on either')
  await t.rejects(c.query('FETCH 1 FROM across'), { code: '34000' })
  await c.query('ROLLBACK')
})

t.test('an error on one shard while the cursor reads fails the statement and aborts the transaction', async (t) => {
  const c = await proxyClient(t, fx)
  await c.query('BEGIN')
  await t.rejects(c.query(`DECLARE z CURSOR FOR SELECT 1 / (id - ${k1}) AS id FROM items ORDER BY 1`), { code: '22012' }, 'division by zero on one shard, at its first batch')
  await t.rejects(c.query('SELECT 1'), { code: '25P02' }, 'the transaction is aborted')
  await c.query('ROLLBACK')
  t.same((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, ROWS, 'the client goes on')
})

t.test('a statement across shards that fails in pgshard fails the transaction on its servers too: COMMIT rolls back', async (t) => {
  // Shard 1's column of another type: the shards describe a read differently, which the merge refuses.
  const [, s1] = fx.topo.shards
  await fx.topo.query(s1!.primary, 'ALTER TABLE items ALTER COLUMN label TYPE varchar(40)', 'app')
  t.teardown(() => fx.topo.query(s1!.primary, 'ALTER TABLE items ALTER COLUMN label TYPE text', 'app'))
  const c = await proxyClient(t, fx)
  await c.query('BEGIN')
  await c.query(`UPDATE items SET label = 'lost' WHERE id = ${k0}`)
  await t.rejects(c.query('SELECT id, label FROM items ORDER BY id'), { code: '0A000', message: /shards s0 and s1 give column "label" different types; their schemas differ/ }, 'refused by the merge')
  await t.rejects(c.query('SELECT 1'), { code: '25P02' }, 'the transaction is aborted, as after a server’s error')
  const end = await c.query('COMMIT')
  t.equal(end.command, 'ROLLBACK', 'COMMIT of the aborted transaction rolls back')
  t.equal((await c.query(`SELECT label FROM items WHERE id = ${k0}`)).rows[0].label, `item ${k0}`, 'the update is not committed')
})

t.test('a client that leaves with a cursor open: its connections come back clean', async (t) => {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  await c.query('BEGIN')
  await c.query('DECLARE gone CURSOR FOR SELECT id FROM items ORDER BY id')
  await c.query('FETCH 5 FROM gone')
  await c.end()
  t.ok(await waitFor(async () => (await sessionsInTransaction(fx.topo)) === 0, 5000), 'no server session is left inside the transaction, its portals with it')
  const others = await Promise.all([proxyClient(t, fx), proxyClient(t, fx), proxyClient(t, fx), proxyClient(t, fx)])
  const counts = await Promise.all(others.map(async (o) => (await o.query('SELECT count(*)::int AS n FROM items')).rows[0].n))
  t.same(counts, others.map(() => ROWS), 'the next clients read both shards')
})

t.test('psycopg 3 (extended protocol): named cursors across shards, text and binary', async (t) => {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'python', 'psycopg_cursors.py')
  await assertDriverChecks(t, '/usr/bin/python3', [script, `${fx.dsn} password=${fx.pgOptions.password}`, String(ROWS), String(k0), String(k1)], [
    'a named cursor over both shards in order, with writes between fetches',
    'iterating a named cursor in batches',
    'a binary named cursor',
    'a cursor with a parameter and an aggregate',
  ], 60_000)
})
