// A READ ONLY transaction may read several shards, and a read-write one too, writing one of them: each shard
// joins it at its first statement there (with the transaction's BEGIN, SET TRANSACTION, SET LOCAL and open
// savepoints) and keeps that snapshot until COMMIT or ROLLBACK. pg_dump relies on it (LOCK TABLE, then COPY of
// each table, in one REPEATABLE READ transaction).
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { ShardMap } from '../src/router/ShardMap.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { runCommand } from './harness/runCommand.js'
import { sessionsInTransaction } from './harness/serverSessions.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'items', key: 'id', type: 'bigint' }], reference_tables: ['kinds'] }
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING, pool: { size: 4 } } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const keysOn = (shard: number, n: number): number[] => {
  const out: number[] = []
  for (let k = 1; out.length < n; k++) if (map.ring.shardFor(String(k)) === shard) out.push(k)
  return out
}
const [[a0, b0], [a1, b1]] = [keysOn(0, 2), keysOn(1, 2)]
const writer = new pg.Client(fx.pgOptions)
await writer.connect()
t.teardown(() => writer.end())
await writer.query('CREATE TABLE items (id bigint PRIMARY KEY, qty int)')
await writer.query('CREATE TABLE kinds (code text PRIMARY KEY)')
await writer.query(`INSERT INTO items (id, qty) VALUES (${a0}, 10), (${a1}, 20)`)
await writer.query("INSERT INTO kinds VALUES ('x'), ('y')")

const connect = async (): Promise<pg.Client> => {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  return c
}
const qty = async (c: pg.Client, id: number): Promise<number | undefined> => (await c.query(`SELECT qty FROM items WHERE id = ${id}`)).rows[0]?.qty
const openTransactions = () => sessionsInTransaction(fx.topo)

t.test('each shard reads from the snapshot it took when it joined, until COMMIT', async (t) => {
  const c = await connect()
  t.teardown(() => c.end())
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  t.equal(await qty(c, a0), 10, 'shard 0 first')
  t.equal(await qty(c, a1), 20, 'shard 1 joins: refused before (0A000, pinned to the first shard)')
  await writer.query(`UPDATE items SET qty = qty + 1 WHERE id IN (${a0}, ${a1})`)
  await writer.query(`INSERT INTO items (id, qty) VALUES (${b0}, 1), (${b1}, 1)`)
  t.same([await qty(c, a0), await qty(c, a1), await qty(c, b1)], [10, 20, undefined], 'both shards still answer from their snapshots')
  t.same((await c.query('SELECT count(*) AS n, sum(qty) AS s FROM items')).rows[0], { n: '2', s: '30' }, 'a read of every shard inside the transaction: the same snapshots')
  const byParam = await c.query('SELECT qty FROM items WHERE id = $1', [a1])
  t.equal(byParam.rows[0].qty, 20, 'the extended protocol goes to the shard the transaction holds')
  await c.query('COMMIT')
  t.same([await qty(c, a0), await qty(c, a1)], [11, 21], 'after COMMIT: the new values')
  t.ok(await waitFor(async () => (await openTransactions()) === 0, 5000), 'no server session is left inside a transaction')
  await writer.query(`DELETE FROM items WHERE id IN (${b0}, ${b1})`)
})

t.test('a write in a READ ONLY transaction on several shards is refused by the server, and nothing changes', async (t) => {
  const c = await connect()
  t.teardown(() => c.end())
  await c.query('BEGIN READ ONLY')
  await qty(c, a0)
  await t.rejects(c.query(`UPDATE items SET qty = 0 WHERE id = ${a1}`), { code: '25006' }, 'cannot execute UPDATE in a read-only transaction')
  await t.rejects(c.query(`SELECT qty FROM items WHERE id = ${a0}`), { code: '25P02' }, 'the transaction is aborted, as on a server')
  await c.query('ROLLBACK')
  t.same([await qty(c, a0), await qty(c, a1)], [11, 21])
  await c.query('BEGIN READ ONLY')
  await t.rejects(c.query('CREATE INDEX ON items (qty)'), { code: '25006' }, 'DDL for every shard inside it: refused by the servers')
  await c.query('ROLLBACK')
  await c.query('BEGIN ISOLATION LEVEL SERIALIZABLE')
  await qty(c, a0)
  await t.rejects(c.query(`SELECT qty FROM items WHERE id = ${a1}`), { code: '0A000', message: /cross-shard transactions are not supported/ }, 'a SERIALIZABLE read-write transaction stays on one shard')
  await c.query('ROLLBACK')
})

t.test('a read-write transaction (reject) reads any shard and writes one; COMMIT needs no two-phase commit', async (t) => {
  const c = await connect()
  t.teardown(() => c.end())
  await c.query('BEGIN')
  t.equal(await qty(c, a0), 11)
  t.equal(await qty(c, a1), 21, 'another shard joins it to be read')
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 2, 'and every shard, for a read of all')
  await c.query(`UPDATE items SET qty = qty + 1 WHERE id = ${a1}`)
  await t.rejects(c.query(`UPDATE items SET qty = qty + 1 WHERE id = ${a0}`), { code: '0A000', message: /transaction writes shard s1; this statement may write shard s0/ }, 'a write on a second shard is refused')
  await c.query('ROLLBACK')
  t.same([await qty(c, a0), await qty(c, a1)], [11, 21], 'nothing of it was kept')

  await c.query('BEGIN')
  await qty(c, a0)
  await c.query(`UPDATE items SET qty = qty + 1 WHERE id = ${a1}`)
  t.equal(await qty(c, a0), 11, 'reads go on after the write')
  t.equal((await c.query('COMMIT')).command, 'COMMIT')
  t.same([await qty(c, a0), await qty(c, a1)], [11, 22], 'the shard it wrote committed')
  t.equal(await openTransactions(), 0, 'no server session is left in the transaction')
  const prepared = await Promise.all(fx.topo.shards.map(async (s) => (await fx.topo.query(s.primary, 'SELECT count(*)::int AS n FROM pg_prepared_xacts'))[0]!.n))
  t.same(prepared, [0, 0], 'and nothing was prepared')

  // txid_current() is stable: the router sees a read, but the shard assigned a transaction id. COMMIT finds the
  // second shard written and rolls back everywhere rather than commit one shard of two.
  await c.query('BEGIN')
  await c.query(`UPDATE items SET qty = qty + 1 WHERE id = ${a1}`)
  await c.query(`SELECT txid_current() FROM items WHERE id = ${a0}`)
  await t.rejects(c.query('COMMIT'), { code: '0A000', message: /the transaction wrote shards s0, s1, and cross-shard transactions are not supported: it was rolled back on every shard/ })
  t.same([await qty(c, a0), await qty(c, a1)], [11, 22], 'rolled back on both')
  await c.query(`UPDATE items SET qty = 21 WHERE id = ${a1}`)

  // Savepoints reach the shard read as well as the one written.
  await c.query('BEGIN')
  await qty(c, a0)
  await c.query('SAVEPOINT s')
  await c.query(`UPDATE items SET qty = 0 WHERE id = ${a1}`)
  await t.rejects(c.query(`SELECT 1 / (qty - 11) FROM items WHERE id = ${a0}`), { code: '22012' }, 'an error on the shard read')
  await t.rejects(c.query(`SELECT qty FROM items WHERE id = ${a1}`), { code: '25P02' }, 'aborts the whole transaction')
  await c.query('ROLLBACK TO s')
  t.same([await qty(c, a0), await qty(c, a1)], [11, 21], 'ROLLBACK TO undid the write and recovered both shards')
  await c.query(`UPDATE items SET qty = 23 WHERE id = ${a1}`)
  await c.query('COMMIT')
  t.equal(await qty(c, a1), 23)
  await c.query(`UPDATE items SET qty = 21 WHERE id = ${a1}`)

  // Row-level security's settings: SET LOCAL, and set_config(…, true) in a SELECT of its own (PostgREST's way,
  // with bound values), reach every shard of the transaction, before and after they join; one made among other
  // work in a query is not carried, so a shard may not join after it (it would answer without the setting).
  const setting = async (id: number) => (await c.query(`SELECT current_setting('app.uid', true) AS v FROM items WHERE id = ${id}`)).rows[0].v
  await c.query('BEGIN')
  await c.query("SET LOCAL app.uid = 'bob'")
  t.same([await setting(a0), await setting(a1)], ['bob', 'bob'], 'SET LOCAL on both shards')
  await c.query('COMMIT')
  await c.query('BEGIN')
  await c.query('SELECT set_config($1, $2, true), set_config($3, $4, true)', ['app.uid', 'carol', 'app.role', 'reader'])
  t.equal(await setting(a0), 'carol', 'set_config as the first statement')
  t.equal(await setting(a1), 'carol', 'reaches a shard that joins later')
  await c.query("SELECT set_config('app.uid', 'dave', true)")
  t.same([await setting(a0), await setting(a1)], ['dave', 'dave'], 'and one made while both are in it reaches both')
  t.equal((await c.query(`SELECT current_setting('app.role') AS r FROM items WHERE id = ${a1}`)).rows[0].r, 'reader')
  await c.query('COMMIT')
  await c.query('BEGIN')
  await c.query(`SELECT set_config('app.uid', 'erin', true), qty FROM items WHERE id = ${a0}`)
  await t.rejects(setting(a1), { code: '0A000', message: /made app\.uid with set_config\(…, true\) among other work in a query, which pgshard does not carry to another shard: shard s1 cannot join it/ })
  await c.query('ROLLBACK')
  t.notOk(await setting(a1), 'and the session goes on, the setting gone with the transaction')

  // A client that leaves in the middle: nothing of it is kept, no server session stays in it.
  const gone = await connect()
  gone.on('error', () => undefined)
  await gone.query('BEGIN')
  await qty(gone, a0)
  await gone.query(`UPDATE items SET qty = 99 WHERE id = ${a1}`)
  gone.connection.stream.destroy()
  await gone.end().catch(() => undefined)
  t.ok(await waitFor(async () => (await openTransactions()) === 0, 5000), 'both shards’ sessions left the transaction')
  t.equal(await qty(c, a1), 21, 'its write was rolled back')
})

t.test('an error on one shard aborts the transaction; ROLLBACK TO a savepoint made before the other shard joined recovers both', async (t) => {
  const c = await connect()
  t.teardown(() => c.end())
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  await c.query("SET LOCAL application_name = 'ro-report'")
  await c.query('SAVEPOINT before_reads')
  t.equal(await qty(c, a0), 11)
  const joined = await c.query(`SELECT qty, current_setting('application_name') AS app FROM items WHERE id = ${a1}`)
  t.same(joined.rows[0], { qty: 21, app: 'ro-report' }, 'the joining shard ran SET LOCAL too')
  await t.rejects(c.query(`SELECT 1 / (qty - 21) FROM items WHERE id = ${a1}`), { code: '22012' })
  await t.rejects(c.query(`SELECT qty FROM items WHERE id = ${a0}`), { code: '25P02' }, 'the other shard answers as the aborted transaction')
  await t.rejects(c.query('SELECT count(*) FROM items'), { code: '25P02' }, 'so does a read of every shard')
  await c.query('ROLLBACK TO before_reads')
  t.same([await qty(c, a0), await qty(c, a1)], [11, 21], 'both shards read again after ROLLBACK TO')
  await t.rejects(c.query('SELECT 1 / (qty - 11) FROM items'), { code: '22012' }, 'a read of every shard that fails on one')
  await t.rejects(c.query(`SELECT qty FROM items WHERE id = ${a1}`), { code: '25P02' })
  await c.query('ROLLBACK')
  t.equal(await qty(c, a1), 21, 'the session goes on after ROLLBACK')
  t.ok(await waitFor(async () => (await openTransactions()) === 0, 5000), 'no server session is left inside a transaction')
})

t.test('a SET inside the transaction reaches the shard that waited aside, and ROLLBACK undoes it everywhere', async (t) => {
  const c = await connect()
  t.teardown(() => c.end())
  const app = async (id: number) => (await c.query(`SELECT current_setting('application_name') AS app FROM items WHERE id = ${id}`)).rows[0].app
  await c.query("SET application_name = 'before'")
  await c.query('BEGIN READ ONLY')
  t.equal(await app(a0), 'before')
  t.equal(await app(a1), 'before')
  await c.query("SET application_name = 'inside'")
  t.equal(await app(a0), 'inside', 'the shard that waited aside has it')
  t.equal(await app(a1), 'inside')
  await c.query('ROLLBACK')
  t.same([await app(a0), await app(a1)], ['before', 'before'], 'ROLLBACK undid it, as Postgres does')
  const other = await connect()
  t.teardown(() => other.end())
  const seen = await Promise.all(Array.from({ length: 8 }, (_, i) => other.query(`SELECT current_setting('application_name') AS app FROM items WHERE id = ${i % 2 ? a1 : a0}`)))
  t.notOk(seen.some((r) => r.rows[0].app === 'inside' || r.rows[0].app === 'before'), 'no other client inherits either value')
})

t.test('a client that leaves in the middle leaves no server session in a transaction', async (t) => {
  const c = await connect()
  await c.query('BEGIN READ ONLY')
  await qty(c, a0)
  await qty(c, a1)
  c.connection.stream.destroy()
  await c.end().catch(() => undefined)
  t.ok(await waitFor(async () => (await openTransactions()) === 0, 5000), 'each shard\u2019s connection was rolled back or closed')
  const d = await connect()
  t.teardown(() => d.end())
  t.same([await qty(d, a0), await qty(d, a1)], [11, 21], 'and the pool serves the next client')
})

t.test('a shard connection that dies while it waits aside: a savepoint does not hang, the next read there ends the client (08006)', async (t) => {
  const c = await connect()
  c.on('error', () => undefined)
  await c.query('BEGIN READ ONLY')
  const { pid } = (await c.query(`SELECT pg_backend_pid() AS pid FROM items WHERE id = ${a0}`)).rows[0]
  await qty(c, a1)
  const shard0 = fx.topo.shards[0].primary
  await fx.topo.query(shard0, `SELECT pg_terminate_backend(${pid})`)
  t.ok(await waitFor(async () => (await fx.topo.query(shard0, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`))[0].n === 0, 5000), 'the server session is gone')
  await c.query('SAVEPOINT s')
  t.pass('SAVEPOINT answered although one of the transaction’s connections is closed')
  await t.rejects(c.query(`SELECT qty FROM items WHERE id = ${a0}`), { code: '08006', message: /lost the connection to server s0-primary/ })
  t.ok(await waitFor(async () => (await openTransactions()) === 0, 5000), 'the other shard’s connection did not stay in the transaction')
  const d = await connect()
  t.teardown(() => d.end())
  t.same([await qty(d, a0), await qty(d, a1)], [11, 21], 'other clients go on')

  const e = await connect()
  e.on('error', () => undefined)
  await e.query('BEGIN READ ONLY')
  const pid1 = (await e.query(`SELECT pg_backend_pid() AS pid FROM items WHERE id = ${a0}`)).rows[0].pid
  await qty(e, a1)
  await fx.topo.query(shard0, `SELECT pg_terminate_backend(${pid1})`)
  t.ok(await waitFor(async () => (await fx.topo.query(shard0, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid1}`))[0].n === 0, 5000))
  await t.rejects(e.query('SELECT count(*) FROM items'), { code: '08006', message: /lost the connection to server s0-primary/ }, 'a read of every shard ends the client the same way')
  t.ok(await waitFor(async () => (await openTransactions()) === 0, 5000), 'and leaves no server session in a transaction')
})

t.test('pg_dump through pgshard: every shard\u2019s rows of a sharded table, the reference table once; the dump loads into one Postgres', async (t) => {
  await writer.query(`INSERT INTO items (id, qty) VALUES ${Array.from({ length: 200 }, (_, i) => `(${1000 + i}, ${i})`).join(', ')}`)
  const dump = await runCommand('pg_dump', ['--no-owner', fx.dsn], { env: fx.env })
  t.equal(dump.code, 0, `pg_dump succeeded: ${dump.stderr}`)
  const file = join(fx.topo.baseDir, 'app.sql')
  await writeFile(file, dump.stdout)
  const shard0 = fx.topo.shards[0].primary
  await fx.topo.query(shard0, 'CREATE DATABASE restored')
  const load = await runCommand('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file, `host=127.0.0.1 port=${shard0.port} user=postgres dbname=restored`], {
    env: { ...process.env, PGPASSWORD: fx.topo.superuser.password },
  })
  t.equal(load.code, 0, `the dump loads: ${load.stderr}`)
  const [restored] = await fx.topo.query(shard0, 'SELECT count(*) AS n, sum(qty) AS s, (SELECT count(*) FROM kinds) AS kinds FROM items', 'restored')
  const proxied = (await writer.query('SELECT count(*) AS n, sum(qty) AS s FROM items')).rows[0]
  t.same(restored, { ...proxied, kinds: '2' }, 'the same rows as pgshard shows, each once')
  t.equal(proxied.n, '202')
  t.ok(await waitFor(async () => (await openTransactions()) === 0, 5000), 'no server session is left inside a transaction')
})
