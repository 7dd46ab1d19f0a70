// EXPLAIN of a read that runs on every shard: one QUERY PLAN column with how pgshard runs and merges it, the text
// each shard runs (not the client's: avg split into sum and count, LIMIT folded), and each shard's own plan of it
// under the shard's name; EXPLAIN ANALYZE runs each shard's part. Through psql and node-postgres (extended
// protocol, a parameter); a key pinned to one shard still gets that server's plan alone; other formats are refused.
// EXPLAIN of a write (without ANALYZE, which would run it) on several shards: each shard's plan of it.
import pg from 'pg'
import t from 'tap'
import { runCommand } from './harness/runCommand.js'
import { startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'users', key: 'id', type: 'bigint' }], reference_tables: [] }
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING } })
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
await client.query('CREATE TABLE users (id bigint PRIMARY KEY, name text, country text)')
await client.query("INSERT INTO users SELECT g, 'u' || g, (ARRAY['fr', 'de'])[1 + g % 2] FROM generate_series(1, 40) g")
const perShard = (await fx.topo.queryPrimaries('SELECT count(*)::int AS n FROM users', 'app')).map((rows) => rows[0]!.n as number)
t.ok(perShard.every((n) => n > 0), `rows on both shards: ${perShard.join(', ')}`)

const plan = async (sql: string, values?: unknown[]) => (await client.query({ text: sql, values, rowMode: 'array' })).rows.map((r) => r[0] as string)

t.test('a read of every shard: pgshard\u2019s part, then each shard\u2019s plan of its text', async (t) => {
  const lines = await plan("EXPLAIN (COSTS OFF) SELECT country, avg(id) FROM users WHERE name <> 'x' GROUP BY 1 ORDER BY 2 DESC LIMIT 3")
  t.match(lines[0], /^pgshard: EXPLAIN on users has no condition on the sharding key users\.id: scatter to 2 shards$/)
  t.equal(lines[1], '  Merge: groups folded, ORDER BY, LIMIT')
  t.equal(lines[2], "  Shard query: SELECT country, sum(id) AS avg, count(id) FROM users WHERE name <> 'x' GROUP BY 1", 'the text the shards run')
  const headings = lines.filter((l) => l.startsWith('  ->  Shard '))
  t.same(headings, ['  ->  Shard s0 (s0-primary)', '  ->  Shard s1 (s1-primary)'])
  t.equal(lines.filter((l) => /^ {8}\S/.test(l) && /Aggregate/.test(l)).length, 2, 'each shard\u2019s plan starts with its aggregate')
  t.ok(lines.some((l) => /Filter: \(name <> 'x'::text\)/.test(l)), 'the shards\u2019 own plan lines')
})

t.test('EXPLAIN ANALYZE runs each shard\u2019s part: its actual rows', async (t) => {
  const lines = await plan('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id FROM users')
  const actual = lines.filter((l) => /Seq Scan on users/.test(l)).map((l) => Number(/actual rows=(\d+)/.exec(l)?.[1]))
  t.same(actual, perShard, 'each shard scanned its own rows')
})

t.test('node-postgres, extended protocol with a parameter', async (t) => {
  const res = await client.query({ text: 'EXPLAIN (COSTS OFF) SELECT count(*) FROM users WHERE name = $1', values: ['u3'], rowMode: 'array' })
  t.same(res.fields.map((f) => [f.name, f.dataTypeID]), [['QUERY PLAN', 25]])
  t.equal(res.rows.filter((r) => /Filter: \(name = 'u3'::text\)/.test(r[0] as string)).length, 2, 'each shard planned with the bound value')
})

t.test('psql', async (t) => {
  const out = await runCommand('psql', ['-X', '-At', fx.dsn, '-c', 'EXPLAIN (COSTS OFF) SELECT * FROM users ORDER BY id LIMIT 5'], { env: fx.env })
  t.equal(out.code, 0, out.stderr)
  t.match(out.stdout, /^pgshard: .*scatter to 2 shards\n {2}Merge: rows appended, ORDER BY, LIMIT\n {2}Shard query: SELECT \*, id FROM users ORDER BY id LIMIT 5\n {2}->  Shard s0/)
})

t.test('in a transaction that wrote one shard: it reads the others', async (t) => {
  await client.query('BEGIN')
  await client.query("UPDATE users SET name = 'in tx' WHERE id = 1")
  const lines = await plan('EXPLAIN (COSTS OFF) SELECT count(*) FROM users')
  t.equal(lines.filter((l) => l.startsWith('  ->  Shard ')).length, 2, 'every shard explains its part')
  await client.query('ROLLBACK')
})

t.test('a pinned key: that shard\u2019s plan, as from one server; other formats across shards are refused', async (t) => {
  const lines = await plan('EXPLAIN (COSTS OFF) SELECT name FROM users WHERE id = 7')
  t.match(lines[0], /^Index Scan using users_pkey on users/, 'the server\u2019s own plan')
  await t.rejects(client.query('EXPLAIN (FORMAT JSON) SELECT * FROM users'), { code: '0A000', message: /EXPLAIN across shards in a format other than TEXT/ })
  t.same(await plan('SELECT 1'), [1], 'the session goes on')
})

t.test('EXPLAIN of a write that may change rows on several shards: each shard explains it, nothing runs', async (t) => {
  const lines = await plan("EXPLAIN (COSTS OFF) UPDATE users SET name = 'z' WHERE country = $1", ['fr'])
  t.equal(lines[0], 'pgshard: EXPLAIN of a write on users, which has no condition on the sharding key users.id: each shard it may write explains it')
  t.same(lines.filter((l) => l.startsWith('  ->  Shard ')), ['  ->  Shard s0 (s0-primary)', '  ->  Shard s1 (s1-primary)'])
  t.equal(lines.filter((l) => /^ {8}Update on users/.test(l)).length, 2, 'each shard\u2019s plan of the UPDATE')
  const deleted = await plan('EXPLAIN (COSTS OFF) DELETE FROM users WHERE id IN (1, 2, 3, 4, 5, 6)')
  t.equal(deleted.filter((l) => /^ {8}Delete on users/.test(l)).length, 2, 'a DELETE of keys on both shards: both explain it')
  t.same((await client.query("SELECT count(*)::int AS n FROM users WHERE name = 'z'")).rows, [{ n: 0 }], 'no row changed')
  t.same((await client.query('SELECT count(*)::int AS n FROM users')).rows, [{ n: 40 }], 'none deleted')
  await t.rejects(client.query("EXPLAIN (ANALYZE) UPDATE users SET name = 'z' WHERE country = 'fr'"), { code: '0A000', message: /a write must stay on one shard/ }, 'EXPLAIN ANALYZE runs the write: as the write itself')
})
