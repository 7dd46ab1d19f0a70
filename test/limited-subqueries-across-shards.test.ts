// A subquery in FROM whose rows its LIMIT or OFFSET picks, joined to sharded tables: what SQLAlchemy's
// joinedload with limit() or first() and Sequelize's include with limit send. The subquery runs first across
// shards and each shard then runs the statement with its share of the rows picked, so the answer is the one Postgres
// gives over all rows; checked here with psql, node-postgres, postgres.js (named prepared statements, cursors), a SQL cursor,
// a transaction that wrote the rows it reads, and a subquery that fails. The same rows in one plain database
// answer each query for comparison (scatter-corpus.test.ts holds more shapes).
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
  cross_shard_transactions: 'two_phase',
}
const SCHEMA = [
  'CREATE TABLE users (id bigint PRIMARY KEY, name text, score int)',
  'CREATE TABLE orders (id bigint, user_id bigint, total numeric(10,2), PRIMARY KEY (user_id, id))',
  `INSERT INTO users SELECT g, 'user ' || g, (g * 37) % 100 FROM generate_series(1, 90) g`,
  'INSERT INTO orders SELECT u * 10 + j, u, (u * j) % 50 + 0.25 FROM generate_series(1, 90) u, generate_series(1, 3) j WHERE j <= u % 4',
]

// SQLAlchemy 1.4: session.query(User).options(joinedload(User.orders)).order_by(User.score.desc(), User.id).limit(n)
const JOINEDLOAD = `SELECT anon_1.users_id, anon_1.users_name, anon_1.users_score, orders_1.id AS orders_1_id, orders_1.total AS orders_1_total
  FROM (SELECT users.id AS users_id, users.name AS users_name, users.score AS users_score FROM users ORDER BY users.score DESC, users.id LIMIT $1 OFFSET $2) AS anon_1
  LEFT OUTER JOIN orders AS orders_1 ON anon_1.users_id = orders_1.user_id ORDER BY anon_1.users_score DESC, anon_1.users_id, orders_1.id`

// The rows a subquery picks are held until every shard answered: at most listen.max_message_size bytes of them.
const { fx, proxy, plain, plainDsn } = await startWithPlainTwin(t, 2, { sharding: SHARDING, listen: { max_message_size: 256 * 1024 } }, SCHEMA)
const perShard = await fx.topo.queryPrimaries('SELECT count(*)::int AS n FROM users', 'app')
t.ok(perShard.every((rows) => (rows[0]!.n as number) > 20), `users on both shards: ${perShard.map((rows) => rows[0]!.n).join(', ')}`)

const rowsOf = async (client: pg.Client, sql: string, values?: unknown[]) => (await client.query({ text: sql, values, rowMode: 'array' })).rows

t.test('node-postgres: joinedload with limit and offset answers as one Postgres', async (t) => {
  for (const [limit, offset] of [[5, 0], [1, 0], [12, 7], [40, 70], [3, 200]] as const) {
    const want = await rowsOf(plain, JOINEDLOAD, [limit, offset])
    t.same(await rowsOf(proxy, JOINEDLOAD, [limit, offset]), want, `LIMIT ${limit} OFFSET ${offset}: ${want.length} rows, in order`)
  }
  // A parameter only the outer query uses: the subquery's read gets it as NULL.
  const outerParam = 'SELECT u.id, o.id FROM (SELECT id, score FROM users ORDER BY score, id LIMIT $2) u JOIN orders o ON o.user_id = u.id WHERE o.total > $1 ORDER BY u.score, u.id, o.id'
  t.same(await rowsOf(proxy, outerParam, [10, 15]), await rowsOf(plain, outerParam, [10, 15]), 'a parameter of the outer query only')
})

t.test('psql (simple protocol, literals in the text) and Sequelize\u2019s include with limit', async (t) => {
  const sequelize = `SELECT "User".*, "orders"."id" AS "orders.id" FROM (SELECT "User"."id", "User"."name" FROM "users" AS "User" WHERE "User"."score" > 20 ORDER BY "User"."name" DESC LIMIT 4) AS "User" LEFT OUTER JOIN "orders" AS "orders" ON "User"."id" = "orders"."user_id" ORDER BY "User"."name" DESC, "orders"."id";`
  const through = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', fx.dsn, '-c', sequelize], { env: fx.env })
  const direct = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', plainDsn, '-c', sequelize], { env: fx.env })
  t.equal(through.code, 0, through.stderr)
  t.equal(direct.code, 0, direct.stderr)
  t.ok(through.stdout.split('\n').length > 4, 'more rows than users: their orders joined')
  t.equal(through.stdout, direct.stdout, 'the same rows as one Postgres')
})

t.test('postgres.js with named prepared statements, run again with other values', async (t) => {
  const sql = postgres(fx.url, { max: 1, prepare: true, onnotice: () => {} })
  t.teardown(() => sql.end())
  const query = 'SELECT u.id, u.score, count(o.id)::int AS orders FROM (SELECT id, score FROM users WHERE score >= $1 ORDER BY score DESC, id LIMIT $2) u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id, u.score ORDER BY u.score DESC, u.id'
  for (const [min, n] of [[50, 6], [90, 3], [0, 100], [99, 5]] as const) {
    const got = await sql.unsafe(query, [min, n], { prepare: true })
    const want = (await plain.query(query, [min, n])).rows
    t.same(got.map((r) => ({ ...r })), want, `score >= ${min} LIMIT ${n}: ${want.length} users`)
  }
})

t.test('postgres.js cursors (Execute with a row limit) outside and inside a transaction', async (t) => {
  const sql = postgres(fx.url, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const query = 'SELECT u.id::int, o.id::int AS order_id FROM (SELECT id FROM users WHERE score > $1 ORDER BY score DESC, id LIMIT $2) u LEFT JOIN orders o ON o.user_id = u.id ORDER BY u.id, o.id'
  const want = (await plain.query(query, [30, 9])).rows
  const read = async (s: postgres.Sql | postgres.TransactionSql) => {
    const got: unknown[] = []
    for await (const rows of s.unsafe(query, [30, 9]).cursor(4)) got.push(...rows.map((r) => ({ ...r })))
    return got
  }
  t.same(await read(sql), want, `outside a transaction: ${want.length} rows, 4 at a time`)
  t.same(await sql.begin('READ ONLY', (tx) => read(tx)), want, 'inside a READ ONLY transaction: fetched in parts from each shard')
})

t.test('a SQL cursor in a READ ONLY transaction, and a transaction that wrote the rows it reads', async (t) => {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  t.teardown(() => c.end())
  const query = 'SELECT u.id, o.id AS order_id FROM (SELECT id FROM users ORDER BY score DESC, id LIMIT 6) u LEFT JOIN orders o ON o.user_id = u.id ORDER BY u.id, o.id'
  const want = await rowsOf(plain, query)
  await c.query('BEGIN READ ONLY')
  await c.query(`DECLARE cur CURSOR FOR ${query}`)
  const first = await rowsOf(c, 'FETCH 3 FROM cur')
  const rest = await rowsOf(c, 'FETCH ALL FROM cur')
  await c.query('COMMIT')
  t.same([...first, ...rest], want, 'FETCH in parts: the rows of one Postgres, in order')

  // Users with the top score, written on both shards in this transaction, are what the subquery picks.
  await c.query('BEGIN')
  await c.query(`INSERT INTO users (id, name, score) VALUES (1001, 'new a', 100), (1002, 'new b', 100), (1003, 'new c', 100), (1004, 'new d', 100)`)
  const top = await rowsOf(c, 'SELECT u.id FROM (SELECT id FROM users ORDER BY score DESC, id LIMIT 4) u JOIN users x ON x.id = u.id ORDER BY u.id')
  await c.query('ROLLBACK')
  t.same(top, [['1001'], ['1002'], ['1003'], ['1004']], 'the transaction\u2019s own rows, from every shard')
})

t.test('a subquery that fails, COPY of such a query, or too many bytes picked: a clear error, and the session goes on', async (t) => {
  const failing = proxy.query('SELECT u.id FROM (SELECT id FROM users WHERE 1 / (score - score) = 1 ORDER BY id LIMIT 3) u JOIN orders o ON o.user_id = u.id')
  await t.rejects(failing, { code: '22012', message: /division by zero/ }, 'the shard\u2019s error')
  await t.rejects(proxy.query('COPY (SELECT u.id FROM (SELECT id FROM users ORDER BY id LIMIT 3) u JOIN orders o ON o.user_id = u.id) TO STDOUT'), {
    code: '0A000',
    message: /a subquery whose LIMIT or OFFSET picks rows: each shard would pick its own first rows/,
  })
  await t.rejects(proxy.query("SELECT u.id FROM (SELECT id, repeat(name, 800) AS pad FROM users ORDER BY id LIMIT 80) u JOIN orders o ON o.user_id = u.id"), {
    code: '54000',
    message: /the rows a subquery's LIMIT or OFFSET picks across shards exceed 262144 bytes \(listen\.max_message_size\)/,
  })
  const after = 'SELECT count(*) FROM (SELECT id FROM users ORDER BY id LIMIT 3) u JOIN orders o ON o.user_id = u.id'
  t.same(await rowsOf(proxy, after), [['6']], 'then: the orders of users 1 to 3 (1, 2 and 3)')
})
