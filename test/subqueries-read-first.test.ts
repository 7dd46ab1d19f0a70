// Subqueries that refer to nothing outside themselves and read a sharded table whose rows are on several shards
// (`WHERE total >= (SELECT max(total) FROM orders)`, `id IN (SELECT user_id FROM orders ORDER BY total DESC LIMIT
// 3)`, Django's Subquery without OuterRef): pgshard reads each first, routed as a statement of its own, and
// writes its answer into the statement as typed constants, as Postgres evaluates such a subquery once (an
// InitPlan). Checked against the same rows in one plain database, through psql, node-postgres and postgres.js,
// in reads, writes (whose answer each shard would otherwise have computed over its own rows), a transaction that
// wrote the rows, and the errors Postgres gives (more than one row, an unknown column, too large an answer). Subqueries
// in FROM are read first the same way, and a read computing over aggregates is written over one that computes them.
import pg from 'pg'
import postgres from 'postgres'
import t from 'tap'
import { runCommand } from './harness/runCommand.js'
import { startWithPlainTwin } from './harness/plainTwin.js'

const SHARDING = {
  tables: [
    { name: 'users', key: 'id', type: 'bigint' },
    { name: 'orders', key: 'user_id', type: 'bigint' },
  ],
  reference_tables: ['countries'],
  cross_shard_transactions: 'two_phase',
}
const SCHEMA = [
  'CREATE TABLE countries (code text PRIMARY KEY, name text, users_seen bigint)',
  "INSERT INTO countries VALUES ('fr', 'France', 0), ('de', 'Germany', 0), ('it', 'Italy', 0)",
  'CREATE TABLE users (id bigint PRIMARY KEY, name text, age int, country text, joined date, vip boolean, tag uuid, prefs jsonb)',
  `INSERT INTO users SELECT g, 'user ' || g || CASE WHEN g % 7 = 0 THEN ' o''neil \\ back' ELSE '' END, 20 + g % 30,
     (ARRAY['fr', 'de', 'it'])[1 + g % 3], date '2024-01-01' + g, g % 5 = 0, md5(g::text)::uuid, jsonb_build_object('n', g)
   FROM generate_series(1, 60) g`,
  'CREATE TABLE orders (id bigint, user_id bigint, total numeric(10,2), status text, PRIMARY KEY (user_id, id))',
  `INSERT INTO orders SELECT g, 1 + g % 60, (g * 37) % 100 + 0.5, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'open' END FROM generate_series(1, 240) g`,
]

// The answers of subqueries read first are bounded by listen.max_message_size.
const { fx, proxy, plain, plainDsn } = await startWithPlainTwin(t, 2, { sharding: SHARDING, listen: { max_message_size: 256 * 1024 } }, SCHEMA)
const perShard = await fx.topo.queryPrimaries('SELECT count(*)::int AS n FROM orders', 'app')
t.ok(perShard.every((rows) => (rows[0]!.n as number) > 40), `orders on both shards: ${perShard.map((rows) => rows[0]!.n).join(', ')}`)

const rowsOf = async (client: pg.Client, sql: string, values?: unknown[]) => (await client.query({ text: sql, values, rowMode: 'array' })).rows

const READS: [string, string][] = [
  ['the rows at the maximum', 'SELECT id, total FROM orders WHERE total >= (SELECT max(total) FROM orders) ORDER BY id'],
  ['a key pinned besides', 'SELECT id FROM orders WHERE user_id = 5 AND total > (SELECT avg(total) FROM orders) ORDER BY id'],
  ['IN, the top three by an ORDER BY and LIMIT across shards', 'SELECT id, name FROM users WHERE id IN (SELECT user_id FROM orders ORDER BY total DESC, id LIMIT 3) ORDER BY id'],
  ['NOT IN over a column that is not a key', "SELECT count(*) FROM users WHERE age NOT IN (SELECT user_id FROM orders WHERE status = 'paid')"],
  ['IN a subquery of no rows', "SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE status = 'none')"],
  ['NOT IN a subquery of no rows', "SELECT count(*) FROM users WHERE id NOT IN (SELECT user_id FROM orders WHERE status = 'none')"],
  ['NOT IN a subquery of no rows, read first', "SELECT count(*) FROM users WHERE age NOT IN (SELECT user_id FROM orders WHERE status = 'none')"],
  ['> ALL', "SELECT id FROM users WHERE age > ALL (SELECT age FROM users WHERE country = 'fr' AND id < 40) ORDER BY id"],
  ['= ANY', 'SELECT id FROM users WHERE age = ANY (SELECT count(*) FROM orders GROUP BY status) ORDER BY id'],
  ['EXISTS, true', 'SELECT id FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE total > 99) AND id < 4 ORDER BY id'],
  ['EXISTS, false', 'SELECT id FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE total > 1000) AND id < 4 ORDER BY id'],
  ['EXISTS of groups, each shard\u2019s not its share', 'SELECT id FROM users WHERE EXISTS (SELECT status FROM orders GROUP BY status HAVING count(*) > 100) AND id < 3 ORDER BY id'],
  ['NOT EXISTS of groups', 'SELECT count(*) FROM users WHERE NOT EXISTS (SELECT status FROM orders GROUP BY status HAVING count(*) > 1000)'],
  ['NOT EXISTS in the select list', 'SELECT NOT EXISTS (SELECT 1 FROM orders WHERE total > 99.4) AS none'],
  ['ARRAY(), in order', 'SELECT ARRAY(SELECT id FROM users WHERE age = 21 ORDER BY id DESC) AS a'],
  ['a value in the select list of a pinned read', 'SELECT id, (SELECT count(*) FROM orders) AS n, (SELECT sum(total) FROM orders) AS s FROM users WHERE id = 3'],
  ['two subqueries in one expression', 'SELECT (SELECT max(total) FROM orders) - (SELECT min(total) FROM orders) AS spread'],
  ['a value that pins the key', 'SELECT id, name FROM users WHERE id = (SELECT user_id FROM orders ORDER BY total DESC, id LIMIT 1)'],
  ['no row: NULL', 'SELECT count(*) FROM users WHERE id = (SELECT user_id FROM orders WHERE total > 1000)'],
  ['several columns IN', 'SELECT id FROM users WHERE (id, age) IN (SELECT user_id, 21 FROM orders WHERE total > 90) ORDER BY id'],
  ['inside a subquery tied to the row', 'SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.total > (SELECT avg(total) FROM orders)) ORDER BY u.id'],
  ['one inside another', 'SELECT count(*) FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > (SELECT avg(total) FROM orders WHERE status = $$paid$$))'],
  ['text with a quote and a backslash', 'SELECT id FROM users WHERE name = (SELECT name FROM users WHERE id = 14)'],
  ['dates, booleans, uuids, jsonb', 'SELECT id FROM users WHERE joined > (SELECT max(joined) FROM users WHERE age = 21) AND vip = (SELECT vip FROM users WHERE id = 10) AND tag <> (SELECT tag FROM users WHERE id = 2) AND prefs <> (SELECT prefs FROM users WHERE id = 2) ORDER BY id'],
  ['over a reference table joined in', "SELECT c.name, u.id FROM users u JOIN countries c ON c.code = u.country WHERE u.age = (SELECT max(age) FROM users WHERE country = 'de') ORDER BY u.id"],
  ['computing over its aggregate', 'SELECT id FROM users WHERE age > (SELECT avg(age) + 1 FROM users) ORDER BY id'],
  ['in a WHERE of a grouped read', 'SELECT country, count(*) FROM users WHERE age > (SELECT avg(age) FROM users) GROUP BY country ORDER BY country'],
]

t.test('node-postgres, simple protocol: the answers of one Postgres', async (t) => {
  for (const [name, sql] of READS) t.same(await rowsOf(proxy, sql), await rowsOf(plain, sql), name)
})

// Subqueries in FROM that name nothing around them, which each shard cannot answer for its own rows: read first,
// then the statement runs over their rows written in as a VALUES list under their columns' names.
const TABLES: [string, string][] = [
  ['grouped by a column that is not a key', 'SELECT max(n) FROM (SELECT country, count(*) AS n FROM users GROUP BY country) s'],
  ['made DISTINCT', 'SELECT status FROM (SELECT DISTINCT status FROM orders) s ORDER BY 1'],
  ['grouped by the key, with LIMIT', 'SELECT * FROM (SELECT user_id, count(*) FROM orders GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 3) s'],
  ['joined to a sharded table on what is not its key', 'SELECT u.id, s.status FROM users u JOIN (SELECT status, count(*) AS n FROM orders GROUP BY status) s ON s.n / 2 = u.id ORDER BY u.id'],
  ['with a column list of its own', 'SELECT x.a, x.b FROM (SELECT status, sum(total) FROM orders GROUP BY status) AS x (a, b) ORDER BY 1'],
  ['of no row', "SELECT * FROM (SELECT status, count(*) FROM orders WHERE total > 1000 GROUP BY status) s"],
  ['columns of one name', 'SELECT * FROM (SELECT 1, 2, count(*) FROM orders) s'],
  ['filtered outside', 'SELECT * FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) s WHERE n > 10 ORDER BY status'],
]

t.test('subqueries in FROM read first: the answers of one Postgres', async (t) => {
  for (const [name, sql] of TABLES) {
    const got = await proxy.query({ text: sql, rowMode: 'array' })
    const want = await plain.query({ text: sql, rowMode: 'array' })
    t.same(got.rows, want.rows, name)
    t.same(got.fields.map((f) => [f.name, f.dataTypeID]), want.fields.map((f) => [f.name, f.dataTypeID]), `${name}: columns`)
  }
})

// Expressions over aggregates, which the merge does not compute: the statement runs over a subquery in FROM that
// computes the bare aggregates by the same groups, read first (the merge folds those), and one server computes the
// expressions, as Postgres would.
const OVER_AGGREGATES: [string, string, unknown[]?][] = [
  ['a ratio of two aggregates', 'SELECT sum(total) / count(*) FROM orders'],
  ['grouped, rounded, a FILTER, HAVING, ORDER BY an alias, LIMIT', 'SELECT status, round(avg(total), 2) AS a, count(*) FILTER (WHERE total > 50) * 100.0 / count(*) pct FROM orders o WHERE o.total > $1 GROUP BY status HAVING count(*) > 10 ORDER BY a DESC, status LIMIT 5', [3]],
  ['a difference, ORDER BY position', 'SELECT o.status, max(total) - min(total) FROM orders o GROUP BY o.status ORDER BY 2'],
  ['casts and names', 'SELECT country, count(*) * 2 AS double, avg(age)::int FROM users GROUP BY country ORDER BY country'],
  ['CASE over a count', "SELECT CASE WHEN count(*) > 100 THEN 'many' ELSE 'few' END FROM orders"],
  ['over no row', 'SELECT coalesce(sum(total), 0) + 1 FROM orders WHERE total > 1000'],
  ['HAVING over an aggregate and a group column', 'SELECT country, count(*) FROM users GROUP BY country HAVING count(*) > length(country) * 9 ORDER BY country'],
  ['by day, GROUP BY and ORDER BY a position', "SELECT date_trunc('month', joined) AS m, round(avg(age), 1) FROM users GROUP BY 1 ORDER BY 1"],
  ['GROUP BY an expression of the select list', 'SELECT upper(country), count(*) * 100 / (SELECT count(*) FROM users) AS pct FROM users GROUP BY upper(country) ORDER BY 1'],
  ['pinned: as written, on one shard', 'SELECT max(total) - min(total) AS spread FROM orders WHERE user_id = 5'],
]

t.test('expressions over aggregates: the answers, names and types of one Postgres', async (t) => {
  for (const [name, sql, values] of OVER_AGGREGATES) {
    const got = await proxy.query({ text: sql, values, rowMode: 'array' })
    const want = await plain.query({ text: sql, values, rowMode: 'array' })
    t.same(got.rows, want.rows, name)
    t.same(got.fields.map((f) => [f.name, f.dataTypeID]), want.fields.map((f) => [f.name, f.dataTypeID]), `${name}: columns`)
  }
})

t.test('node-postgres with parameters in the subquery, in the statement, in both, and in neither text after', async (t) => {
  const cases: [string, unknown[]][] = [
    ['SELECT id FROM orders WHERE total >= (SELECT max(total) FROM orders WHERE status = $1) AND user_id <> $2 ORDER BY id', ['open', 3]],
    ['SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > $1) AND age > $2 ORDER BY id', [95, 30]],
    // $1 is in the subquery only: once its answer is written in, no text names $1.
    ['SELECT $2::int AS x, (SELECT count(*) FROM orders WHERE total > $1) AS n', [50, 7]],
    ['SELECT id FROM users WHERE name = (SELECT name FROM users WHERE id = $1)', [21]],
  ]
  for (const [sql, values] of cases) t.same(await rowsOf(proxy, sql, values), await rowsOf(plain, sql, values), sql)
})

t.test('postgres.js named prepared statements, run again with other values', async (t) => {
  const sql = postgres(fx.url, { max: 1, prepare: true, onnotice: () => {} })
  t.teardown(() => sql.end())
  const query = 'SELECT id::int, age FROM users WHERE age >= (SELECT max(age) FROM users WHERE country = $2) - $1::int ORDER BY id'
  for (const [d, country] of [[0, 'fr'], [3, 'de'], [30, 'it']] as const) {
    const got = await sql.unsafe(query, [d, country], { prepare: true })
    const want = (await plain.query(query, [d, country])).rows
    t.same(got.map((r) => ({ ...r })), want, `max - ${d} in ${country}: ${want.length} rows`)
  }
})

t.test('psql: a subquery read first through the simple protocol', async (t) => {
  const sql = 'SELECT id, name FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > (SELECT avg(total) FROM orders) ORDER BY total DESC, id LIMIT 5) ORDER BY id'
  const through = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', fx.dsn, '-c', sql], { env: fx.env })
  const direct = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', plainDsn, '-c', sql], { env: fx.env })
  t.equal(through.code, 0, through.stderr)
  t.equal(direct.code, 0, direct.stderr)
  t.equal(through.stdout.split('\n').filter(Boolean).length, 5, 'five users')
  t.equal(through.stdout, direct.stdout, 'the rows of one Postgres')
})

// psycopg 3 in pipeline mode: statements before one whose subquery is read first, in the same Sync, are in an
// implicit transaction the read would not see: refused, saying to send a Sync; after a Sync it reads them.
const PIPELINE = `
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
sql = "SELECT count(*) FROM orders WHERE total >= (SELECT max(total) FROM orders WHERE status = %s)"
try:
    with conn.pipeline():
        conn.execute("INSERT INTO orders (id, user_id, total, status) VALUES (7001, 4, 900, 'pipe')")
        conn.execute(sql, ("pipe",))
    print("no error")
except psycopg.Error as e:
    print("error", e.sqlstate, str(e).splitlines()[0])
with conn.pipeline() as p:
    conn.execute("INSERT INTO orders (id, user_id, total, status) VALUES (7002, 5, 950, 'pipe')")
    p.sync()
    print("after a Sync", conn.execute(sql, ("pipe",)).fetchone()[0])
conn.execute("DELETE FROM orders WHERE status = 'pipe'")
`

t.test('psycopg pipeline mode: a Sync before the statement whose subquery is read first', async (t) => {
  const run = await runCommand('/usr/bin/python3', ['-c', PIPELINE, `${fx.dsn} password=${fx.pgOptions.password}`], { env: fx.env, timeoutMs: 60_000 })
  t.equal(run.code, 0, run.stderr)
  const lines = run.stdout.trim().split('\n')
  t.match(lines[0], /^error 0A000 a statement with a subquery over sharded table orders, read first on its own cannot follow other statements of a pipeline before their Sync/, 'refused in the same Sync')
  t.equal(lines[1], 'after a Sync 1', 'after a Sync: the pipeline\u2019s own row, the largest')
  t.same(await rowsOf(proxy, "SELECT count(*) FROM orders WHERE status = 'pipe'"), [['0']], 'the refused pipeline left nothing')
})

t.test('writes whose subquery each shard would have answered over its own rows', async (t) => {
  const writes = [
    // Routed to the one shard that holds user 7's rows, its subquery would have averaged that shard's orders only.
    'UPDATE orders SET status = \'top\' WHERE user_id = 7 AND total >= (SELECT avg(total) FROM orders)',
    // Without its key, its rows found first on each shard: each would have taken its own average.
    'UPDATE orders SET status = \'cheap\' WHERE id IN (17, 18) AND total < (SELECT avg(total) FROM orders)',
    // On the shards of three keys, all or nothing: each would have taken its own minimum.
    "DELETE FROM orders WHERE user_id IN (11, 12, 13) AND total > (SELECT min(total) FROM orders WHERE status = 'paid' AND total > 4)",
    // A key pinned, the same table read without it.
    'DELETE FROM orders WHERE user_id = 5 AND total < (SELECT avg(total) FROM orders)',
    "INSERT INTO orders (id, user_id, total, status) VALUES (1000, 9, (SELECT max(total) FROM orders), 'max')",
    // Its rows split by key through COPY: their SELECT's subquery would have been each shard's.
    "INSERT INTO orders (id, user_id, total, status) SELECT 3000 + id, id, (SELECT avg(total) FROM orders)::numeric(10,2), 'avg' FROM users WHERE id <= 5",
    'UPDATE users SET age = (SELECT count(*) FROM orders WHERE status = \'paid\') WHERE id IN (SELECT user_id FROM orders ORDER BY total, id LIMIT 2)',
    // A reference table, written on every shard, from a count across shards.
    "UPDATE countries SET users_seen = (SELECT count(*) FROM users WHERE country = 'fr') WHERE code = 'fr'",
  ]
  for (const sql of writes) {
    const got = await proxy.query(sql)
    const want = await plain.query(sql)
    t.equal(got.rowCount, want.rowCount, `${sql}: ${want.rowCount} rows`)
  }
  for (const table of ['orders ORDER BY user_id, id', 'users ORDER BY id', 'countries ORDER BY code']) {
    t.same(await rowsOf(proxy, `SELECT * FROM ${table}`), await rowsOf(plain, `SELECT * FROM ${table}`), `${table.split(' ')[0]} as in one Postgres`)
  }
  const copies = await fx.topo.queryPrimaries("SELECT users_seen::int AS n FROM countries WHERE code = 'fr'", 'app')
  t.same(copies.map((rows) => rows[0]!.n), [20, 20], 'every shard\u2019s copy of the reference row holds the count over all shards')
  // Its SELECT reads the table it inserts into on every shard: not one shard's read, refused by the merge of COPY.
  await t.rejects(proxy.query('INSERT INTO orders (id, user_id, total) SELECT 2000, 5, max(total) FROM orders'), { code: '0A000' }, 'INSERT … SELECT of an aggregate over its own table across shards')
  t.same(await rowsOf(proxy, 'SELECT count(*) FROM orders WHERE id = 2000'), [['0']], 'and it inserted nothing')
})

t.test('a transaction that wrote rows on several shards: the subquery sees them', async (t) => {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  t.teardown(() => c.end())
  await c.query('BEGIN')
  await c.query("INSERT INTO orders (id, user_id, total, status) VALUES (5001, 1, 500, 'x'), (5002, 2, 500, 'x'), (5003, 3, 400, 'x')")
  const top = await rowsOf(c, 'SELECT id FROM orders WHERE total >= (SELECT max(total) FROM orders) ORDER BY id')
  const users = await rowsOf(c, "SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE status = 'x') ORDER BY id")
  await c.query('ROLLBACK')
  t.same(top, [['5001'], ['5002']], 'the transaction\u2019s own rows, from both shards')
  t.same(users, [['1'], ['2'], ['3']], 'its rows decide an IN')
  t.same(await rowsOf(proxy, "SELECT count(*) FROM orders WHERE status = 'x'"), [['0']], 'rolled back')
})

t.test('errors as Postgres gives them, and the session goes on', async (t) => {
  await t.rejects(proxy.query('SELECT id FROM users WHERE id = (SELECT user_id FROM orders)'), { code: '21000', message: 'more than one row returned by a subquery used as an expression' })
  await t.rejects(proxy.query('SELECT id FROM users WHERE id = (SELECT user_id, id FROM orders WHERE id = 1)'), { code: '42601', message: 'subquery must return only one column' })
  await t.rejects(proxy.query('SELECT u.id FROM users u WHERE u.age > (SELECT count(*) FROM orders WHERE user_id = age)'), {
    code: '42703',
    message: /column "age" does not exist \(in a subquery over a sharded table that pgshard reads first, on its own\)/,
  }, 'an outer column named without its table')
  await t.rejects(proxy.query("SELECT id FROM users WHERE name IN (SELECT repeat('x', 2000) || id FROM orders)"), {
    code: '54000',
    message: /the answer of a subquery over a sharded table exceeds 262144 bytes \(listen\.max_message_size\)/,
  })
  await t.rejects(proxy.query("SELECT count(*) FROM (SELECT DISTINCT repeat('y', 2000) || id AS pad FROM orders) s WHERE pad > 'a'"), {
    code: '54000',
    detail: /As written, the statement cannot run across shards: DISTINCT in a subquery in FROM over sharded tables/,
  }, 'a subquery in FROM too large: the detail says why it was read first')
  await t.rejects(proxy.query('SELECT id FROM users WHERE age > (SELECT length(json_agg(age)::text) FROM users)'), {
    code: '0A000',
    message: /the aggregate json_agg\(\).*\(in a subquery over a sharded table, which pgshard reads first on its own\)/,
  })
  const median = 'SELECT count(*) FROM users WHERE age > (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY age) FROM users)'
  t.same(await rowsOf(proxy, median), await rowsOf(plain, median), 'a median read first, merged across shards')
  await t.rejects(proxy.query('SELECT id FROM users WHERE age > (SELECT 1 / (total - total) FROM orders WHERE id = 1)'), { code: '22012' }, 'the shard\u2019s error')
  t.same(await rowsOf(proxy, 'SELECT count(*) FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 99)'), await rowsOf(plain, 'SELECT count(*) FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 99)'), 'then: answers again')
})
