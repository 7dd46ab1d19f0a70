// A simple query of several statements that cannot run together on the servers (each reads or writes other
// shards, one reads several shards whose rows must be merged, PREPARE and EXECUTE, a COMMIT that ends a
// transaction across shards): pgshard runs them one by one, each routed as a query of its own, and answers as one
// server does: each statement's rows and tag in turn, one ReadyForQuery, an error stops the rest, and outside a
// transaction block they are one implicit transaction (an error undoes the statements before it; a BEGIN among
// them makes it the client's; a COMMIT ends it). Checked against the same rows in one plain database through
// node-postgres, psql, postgres.js and psycopg, with two-phase commit and with a transaction that writes one shard.
import pg from 'pg'
import postgres from 'postgres'
import t from 'tap'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { runCommand } from './harness/runCommand.js'
import { startWithPlainTwin } from './harness/plainTwin.js'
import { APP_PASSWORD, proxyConfig } from './harness/startProxy.js'

const SHARDING = {
  tables: [
    { name: 'users', key: 'id', type: 'bigint' },
    { name: 'orders', key: 'user_id', type: 'bigint' },
  ],
  reference_tables: ['countries'],
  cross_shard_transactions: 'two_phase',
}
const SCHEMA = [
  'CREATE TABLE countries (code text PRIMARY KEY, name text)',
  "INSERT INTO countries VALUES ('fr', 'France'), ('de', 'Germany')",
  'CREATE TABLE users (id bigint PRIMARY KEY, name text, country text)',
  "INSERT INTO users SELECT g, 'user ' || g, (ARRAY['fr', 'de'])[1 + g % 2] FROM generate_series(1, 40) g",
  'CREATE TABLE orders (id bigint, user_id bigint, total numeric(10,2), PRIMARY KEY (user_id, id))',
  'INSERT INTO orders SELECT g, 1 + g % 40, g * 1.5 FROM generate_series(1, 120) g',
]

const { fx, proxy, plain, plainDsn } = await startWithPlainTwin(t, 2, { sharding: SHARDING }, SCHEMA)
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
/** The first key from `from` on that shard. */
const keyOn = (shard: number, from = 1): number => {
  for (let k = from; ; k++) if (map.ring.shardFor(String(k)) === shard) return k
}
const [k0, k1] = [keyOn(0), keyOn(1)]

/** Each statement's command, row count and rows, as node-postgres reports a query of several statements. */
async function answers(client: pg.Client, sql: string): Promise<unknown> {
  try {
    const results = [await client.query({ text: sql, rowMode: 'array' })].flat() as pg.QueryResult[]
    return results.map((r) => [r.command, r.rowCount, r.rows])
  } catch (err) {
    const e = err as { code?: string; message: string }
    return { error: e.code, message: e.message }
  }
}

const onBoth = async (sql: string) => ({ proxy: await answers(proxy, sql), plain: await answers(plain, sql) })

t.test('reads that need several shards, each merged as a query of its own', async (t) => {
  const queries: [string, string][] = [
    ['two counts over every shard', 'SELECT count(*) FROM users; SELECT count(*) FROM orders'],
    ['a read of every shard, then one of one shard', `SELECT count(*) FROM users; SELECT name FROM users WHERE id = ${k1}`],
    ['grouped and ordered, then a reference table', 'SELECT country, count(*) FROM users GROUP BY country ORDER BY country; SELECT name FROM countries ORDER BY code'],
    ['an error in the second stops the third', 'SELECT count(*) FROM users; SELECT 1/0; SELECT count(*) FROM orders'],
    ['a SHOW among them', 'SHOW TimeZone; SELECT sum(total) FROM orders'],
  ]
  for (const [name, sql] of queries) {
    const { proxy: through, plain: direct } = await onBoth(sql)
    t.same(through, direct, name)
  }
  const after = await answers(proxy, 'SELECT 1 AS still')
  t.same(after, [['SELECT', 1, [[1]]]], 'the session goes on after an error among them')
})

t.test('writes on several shards: one implicit transaction, all or nothing (two-phase commit)', async (t) => {
  const ids = [keyOn(0, 1000), keyOn(1, 1000)].map(String)
  const write = (n: number) => `INSERT INTO users (id, name, country) VALUES (${ids[0]}, 'w${n}', 'fr'); INSERT INTO users (id, name, country) VALUES (${ids[1]}, 'w${n}', 'de')`
  const check = `SELECT id, name FROM users WHERE id IN (${ids.join(', ')}) ORDER BY id`
  const failed = await onBoth(`${write(1)}; SELECT 1/0`)
  t.same(failed.proxy, failed.plain, 'an error after them: the error')
  t.same(await answers(proxy, check), [['SELECT', 0, []]], 'and neither shard kept its row')
  const done = await onBoth(`${write(2)}; SELECT count(*) FROM users WHERE name = 'w2'`)
  t.same(done.proxy, done.plain, 'the count after them sees both rows')
  t.same(await answers(proxy, check), await answers(plain, check), 'both rows committed, as in one database')
  const dup = await onBoth(`UPDATE users SET name = 'w3' WHERE id = ${ids[0]}; INSERT INTO users (id, name) VALUES (${ids[1]}, 'dup')`)
  t.match(dup.proxy, { error: '23505' }, 'a duplicate key on the second shard fails the query')
  t.same(dup.proxy, dup.plain, 'with the server\u2019s own error')
  t.same(await answers(proxy, check), await answers(plain, check), 'and the first shard\u2019s update is undone')
  await onBoth(`DELETE FROM users WHERE id IN (${ids.join(', ')})`)
})

t.test('transaction statements among them, as Postgres treats them', async (t) => {
  const id = 2000
  const rows = `SELECT id, name FROM users WHERE id BETWEEN ${id} AND ${id + 9} ORDER BY id`
  const commitThenFail = `SELECT count(*) FROM orders; INSERT INTO users (id, name) VALUES (${id}, 'kept'); COMMIT; INSERT INTO users (id, name) VALUES (${id + 1}, 'undone'); SELECT 1/0`
  const a = await onBoth(commitThenFail)
  t.same(a.proxy, a.plain, 'COMMIT among them: the error after it')
  t.same(await answers(proxy, rows), await answers(plain, rows), 'what came before the COMMIT is kept, what came after is undone')

  // A BEGIN among them makes the statements before it part of the client's transaction, which stays open.
  for (const client of [proxy, plain]) {
    const res = await answers(client, `SELECT count(*) FROM users; BEGIN; INSERT INTO users (id, name) VALUES (${id + 2}, 'in tx'); SELECT count(*) FROM users WHERE id >= ${id}`)
    t.same(res, [['SELECT', 1, [['41']]], ['BEGIN', null, []], ['INSERT', 1, []], ['SELECT', 1, [['2']]]], 'BEGIN among them: every answer')
    t.same(await answers(client, 'SELECT count(*) FROM users'), [['SELECT', 1, [['42']]]], 'the transaction is open and sees its row')
    t.same(await answers(client, 'ROLLBACK'), [['ROLLBACK', null, []]])
  }
  t.same(await answers(proxy, rows), await answers(plain, rows), 'and its ROLLBACK undid the row')

  // Inside a transaction across shards, a COMMIT among other statements commits it two-phase.
  await proxy.query('BEGIN')
  await proxy.query(`INSERT INTO users (id, name) VALUES (${keyOn(0, 2100)}, 'two-phase')`)
  const ended = await answers(proxy, `INSERT INTO users (id, name) VALUES (${keyOn(1, 2100)}, 'two-phase'); COMMIT`)
  t.same(ended, [['INSERT', 1, []], ['COMMIT', null, []]], 'the last write and the COMMIT')
  const both = await fx.topo.queryPrimaries(`SELECT count(*)::int AS n FROM users WHERE name = 'two-phase'`, 'app')
  t.same(both.map((r) => r[0]!.n), [1, 1], 'each shard committed its row')
  t.same(await fx.topo.queryPrimaries('SELECT count(*)::int AS n FROM pg_prepared_xacts', 'app').then((s) => s.map((r) => r[0]!.n)), [0, 0], 'no prepared transaction is left')

  const refused = await answers(proxy, 'SELECT count(*) FROM users; BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1')
  t.match(refused, { error: '0A000', message: /BEGIN with an isolation level or READ ONLY after other statements/ }, 'a BEGIN with options after statements is refused')
  t.same(await answers(proxy, 'SELECT 1 AS idle'), [['SELECT', 1, [[1]]]], 'outside a transaction afterwards')
  const made = `DELETE FROM users WHERE id IN (${id}, ${keyOn(0, 2100)}, ${keyOn(1, 2100)})`
  await proxy.query(made)
  await plain.query(made)
})

t.test('settings and PREPARE among them follow the client', async (t) => {
  const set = await onBoth("SET application_name = 'one query'; SELECT count(*) FROM users; SHOW application_name")
  t.same(set.proxy, set.plain, 'SET, a read of every shard, SHOW')
  const undone = await onBoth("SET application_name = 'undone'; SELECT count(*) FROM users; SELECT 1/0")
  t.same(undone.proxy, undone.plain, 'an error after a SET')
  t.same(await answers(proxy, 'SHOW application_name'), await answers(plain, 'SHOW application_name'), 'the failed query\u2019s SET is undone, as on one server')
  const prepared = await onBoth(`PREPARE by_id (bigint) AS SELECT name FROM users WHERE id = $1; EXECUTE by_id(${k0}); EXECUTE by_id(${k1})`)
  t.same(prepared.proxy, prepared.plain, 'PREPARE and EXECUTE for two shards in one query')
  t.same(await answers(proxy, `EXECUTE by_id(${k1})`), await answers(plain, `EXECUTE by_id(${k1})`), 'the statement stays prepared')
})

t.test('psql, postgres.js and psycopg', async (t) => {
  const sql = `SELECT count(*) FROM users; SELECT name FROM users WHERE id = ${k1}; SELECT sum(total) FROM orders`
  const psql = (dsn: string) => runCommand('psql', ['-X', '-At', dsn, '-c', sql], { env: fx.env })
  const [through, direct] = await Promise.all([psql(fx.dsn), psql(plainDsn)])
  t.equal(through.code, 0, through.stderr)
  t.equal(through.stdout, direct.stdout, 'psql prints each statement\u2019s rows')

  const js = postgres({ ...fx.pgOptions, username: fx.pgOptions.user, max: 1, onnotice: () => undefined })
  t.teardown(() => js.end())
  const results = (await js.unsafe(sql)) as unknown as postgres.RowList<postgres.Row[]>[]
  t.same(results.map((r) => [r.command, [...r]]), [['SELECT', [{ count: '40' }]], ['SELECT', [{ name: `user ${k1}` }]], ['SELECT', [{ sum: '10890.00' }]]], 'postgres.js, simple protocol')

  // psycopg's cursor keeps the last statement's rows (Django's cursor.execute of several statements).
  const script = 'import psycopg, sys\nwith psycopg.connect(sys.argv[1]) as c:\n    print(c.execute(sys.argv[2]).fetchall())\n'
  const py = (dsn: string) => runCommand('/usr/bin/python3', ['-c', script, `${dsn} password=${APP_PASSWORD}`, 'SELECT count(*) FROM users; SELECT count(*) FROM orders'], { env: fx.env })
  const [pyThrough, pyDirect] = await Promise.all([py(fx.dsn), py(plainDsn)])
  t.equal(pyThrough.code, 0, pyThrough.stderr)
  t.equal(pyThrough.stdout, pyDirect.stdout, 'psycopg (in its own transaction): the last statement\u2019s rows')
})

t.test('without two-phase commit the implicit transaction writes one shard, and says why when asked for two', async (t) => {
  // The idle-in-transaction clock runs only while the client is waited for, not between its statements.
  const config = proxyConfig(fx.topo, { sharding: { ...SHARDING, cross_shard_transactions: 'reject' }, pool: { idle_in_transaction_timeout: 300 } })
  const app = await ProxyApp.start(config, { log: createLogger({ level: 'warn' }) })
  t.teardown(() => app.stop(500))
  const c = new pg.Client({ ...fx.pgOptions, port: app.address.port })
  await c.connect()
  t.teardown(() => c.end())
  const ids = [keyOn(0, 3000), keyOn(1, 3000)]
  const res = await answers(c, `INSERT INTO users (id, name) VALUES (${ids[0]}, 'r'); INSERT INTO users (id, name) VALUES (${ids[1]}, 'r')`)
  t.match(res, { error: '0A000', message: /^the statements of one query run as one transaction, as on one server, and transaction writes shard s\d; this statement may write shard s\d/ }, 'the second shard\u2019s write is refused, saying why')
  t.same(await answers(c, `SELECT count(*) FROM users WHERE id IN (${ids.join(', ')})`), [['SELECT', 1, [['0']]]], 'and the first shard\u2019s write is undone')
  const reads = await answers(c, `SELECT count(*) FROM users; SELECT count(*) FROM orders; INSERT INTO users (id, name) VALUES (${ids[0]}, 'r')`)
  t.same(reads, [['SELECT', 1, [['40']]], ['SELECT', 1, [['120']]], ['INSERT', 1, []]], 'reads of every shard and a write of one run in it')
  const slow = await answers(c, `UPDATE users SET name = 'slow' WHERE id = ${ids[0]}; SELECT pg_sleep(0.2); SELECT count(*) FROM orders; SELECT pg_sleep(0.2); SELECT name FROM users WHERE id = ${ids[0]}`)
  t.same(slow, [['UPDATE', 1, []], ['SELECT', 1, [['']]], ['SELECT', 1, [['120']]], ['SELECT', 1, [['']]], ['SELECT', 1, [['slow']]]], 'statements longer than pool.idle_in_transaction_timeout in all: not idle')
  await c.query(`DELETE FROM users WHERE id = ${ids[0]}`)
})
