// INSERT … SELECT with RETURNING or ON CONFLICT whose rows go to several shards: COPY (how pgshard splits a plain
// INSERT … SELECT) takes neither, so pgshard reads the SELECT's rows first, writes them into the INSERT as a VALUES
// list of typed constants, and splits that by key as any multi-row INSERT: each shard inserts, upserts and returns
// its own rows. Checked against the same statements on one plain database, through node-postgres (simple and
// extended protocol), postgres.js and psql.
import postgres from 'postgres'
import t from 'tap'
import { runCommand } from './harness/runCommand.js'
import { startWithPlainTwin } from './harness/plainTwin.js'

const SHARDING = {
  tables: [
    { name: 'accounts', key: 'id', type: 'bigint' },
    { name: 'staging', key: 'batch', type: 'bigint' },
  ],
  reference_tables: ['plans'],
  cross_shard_transactions: 'two_phase',
}
const SCHEMA = [
  'CREATE TABLE plans (code text PRIMARY KEY, price numeric(8,2))',
  "INSERT INTO plans VALUES ('free', 0), ('pro', 12.5), ('team', 40)",
  'CREATE TABLE accounts (id bigint PRIMARY KEY, plan text, balance numeric(10,2), seen int DEFAULT 0, note text)',
  'CREATE TABLE staging (batch bigint, account bigint, plan text, amount numeric(10,2))',
  `INSERT INTO staging SELECT g % 3, g, (ARRAY['free', 'pro', 'team'])[1 + g % 3], g * 1.25 FROM generate_series(1, 40) g`,
]
// Rows read first are bounded by listen.max_message_size.
const { fx, proxy, plain } = await startWithPlainTwin(t, 2, { sharding: SHARDING, listen: { max_message_size: 64 * 1024 } }, SCHEMA)
/** RETURNING rows sorted: the SELECT's order is its own to choose without ORDER BY, as on one server. */
const sorted = (rows: unknown[][]) => [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))
const both = async (sql: string, values?: unknown[]) => {
  const [a, b] = await Promise.all([proxy.query({ text: sql, values, rowMode: 'array' }), plain.query({ text: sql, values, rowMode: 'array' })])
  return { proxy: { rows: sorted(a.rows), count: a.rowCount, fields: a.fields.map((f) => [f.name, f.dataTypeID]) }, plain: { rows: sorted(b.rows), count: b.rowCount, fields: b.fields.map((f) => [f.name, f.dataTypeID]) } }
}
const table = 'SELECT id, plan, balance, seen, note FROM accounts ORDER BY id'

t.test('RETURNING, ON CONFLICT DO UPDATE and DO NOTHING over rows from a function, a reference table and a sharded table', async (t) => {
  const statements = [
    "INSERT INTO accounts (id, plan, balance) SELECT g, 'free', g * 2 FROM generate_series(1, 30) g RETURNING id, balance",
    "INSERT INTO accounts (id, plan, balance) SELECT g, 'pro', g * 3 FROM generate_series(25, 36) g ON CONFLICT (id) DO UPDATE SET plan = EXCLUDED.plan, balance = accounts.balance + EXCLUDED.balance, seen = accounts.seen + 1 RETURNING *",
    "INSERT INTO accounts (id, plan) SELECT g, 'team' FROM generate_series(1, 40) g ON CONFLICT DO NOTHING RETURNING id, plan",
    'INSERT INTO accounts (id, plan, balance) SELECT 1000 + row_number() OVER (ORDER BY code), code, price FROM plans ON CONFLICT (id) DO NOTHING RETURNING id, plan, balance',
    'INSERT INTO accounts (id, plan, balance, note) SELECT account + 100, plan, amount, batch::text FROM staging WHERE amount > 10 ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note RETURNING id, note',
    "INSERT INTO accounts (id, plan) SELECT id + 500, plan FROM accounts WHERE seen > 0 ORDER BY id ON CONFLICT DO NOTHING RETURNING id",
    "INSERT INTO accounts (id, plan) SELECT g, 'none' FROM generate_series(1, 0) g ON CONFLICT DO NOTHING RETURNING id",
  ]
  for (const sql of statements) {
    const r = await both(sql)
    t.same(r.proxy, r.plain, sql)
  }
  t.same((await both(table)).proxy.rows, (await both(table)).plain.rows, 'the table holds the same rows')
  const spread = await fx.topo.queryPrimaries('SELECT count(*)::int AS n FROM accounts', 'app')
  t.ok(spread.every((rows) => (rows[0]!.n as number) > 10), `rows on both shards: ${spread.map((rows) => rows[0]!.n).join(', ')}`)
})

t.test('parameters through the extended protocol, postgres.js and psql', async (t) => {
  // Parameters in the SELECT read first and in the ON CONFLICT clause written with its rows.
  const sql = 'INSERT INTO accounts (id, plan, balance) SELECT g, $1, g * $2::numeric FROM generate_series($3::int, $4::int) g ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + $2::numeric, note = $5 RETURNING id, plan, balance, note'
  for (const round of ['inserted', 'upserted']) {
    const r = await both(sql, ['pro', 1.5, 2000, 2012, round])
    t.same(r.proxy, r.plain, `node-postgres with parameters: ${round}`)
    t.equal(r.proxy.count, 13)
  }
  const js = postgres({ host: '127.0.0.1', port: fx.port, user: 'app', password: fx.pgOptions.password as string, database: 'app', max: 1, onnotice: () => {} })
  t.teardown(() => js.end())
  const made = await js`INSERT INTO accounts (id, plan) SELECT g, ${'team'} FROM generate_series(${3000}::int, ${3009}::int) g RETURNING id`
  t.same(made.map((row) => Number(row.id)).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => 3000 + i), 'postgres.js')
  const psql = await runCommand('psql', ['-X', '-At', fx.dsn, '-c', "INSERT INTO accounts (id, plan) SELECT g, 'free' FROM generate_series(4000, 4004) g RETURNING id"], { env: fx.env })
  t.equal(psql.code, 0, psql.stderr)
  t.same(psql.stdout.trim().split('\n').sort(), ['4000', '4001', '4002', '4003', '4004', 'INSERT 0 5'].sort(), 'psql')
  await plain.query("INSERT INTO accounts (id, plan) SELECT g, 'team' FROM generate_series(3000, 3009) g")
  await plain.query("INSERT INTO accounts (id, plan) SELECT g, 'free' FROM generate_series(4000, 4004) g")
  t.same((await both(table)).proxy.rows, (await both(table)).plain.rows, 'the table holds the same rows')
})

t.test('inside a transaction across shards: the rows commit or roll back with it', async (t) => {
  for (const end of ['ROLLBACK', 'COMMIT']) {
    await proxy.query('BEGIN')
    const inserted = await proxy.query("INSERT INTO accounts (id, plan) SELECT g, 'tx' FROM generate_series(5000, 5009) g RETURNING id")
    t.equal(inserted.rowCount, 10)
    t.equal(Number((await proxy.query("SELECT count(*) FROM accounts WHERE plan = 'tx'")).rows[0].count), 10, 'the transaction sees its rows')
    await proxy.query(end)
    t.equal(Number((await proxy.query("SELECT count(*) FROM accounts WHERE plan = 'tx'")).rows[0].count), end === 'COMMIT' ? 10 : 0, `after ${end}`)
  }
  const spread = await fx.topo.queryPrimaries("SELECT count(*)::int AS n FROM accounts WHERE plan = 'tx'", 'app')
  t.ok(spread.every((rows) => (rows[0]!.n as number) > 0), 'committed on both shards')
})

t.test('too many rows to read first: 54000 with what to do, and the proxy serves on', async (t) => {
  await t.rejects(proxy.query("INSERT INTO accounts (id, note) SELECT g, repeat('x', 1000) FROM generate_series(10000, 10100) g RETURNING id"), {
    code: '54000',
    message: /the rows of INSERT … SELECT with RETURNING or ON CONFLICT exceed 65536 bytes \(listen\.max_message_size\)/,
    hint: /without RETURNING and ON CONFLICT: pgshard then streams any number of rows/,
  })
  t.equal(Number((await proxy.query('SELECT count(*) FROM accounts WHERE id >= 10000')).rows[0].count), 0, 'nothing was inserted')
  const streamed = await proxy.query("INSERT INTO accounts (id, note) SELECT g, repeat('x', 1000) FROM generate_series(10000, 10100) g")
  t.equal(streamed.rowCount, 101, 'without RETURNING the rows stream to their shards')
})
