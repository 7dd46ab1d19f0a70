// An UPDATE or DELETE whose key conditions (IN, OR) name rows on several shards runs on each of those shards,
// all or nothing, answering like one server: the summed count and every shard's RETURNING rows.
import pg from 'pg'
import t from 'tap'
import { SYNC, encodeQuery, encodeUnnamedRun } from '../src/protocol/FrontendMessages.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { RawClient, errorFields } from './harness/RawClient.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'items', key: 'id', type: 'bigint' }, { name: 'members', key: 'id', type: 'bigint' }], reference_tables: ['countries'] }
// Trust, so that the raw protocol client logs in without SCRAM.
const fx = await startProxy(t, { topology: { shards: 2, auth: 'trust' }, config: { sharding: SHARDING, users: [{ name: 'app', auth: 'trust' }] } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const keyOn = (shard: number, from = 1): number => {
  for (let k = from; ; k++) if (map.ring.shardFor(String(k)) === shard) return k
}
const [k0, k1] = [keyOn(0), keyOn(1)]
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
await client.query('CREATE TABLE items (id bigint PRIMARY KEY, qty int)')
await client.query(`INSERT INTO items (id, qty) VALUES (${k0}, 10), (${k1}, 20), (${keyOn(0, k0 + 1)}, 30)`)
const qty = async (id: number) => (await client.query(`SELECT qty FROM items WHERE id = ${id}`)).rows[0]?.qty

t.test('UPDATE … WHERE key IN (keys on two shards): both rows, one answer', async (t) => {
  const r = await client.query(`UPDATE items SET qty = qty + 1 WHERE id IN (${k0}, ${k1}) RETURNING id, qty`)
  t.equal(r.rowCount, 2, 'UPDATE 2')
  t.same(r.rows.map((row) => [Number(row.id), row.qty]).sort((a, b) => a[0] - b[0]), [[k0, 11], [k1, 21]].sort((a, b) => a[0] - b[0]), 'RETURNING from both shards')
  const p = await client.query('UPDATE items SET qty = qty * 2 WHERE id = $1 OR id = $2', [k0, k1])
  t.equal(p.rowCount, 2, 'with parameters and OR (extended protocol)')
  t.same([await qty(k0), await qty(k1)], [22, 42])
})

t.test('all or nothing: a shard that fails rolls the others back', async (t) => {
  await t.rejects(client.query(`UPDATE items SET qty = 1 / (id - ${k1}) WHERE id IN (${k0}, ${k1})`), { code: '22012' })
  t.same([await qty(k0), await qty(k1)], [22, 42], 'the shard where it succeeded kept nothing')
  await client.query('BEGIN')
  await t.rejects(client.query(`DELETE FROM items WHERE id IN (${k0}, ${k1})`), { code: '0A000', message: /cross-shard transactions are not supported/ })
  await client.query('ROLLBACK')
  const d = await client.query(`DELETE FROM items WHERE id IN (${k0}, ${k1})`)
  t.equal(d.rowCount, 2, 'DELETE 2 outside a transaction')
  t.equal((await client.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 1, 'the third row stays')
})

t.test('key = ANY(array): a parameter (node-postgres sends arrays as text) or a literal pins the elements’ shards', async (t) => {
  await client.query('INSERT INTO items (id, qty) VALUES ($1, 1), ($2, 2)', [k0, k1])
  const one = await client.query("SELECT id, qty, current_setting('port') AS port FROM items WHERE id = ANY($1)", [[k1]])
  t.same(one.rows.map((r) => r.qty), [2], 'a one-element array: its shard alone')
  t.equal(Number(one.rows[0].port), fx.topo.shards[map.ring.shardFor(String(k1))].primary.port, 'and it ran there')
  const up = await client.query(`UPDATE items SET qty = qty + 10 WHERE id = ANY('{${k0},${k1}}') RETURNING qty`)
  t.same(up.rows.map((r) => r.qty).sort(), [11, 12], 'a literal array across shards: the UPDATE on each')
  const del = await client.query('DELETE FROM items WHERE id = ANY($1::bigint[])', [[k0, k1]])
  t.equal(del.rowCount, 2, 'a parameter array across shards: DELETE 2')
  t.equal((await client.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 1)
})

t.test('a simple Query after a statement on several shards, before the group’s Sync: refused, nothing runs', async (t) => {
  const [j0, j1] = [keyOn(0, 1000), keyOn(1, 1000)]
  await client.query(`INSERT INTO items (id, qty) VALUES (${j0}, 1), (${j1}, 1)`)
  const raw = await RawClient.login(fx.port, 'app')
  t.teardown(() => raw.end())
  raw.send(encodeUnnamedRun(`UPDATE items SET qty = 5 WHERE id IN (${j0}, ${j1})`))
  raw.send(encodeQuery(`UPDATE items SET qty = 6 WHERE id = ${j0}`))
  raw.send(SYNC)
  const reply = await raw.until('Z')
  t.same(reply.map((m) => m.type), ['1', '2', 'E', 'Z'], 'Parse and Bind answered, then the error, and one ReadyForQuery (the Sync’s)')
  t.match(errorFields(reply.find((m) => m.type === 'E')!.body), { code: '0A000', message: /simple Query after a statement on several shards/ })
  t.same([await qty(j0), await qty(j1)], [1, 1], 'neither statement ran')
  raw.send(encodeQuery('SELECT 1'))
  t.ok((await raw.until('Z')).some((m) => m.type === 'D'), 'the session goes on')
})

t.test('an Execute with a row limit (pgjdbc batches ask for one row) of a write on several shards without RETURNING', async (t) => {
  const [j0, j1] = [keyOn(0, 2000), keyOn(1, 2000)]
  const raw = await RawClient.login(fx.port, 'app')
  t.teardown(() => raw.end())
  const execute = async (sql: string) => {
    raw.send(Buffer.concat([encodeUnnamedRun(sql, 1), SYNC]))
    return raw.until('Z')
  }
  const insert = await execute(`INSERT INTO items (id, qty) VALUES (${j0}, 1), (${j1}, 1)`)
  t.same(insert.map((m) => m.type), ['1', '2', 'C', 'Z'], 'runs: the limit does not matter to a write that answers no rows (refused before)')
  t.same([await qty(j0), await qty(j1)], [1, 1], 'both rows written')
  const returning = await execute(`UPDATE items SET qty = 2 WHERE id IN (${j0}, ${j1}) RETURNING id`)
  t.match(errorFields(returning.find((m) => m.type === 'E')!.body), { code: '0A000', message: /fetching part of the rows a write across shards returns/ }, 'with RETURNING the limit would cut the rows: refused')
  t.same([await qty(j0), await qty(j1)], [1, 1], 'and nothing changed')
})

t.test('several statements in one query on several shards: each statement answered in turn, as one server does', async (t) => {
  const raw = await RawClient.login(fx.port, 'app')
  t.teardown(() => raw.end())
  const tags = (msgs: { type: string; body: Buffer }[]) => msgs.filter((m) => m.type === 'C').map((m) => m.body.toString('latin1').replace(/\0$/, ''))
  await client.query(`INSERT INTO items (id, qty) VALUES (${k0}, 1), (${k1}, 1) ON CONFLICT (id) DO NOTHING`)
  raw.send(encodeQuery(`UPDATE items SET qty = 5 WHERE id = ${k0}; UPDATE items SET qty = 6 WHERE id = ${k1}; DELETE FROM items WHERE id = -1`))
  const updates = await raw.until('Z')
  t.same(tags(updates), ['UPDATE 1', 'UPDATE 1', 'DELETE 0'], 'one command tag per statement, each with its count over both shards')
  t.same([await qty(k0), await qty(k1)], [5, 6])
  raw.send(encodeQuery('CREATE TABLE multi_ddl (a int); CREATE INDEX ON multi_ddl (a); SELECT 7 AS seven'))
  const ddl = await raw.until('Z')
  t.equal(ddl.map((m) => m.type).join(' '), 'C C T D C Z', 'DDL on every shard: both tags, then the SELECT’s row once')
  t.same(tags(ddl), ['CREATE TABLE', 'CREATE INDEX', 'SELECT 1'])
  const k2 = keyOn(0, 5000)
  raw.send(encodeQuery(`INSERT INTO items (id, qty) VALUES (${k2}, 1); UPDATE items SET qty = qty + 1 WHERE id = ${k2} RETURNING qty`))
  const withInsert = await raw.until('Z')
  t.same(tags(withInsert), ['INSERT 0 1', 'UPDATE 1'], 'an INSERT with other statements of its shard: one query there (refused before)')
  t.equal(await qty(k2), 2)
  raw.send(encodeQuery(`UPDATE items SET qty = 7 WHERE id = ${k0}; SELECT count(*) FROM items WHERE id = ${k1}`))
  const mixed = await raw.until('Z')
  t.same(tags(mixed), ['UPDATE 1', 'SELECT 1'], 'a read among them would get one answer per shard together: each runs on its own, in turn')
  t.equal(mixed.filter((m) => m.type === 'Z').length, 1, 'with one ReadyForQuery')
  t.equal(await qty(k0), 7)
})

t.test('a multi-row INSERT split across shards returns its RETURNING rows in VALUES order (ORMs match them by position)', async (t) => {
  // Rows alternate between the shards, so shard-by-shard order differs from the statement's.
  const keys = [keyOn(1, 3000), keyOn(0, 3000), keyOn(1, keyOn(1, 3000) + 1), keyOn(0, keyOn(0, 3000) + 1)]
  const qtys = [1, 2, 3, 4]
  const literal = await client.query(`INSERT INTO items (id, qty) VALUES ${keys.map((k, i) => `(${k}, ${qtys[i]})`).join(', ')} RETURNING id, qty`)
  t.same(literal.rows.map((r) => [Number(r.id), r.qty]), keys.map((k, i) => [k, qtys[i]]), 'a simple query: one row per VALUES row, in their order')
  await client.query(`DELETE FROM items WHERE id IN (${keys.join(', ')})`)
  const bound = await client.query('INSERT INTO items (id, qty) VALUES ($1, 11), ($2, 12), ($3, 13), ($4, 14) RETURNING qty', keys)
  t.same(bound.rows.map((r) => r.qty), [11, 12, 13, 14], 'with parameters (extended protocol) too')
  const skipped = await client.query(`INSERT INTO items (id, qty) VALUES (${keys[0]}, 0), (${keyOn(0, 4000)}, 5) ON CONFLICT (id) DO NOTHING RETURNING qty`)
  t.same(skipped.rows.map((r) => r.qty), [5], 'a row ON CONFLICT skipped: the rows written, as many as the count')
  t.equal(skipped.rowCount, 1)
})

t.test('a deferred foreign key broken by a write on every shard: the server\'s 23503, and every shard as it was', async (t) => {
  await client.query('CREATE TABLE countries (id int PRIMARY KEY)')
  // Django makes every foreign key DEFERRABLE INITIALLY DEFERRED: it is checked at COMMIT.
  await client.query('CREATE TABLE members (id bigint PRIMARY KEY, country int REFERENCES countries (id) DEFERRABLE INITIALLY DEFERRED)')
  await client.query('INSERT INTO countries (id) VALUES (7), (8)')
  await client.query('INSERT INTO members (id, country) VALUES ($1, 7)', [k1])
  await t.rejects(client.query('DELETE FROM countries WHERE id = 7'), { code: '23503', message: /violates foreign key constraint/ })
  const onShards = async () => (await fx.topo.queryPrimaries('SELECT id FROM countries ORDER BY id', 'app')).map((rows) => rows.map((r) => r.id))
  t.same(await onShards(), [[7, 8], [7, 8]], 'the reference table unchanged on every shard')
  t.equal((await client.query('DELETE FROM countries WHERE id = 8')).rowCount, 1, 'a delete that breaks nothing')
  t.same(await onShards(), [[7], [7]])
})
