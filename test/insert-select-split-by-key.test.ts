// INSERT … SELECT into a sharded table whose keys come out of its SELECT (generate_series, a reference table, a
// table sharded by another column): pgshard runs the SELECT as `COPY (query) TO STDOUT` and sends each row to the
// shard of its key as a COPY into the table, all or nothing. Checked with psql and node-postgres against real
// servers read directly.
import pg from 'pg'
import postgres from 'postgres'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { runCommand } from './harness/runCommand.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = {
  tables: [
    { name: 'items', key: 'id', type: 'bigint' },
    { name: 'by_owner', key: 'owner', type: 'text' },
  ],
  reference_tables: ['regions'],
}

const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING, pool: { size: 3 } } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
await client.query('CREATE TABLE items (id bigint PRIMARY KEY, owner text, qty int)')
await client.query('CREATE TABLE by_owner (owner text, item bigint, qty int, PRIMARY KEY (owner, item))')
await client.query('CREATE TABLE regions (code text PRIMARY KEY, n int)')
await client.query("INSERT INTO regions VALUES ('eu', 1), ('us', 2), ('ap', 3)")

/** Each shard's rows of `sql`, read directly from its primary. */
const onShards = async (sql: string): Promise<string[][][]> => (await fx.topo.queryPrimaries(sql, 'app')).map((rows) => rows.map((r) => Object.values(r).map(String)))

/** Rows (key first) that the ring places on another shard than the one holding them. */
const misplaced = (perShard: string[][][], keyType: 'bigint' | 'text'): number =>
  perShard.reduce((n, rows, shard) => n + rows.filter((r) => map.ring.shardFor(canonicalKey(keyType, r[0]!, 0, 0)) !== shard).length, 0)

const psql = (...commands: string[]) => runCommand('psql', ['-X', '-d', fx.dsn, ...commands.flatMap((c) => ['-c', c])], { env: fx.env })

t.test('generate_series into a sharded table (psql): INSERT 0 n, each row on the shard of its key', async (t) => {
  const r = await psql("INSERT INTO items (id, owner, qty) SELECT g, 'o' || (g % 7), g FROM generate_series(1, 3000) g")
  t.equal(r.stderr, '')
  t.match(r.stdout, /^INSERT 0 3000$/m)
  const rows = await onShards('SELECT id, qty FROM items')
  t.ok(rows.every((s) => s.length > 0), 'both shards got rows')
  t.equal(rows.flat().length, 3000, 'every row once')
  t.equal(misplaced(rows, 'bigint'), 0, 'none on a shard that does not own its key')
  t.ok(rows.flat().every((r) => r[0] === r[1]), 'each row whole')
})

t.test('from a reference table, and from a table sharded by another column (every shard read)', async (t) => {
  const fromReference = await client.query("INSERT INTO items (id, owner, qty) SELECT 10000 + n, code, n FROM regions WHERE code <> 'ap'")
  t.equal(fromReference.rowCount, 2, 'node-postgres (a simple query): rowCount 2')
  t.equal(misplaced(await onShards('SELECT id FROM items WHERE id > 10000'), 'bigint'), 0)
  const regrouped = await client.query('INSERT INTO by_owner SELECT owner, id, qty FROM items WHERE id <= 3000')
  t.equal(regrouped.rowCount, 3000, 'every item read from both shards, written by owner')
  const byOwner = await onShards('SELECT owner, item FROM by_owner')
  t.equal(byOwner.flat().length, 3000)
  t.equal(misplaced(byOwner, 'text'), 0, 'each row on the shard of its owner')
  t.same(
    (await client.query('SELECT owner, count(*)::int AS n FROM by_owner GROUP BY owner ORDER BY owner')).rows,
    (await client.query('SELECT owner, count(*)::int AS n FROM items WHERE id <= 3000 GROUP BY owner ORDER BY owner')).rows,
    'the same rows per owner as the source',
  )
  const empty = await client.query('INSERT INTO items (id, owner) SELECT g, NULL FROM generate_series(1, 5) g WHERE false')
  t.equal(empty.rowCount, 0, 'no rows: INSERT 0 0')
})

t.test('all or nothing: a row a shard refuses, a key pgshard cannot read, a failing SELECT', async (t) => {
  const [k0] = [...Array(100).keys()].map((i) => 20000 + i).filter((k) => map.ring.shardFor(String(k)) === 0)
  const [k1] = [...Array(100).keys()].map((i) => 20000 + i).filter((k) => map.ring.shardFor(String(k)) === 1)
  await client.query('INSERT INTO items (id, owner) VALUES ($1, $2)', [k1, 'taken'])
  const counts = async () => (await onShards('SELECT count(*) FROM items')).map((s) => s[0]![0])
  const taken = await counts()
  await t.rejects(client.query(`INSERT INTO items (id, owner) SELECT unnest(ARRAY[${k0}, ${k1}]::bigint[]), 'x'`), { code: '23505', message: /duplicate key value violates unique constraint "items_pkey"/ }, 'a taken key on one shard: the server\u2019s error')
  t.same(await counts(), taken, 'nothing written on either shard')
  await t.rejects(client.query("INSERT INTO items (id, owner) SELECT v, 'x' FROM (VALUES ('1'), ('not a number')) AS s(v)"), { code: '22P02', message: /sharding key of type bigint/ }, 'a key that is not a number')
  await t.rejects(client.query("INSERT INTO items (id, owner) SELECT g, 'x' FROM generate_series(30000, 30010) g WHERE 1 / (g - 30005) > 0"), { code: '22012' }, 'the SELECT fails halfway: its error')
  t.same(await counts(), taken, 'still nothing written')
  await t.rejects(client.query("INSERT INTO items (id, qty) SELECT g, g * 1.5 FROM generate_series(40000, 40003) g"), { code: '22P02', message: /invalid input syntax for type integer/ }, 'values go through their text form, as COPY takes them: a numeric for an integer column is refused')
  t.equal((await client.query('SELECT 1 AS ok')).rows[0].ok, 1, 'the session goes on')
})

t.test('the extended protocol: parameters written into the query, typed as Parse names them (node-postgres, postgres.js)', async (t) => {
  const r = await client.query("INSERT INTO items (id, owner, qty) SELECT g, $1 || (g % 3), $2 FROM generate_series($3::int, $4) g WHERE $5::text IS NULL", ["it's \\ ", 7, 60000, 60099, null])
  t.equal(r.rowCount, 100, 'node-postgres with five parameters (a quote, a backslash, NULL): INSERT 0 100')
  const rows = await onShards('SELECT id, owner, qty FROM items WHERE id BETWEEN 60000 AND 60099')
  t.equal(misplaced(rows, 'bigint'), 0, 'each row on the shard of its key')
  t.same([...new Set(rows.flat().map((row) => `${row[1]!.slice(0, -1)}|${row[2]}`))], ["it's \\ |7"], 'the values as sent')
  const sql = postgres(fx.url, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const plain = await sql`INSERT INTO items (id, owner, qty) SELECT g, 'pjs', 1 FROM generate_series(61000, 61049) g`
  t.equal(plain.count, 50, 'postgres.js without parameters (it always uses the extended protocol)')
  const since = new Date('2026-01-02T03:04:05.000Z')
  const typed = await sql`INSERT INTO items (id, owner, qty) SELECT ${sql.typed(62000, 20)} + g, to_char(${since} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), g FROM generate_series(1, ${20}) g WHERE ${true}`
  t.equal(typed.count, 20, 'postgres.js with an int8 (sql.typed), a Date, a number and a boolean (typed by Parse)')
  t.same([...new Set((await onShards('SELECT DISTINCT owner FROM items WHERE id BETWEEN 62001 AND 62020')).flat(2))], ['2026-01-02 03:04'], 'the timestamptz read as the Date sent')
  t.equal(misplaced(await onShards('SELECT id FROM items WHERE id BETWEEN 61000 AND 62020'), 'bigint'), 0)
})

t.test('what it cannot do is refused, with the reason', async (t) => {
  await client.query('BEGIN')
  await t.rejects(client.query("INSERT INTO items (id, owner) SELECT g, 'tx' FROM generate_series(50000, 50010) g"), { code: '0A000', message: /takes its keys \(id\) from its SELECT, so its rows may go to several shards, which pgshard does only outside a transaction block/ })
  await client.query('ROLLBACK')
  await t.rejects(client.query("INSERT INTO items (id, owner) SELECT g, encode($1, 'hex') FROM generate_series(50000, 50010) g", [Buffer.from('ab')]), {
    code: '0A000', message: /parameter \$1 is in binary format, which pgshard cannot write into this statement's text/, hint: /text format/,
  }, 'a binary parameter (node-postgres sends a Buffer so)')
  await t.rejects(client.query("WITH s AS (SELECT generate_series(50000, 50010) AS g) INSERT INTO items (id, owner) SELECT g, 'r' FROM s RETURNING id"), { code: '0A000', message: /this INSERT … SELECT cannot be routed/, hint: /when its query stands on its own \(not over a WITH query of the INSERT\)/ })
  await t.rejects(client.query("INSERT INTO items (id, owner) SELECT i.id + 100000, o.owner FROM items i JOIN by_owner o ON o.item = i.id"), { code: '0A000', message: /a join across shards: by_owner is not joined on its sharding key to items/ }, 'a SELECT that cannot run on each shard for its own rows: the read\u2019s refusal')
  t.same((await onShards('SELECT count(*) FROM items WHERE id BETWEEN 50000 AND 59999')).flat(2), ['0', '0'], 'nothing written on either shard')
})
