// Every construct pgshard cannot run correctly across shards is refused with SQLSTATE 0A000 and a message naming
// it, through the proxy, with real Postgres behind it (3 shards): cross-shard reads the merge cannot answer
// exactly, writes that would touch several shards or move a row, and transactions that would span shards.
// A refused write changes nothing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import Cursor from 'pg-cursor'
import postgres from 'postgres'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = {
  tables: [
    { name: 'accounts', key: 'id', type: 'bigint' },
    { name: 'orders', key: 'account_id', type: 'bigint' },
    { name: 'events', key: 'tenant', type: 'text', broadcast_writes: true },
    { name: 'devices', key: 'id', type: 'uuid' },
  ],
  reference_tables: ['countries'],
}

const SCHEMA = [
  'CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance numeric, country text, meta jsonb)',
  'CREATE TABLE orders (id bigint, account_id bigint, total numeric)',
  'CREATE TABLE events (tenant text, n int, note text)',
  'CREATE TABLE devices (id uuid PRIMARY KEY, label text)',
  'CREATE TABLE countries (code text PRIMARY KEY, name text)',
  'CREATE TABLE logs (id int, msg text)',
]

interface Case {
  construct: string
  sql: string
  params?: unknown[]
  /** Statements run first on the same connection (a transaction opened, …). */
  before?: string[]
  message: RegExp
  hint?: RegExp
}

t.test('refused constructs: 0A000 naming what cannot run across shards', async (t) => {
  const fx = await startProxy(t, { topology: { shards: 3 }, config: { sharding: SHARDING } })
  const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
  const keyOn = (shard: number, from = 1): number => {
    for (let k = from; ; k++) if (map.ring.shardFor(canonicalKey('bigint', String(k), 0, 0)) === shard) return k
  }
  const [k0, k1, k2] = [keyOn(0), keyOn(1), keyOn(2)]
  const k0b = keyOn(0, k0 + 1)

  const setup = new pg.Client(fx.pgOptions)
  await setup.connect()
  for (const ddl of SCHEMA) await setup.query(ddl)
  await setup.query("INSERT INTO countries VALUES ('fr', 'France'), ('jp', 'Japan')")
  for (const k of [k0, k0b, k1, k2]) {
    await setup.query('INSERT INTO accounts (id, owner, balance, country, meta) VALUES ($1, $2, $3, $4, $5)', [k, `owner ${k}`, k * 10, k % 2 ? 'fr' : 'jp', JSON.stringify({ k })])
    await setup.query('INSERT INTO orders (id, account_id, total) VALUES ($1, $2, $3)', [k * 100, k, k])
  }
  await setup.query("INSERT INTO events (tenant, n, note) VALUES ('acme', 1, 'a'), ('globex', 2, 'b')")
  const before = await Promise.all([0, 1, 2].map((s) => setup.query(`/* pgshard: shard=s${s} */ SELECT id, owner, balance::text FROM accounts ORDER BY id`).then((r) => r.rows)))
  t.ok(before.every((rows) => rows.length > 0), 'every shard holds some accounts')

  const cases: Case[] = [
    // Reads the merge cannot answer exactly.
    { construct: 'window function', sql: 'SELECT id, row_number() OVER (ORDER BY id) FROM accounts', message: /a window function/ },
    { construct: 'ordered aggregate', sql: 'SELECT max(owner ORDER BY id) FROM accounts', message: /an ordered aggregate max\(… ORDER BY …\)/ },
    { construct: 'aggregate the merger does not know', sql: 'SELECT json_agg(owner) FROM accounts', message: /the aggregate json_agg\(\)/ },
    { construct: 'ordered-set aggregate of a fraction that is not a constant', sql: 'SELECT percentile_cont(ARRAY[0.5, balance]) WITHIN GROUP (ORDER BY balance) FROM accounts', message: /percentile_cont\(\) of a fraction that is not a constant/ },
    { construct: 'percentile_disc of values the merge cannot order', sql: "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY inet '10.0.0.1' + id) FROM accounts", message: /cannot take percentile_disc\(\) of values of inet when merging results from several shards/ },
    { construct: 'hypothetical-set aggregate', sql: 'SELECT rank(10) WITHIN GROUP (ORDER BY balance) FROM accounts', message: /the aggregate rank\(\)/ },
    // (Other expressions over aggregates are computed over the aggregates read first: subqueries-read-first.test.ts.)
    { construct: 'expression over an aggregate the merge cannot fold', sql: 'SELECT max(owner ORDER BY id) || \'x\' FROM accounts', message: /an expression over the aggregate max\(\)|an ordered aggregate max/ },
    { construct: 'HAVING over an aggregate the merge cannot fold', sql: 'SELECT country, count(*) FROM accounts GROUP BY country HAVING length(json_agg(owner)::text) > length(country)', message: /json_agg\(\)/ },
    { construct: 'DISTINCT ON', sql: 'SELECT DISTINCT ON (country) country, id FROM accounts', message: /DISTINCT ON/ },
    { construct: 'ROLLUP', sql: 'SELECT country, count(*) FROM accounts GROUP BY ROLLUP (country)', message: /GROUPING SETS, ROLLUP or CUBE/ },
    { construct: 'FETCH … WITH TIES', sql: 'SELECT id FROM accounts ORDER BY country FETCH FIRST 1 ROWS WITH TIES', message: /FETCH FIRST … WITH TIES/ },
    { construct: 'INTERSECT without a key column', sql: 'SELECT name FROM accounts INTERSECT SELECT status FROM orders', message: /INTERSECT in the statement across shards, whose SELECTs do not all output their sharding key in one column: equal rows may be on two shards/ },
    { construct: 'UNION ALL with a SELECT over no sharded table', sql: 'SELECT id FROM accounts UNION ALL SELECT 0', message: /a UNION ALL across shards whose SELECT 2 of the UNION reads no sharded table/ },
    { construct: 'CTE named twice', sql: 'WITH rich AS (SELECT id FROM accounts WHERE balance > 0) SELECT count(*) FROM rich a JOIN rich b ON a.id = b.id', message: /a WITH query \(CTE\) across shards/ },
    // (Subqueries in FROM that name nothing around them are read first: subqueries-read-first.test.ts.)
    { construct: 'LATERAL subquery that groups rows of every shard', sql: 'SELECT a.id, s.n FROM accounts a, LATERAL (SELECT owner, count(*) AS n FROM accounts b WHERE b.balance > a.balance GROUP BY owner) s', message: /a subquery over sharded table accounts in a read across shards: each shard would see only its own rows of accounts/ },
    { construct: 'LATERAL subquery made DISTINCT on a column that is not a key', sql: 'SELECT a.id, s.owner FROM accounts a, LATERAL (SELECT DISTINCT owner FROM accounts b WHERE b.balance > a.balance) s', message: /a subquery over sharded table accounts in a read across shards/ },
    { construct: 'LATERAL subquery grouped by the key, with LIMIT', sql: 'SELECT a.id, s.k FROM accounts a, LATERAL (SELECT account_id AS k, count(*) FROM orders o WHERE o.total > a.balance GROUP BY account_id LIMIT 3) s', message: /a subquery over sharded table orders in a read across shards/ },
    { construct: 'subquery in FROM with an untied subquery over a sharded table', sql: 'SELECT count(*) FROM (SELECT a.id, (SELECT max(o.total) FROM orders o WHERE o.total < a.balance) AS m FROM accounts a) s', message: /a subquery over sharded table orders in a read across shards/ },
    { construct: 'scrollable cursor', sql: 'DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT id FROM accounts ORDER BY id', message: /SCROLL of cursor "c", whose query reads several shards \(.*\), is not supported/ },
    { construct: 'LATERAL subquery over a sharded table, untied', sql: 'SELECT a.id, x.n FROM accounts a, LATERAL (SELECT count(*) AS n FROM orders o WHERE o.total > a.balance) x', message: /a subquery over sharded table orders in a read across shards/ },
    { construct: 'LATERAL subquery tied on a column that is not a key', sql: 'SELECT a.id, x.n FROM accounts a LEFT JOIN LATERAL (SELECT count(*) AS n FROM orders o WHERE o.id = a.id) x ON true', message: /tied to accounts\.id by orders\.id, which are not both sharding keys/ },
    { construct: 'subquery over a sharded table tied to a column that is not a key', sql: 'SELECT id FROM accounts a WHERE balance IN (SELECT o.total FROM orders o WHERE o.total > a.balance - 10)', message: /a subquery over sharded table orders in a read across shards/ },
    { construct: 'subquery tied on a column that is not a sharding key', sql: 'SELECT a.id FROM accounts a WHERE EXISTS (SELECT 1 FROM orders o WHERE o.id = a.id)', message: /a subquery over sharded table orders in a read across shards, tied to accounts\.id by orders\.id, which are not both sharding keys/ },
    { construct: 'a tied subquery joining two sharded tables', sql: 'SELECT a.id FROM accounts a WHERE EXISTS (SELECT 1 FROM orders o JOIN accounts b ON b.id = o.account_id WHERE o.account_id = a.id)', message: /a subquery over sharded table orders, accounts in a read across shards, which joins several sharded tables/ },
    { construct: 'NOT IN over a column that is not a sharding key', sql: 'SELECT id FROM accounts a WHERE id NOT IN (SELECT o.id FROM orders o WHERE o.total > a.balance)', message: /a subquery over sharded table orders in a read across shards, tied to accounts\.id by orders\.id, which are not both sharding keys/ },
    { construct: 'IN over an aggregate of a sharded table', sql: 'SELECT id FROM accounts a WHERE a.id IN (SELECT max(o.account_id) FROM orders o WHERE o.total < a.balance)', message: /a subquery over sharded table orders in a read across shards/ },
    { construct: 'a subquery tied to keys of different types', sql: 'SELECT a.id FROM accounts a WHERE EXISTS (SELECT 1 FROM events e WHERE e.tenant = a.id)', message: /tied to accounts\.id by events\.tenant, sharding keys of different types \(bigint, text\), not placed alike/ },
    { construct: 'cross-shard join (not on the keys)', sql: 'SELECT a.id, o.id FROM accounts a JOIN orders o ON o.id = a.id', message: /a join across shards: orders is not joined on its sharding key to accounts/ },
    { construct: 'cross-shard join (keys of different types)', sql: 'SELECT 1 FROM events e JOIN devices d ON d.id = e.tenant', message: /a join across shards of events\.tenant \(text\) with devices\.id \(uuid\): keys of different types/ },
    { construct: 'join with an unsharded table', sql: 'SELECT a.id FROM accounts a JOIN logs l ON l.id = a.id', message: /unsharded table logs exists only on shard s0/ },
    { construct: 'outer join keeping reference rows', sql: 'SELECT c.code, a.id FROM countries c LEFT JOIN accounts a ON a.country = c.code', message: /an outer join across shards that keeps rows of reference table countries/ },
    { construct: 'outer join keeping reference rows, grouped, counting them', sql: 'SELECT c.code, count(*) FROM countries c LEFT JOIN accounts a ON a.country = c.code GROUP BY c.code', message: /an outer join across shards that keeps rows of reference table countries/, hint: /aggregates that skip NULLs \(count\(t\.id\), not count\(\*\)\)/ },
    { construct: 'outer join keeping reference rows, grouped, those without a sharded row', sql: 'SELECT c.code, count(a.id) FROM countries c LEFT JOIN accounts a ON a.country = c.code WHERE a.id IS NULL GROUP BY c.code', message: /an outer join across shards that keeps rows of reference table countries/ },
    { construct: 'outer join keeping reference rows, grouped by the sharded side', sql: 'SELECT a.balance, count(a.id) FROM countries c LEFT JOIN accounts a ON a.country = c.code GROUP BY a.balance', message: /an outer join across shards that keeps rows of reference table countries/ },
    { construct: 'ORDER BY a type the merge cannot order', sql: "SELECT id, inet '10.0.0.1' + id AS i FROM accounts ORDER BY i", message: /cannot order values of inet when merging results from several shards$/, hint: /cast the column \(e\.g\. ::text\)/ },
    { construct: 'COPY (query) TO across shards that must be merged', sql: 'COPY (SELECT id FROM accounts ORDER BY id) TO STDOUT', message: /COPY \(query\) TO across shards, for a query that does more than filter and pick columns/ },
    { construct: 'binary COPY TO across shards', sql: 'COPY accounts TO STDOUT (FORMAT binary)', message: /binary COPY … TO across shards/ },
    { construct: 'EXPLAIN across shards in JSON', sql: 'EXPLAIN (FORMAT JSON) SELECT * FROM accounts', message: /EXPLAIN across shards in a format other than TEXT/ },
    { construct: 'EXPLAIN ANALYZE of a write across shards', sql: 'EXPLAIN ANALYZE UPDATE accounts SET balance = 0', message: /a write must stay on one shard/ },
    // Writes.
    { construct: 'unpinned write joining another sharded table on other columns (UPDATE … FROM)', sql: 'UPDATE accounts SET balance = 0 FROM orders o WHERE o.total = accounts.balance', message: /UPDATE on accounts, orders has no condition on the sharding key accounts\.id, orders\.[a-z_]+: a write must stay on one shard/ },
    { construct: 'unpinned DELETE … USING another sharded table (extended protocol)', sql: 'DELETE FROM accounts USING orders o WHERE o.total = accounts.balance AND accounts.balance > $1', params: [0], message: /DELETE on accounts, orders has no condition on the sharding key/ },
    { construct: 'write on two shards that also reads another sharded table', sql: `DELETE FROM accounts WHERE id IN (${k0}, ${k1}) AND EXISTS (SELECT 1 FROM orders o WHERE o.total > accounts.balance)`, message: /DELETE on accounts, orders .*: a write must stay on one shard/ },
    { construct: 'key update to an expression', sql: `UPDATE accounts SET id = id + 1000 WHERE id = ${k0}`, message: /UPDATE sets sharding key accounts\.id to an expression: the row would move to a shard that does not own it/ },
    { construct: 'key update to another shard\u2019s key', sql: 'UPDATE accounts SET id = $1 WHERE id = $2', params: [keyOn(2, k2 + 1), k0], message: /UPDATE sets sharding key accounts\.id to a value owned by shard s2, but the statement runs on shard s0/ },
    { construct: 'key update through ON CONFLICT', sql: `INSERT INTO accounts (id, owner) VALUES (${k0}, 'x') ON CONFLICT (id) DO UPDATE SET id = accounts.id + 1`, message: /INSERT sets sharding key accounts\.id to an expression/ },
    { construct: 'ON CONFLICT on a unique column other than the key', sql: `INSERT INTO accounts (id, owner) VALUES (${k0}, 'x') ON CONFLICT (owner) DO UPDATE SET balance = 1`, message: /ON CONFLICT \(owner\) on sharded table accounts leaves out its sharding key id/, hint: /make the unique index and the conflict target include id/ },
    { construct: 'key update of a broadcast table', sql: "UPDATE events SET tenant = 'initech'", message: /UPDATE sets sharding key events\.tenant on several shards/ },
    { construct: 'INSERT … SELECT over a WITH query of the INSERT, into a sharded table', sql: 'WITH a AS (SELECT id, owner FROM accounts) INSERT INTO accounts (id, owner) SELECT id + 1000, owner FROM a RETURNING id', message: /must give its key column id in VALUES, or take it in its SELECT from a constant or from a sharded table's key that the WHERE clause pins/, hint: /when its query stands on its own \(not over a WITH query of the INSERT\) and writes nothing/ },
    { construct: 'INSERT without the key column', sql: "INSERT INTO accounts (owner) VALUES ('nobody')", message: /must name its key column id in the column list/ },
    { construct: 'INSERT with a computed key', sql: "INSERT INTO accounts (id, owner) VALUES (length('abc') * 1000, 'x')", message: /row 1 gives its key column id by an expression/ },
    { construct: 'multi-shard INSERT that also reads', sql: `INSERT INTO accounts (id, owner) VALUES (${keyOn(0, 3000)}, (SELECT name FROM countries LIMIT 1)), (${keyOn(1, 3000)}, (SELECT msg FROM logs LIMIT 1))`, message: /INSERT rows of accounts belong to shards s0, s1, and the statement also reads logs: it cannot be split/ },
    { construct: 'COPY FROM a server file into a sharded table', sql: "COPY accounts FROM '/tmp/accounts.csv'", message: /only for rows sent by the client \(FROM STDIN\), not a file on the server/ },
    { construct: 'reference write reading a sharded table', sql: 'INSERT INTO countries (code) SELECT country || id FROM accounts', message: /writes reference table countries using accounts/ },
    { construct: 'DDL on sharded and unsharded tables at once', sql: 'DROP TABLE accounts, logs', message: /DDL names accounts \(on every shard\) and unsharded table logs/ },
    { construct: 'hint against the pinned key', sql: `/* pgshard: shard=s1 */ SELECT * FROM accounts WHERE id = ${k0}`, message: /hint shard=s1 sends the statement to shard s1, but it pins accounts\.id to shard s0/ },
    { construct: 'hint restricting a reference write', sql: "/* pgshard: shard=s1 */ UPDATE countries SET name = 'x'", message: /restricts the statement to shard s1, but it writes reference table countries/ },
    // Transactions.
    { construct: 'cross-shard transaction', before: ['BEGIN', `UPDATE accounts SET balance = balance + 1 WHERE id = ${k0}`], sql: `UPDATE accounts SET balance = balance + 1 WHERE id = ${k1}`, message: /transaction writes shard s0; this statement may write shard s1 .*cross-shard transactions are not supported: a transaction reads any shard but writes one/ },
    { construct: 'multi-row INSERT across shards inside a transaction', before: ['BEGIN'], sql: `INSERT INTO accounts (id, owner) VALUES (${keyOn(0, 3000)}, 'x'), (${keyOn(1, 3000)}, 'y')`, message: /inside a transaction a multi-shard INSERT cannot be split: cross-shard transactions are not supported/ },
    { construct: 'read from every shard inside a SERIALIZABLE transaction', before: ['BEGIN ISOLATION LEVEL SERIALIZABLE'], sql: 'SELECT count(*) FROM accounts', message: /cross-shard transactions are not supported/ },
    { construct: 'broadcast write inside a transaction', before: ['BEGIN', `SELECT 1 FROM accounts WHERE id = ${k0}`], sql: "UPDATE events SET note = 'x'", message: /cross-shard transactions are not supported/ },
    { construct: 'DDL on every shard inside a transaction', before: ['BEGIN'], sql: 'CREATE INDEX ON accounts (owner)', message: /cross-shard transactions are not supported|cannot run inside a read-write transaction/ },
  ]
  t.ok(cases.length >= 40, `${cases.length} cases`)
  for (const c of cases) {
    const client = new pg.Client(fx.pgOptions)
    await client.connect()
    try {
      for (const sql of c.before ?? []) await client.query(sql)
      const err = await client.query(c.sql, c.params).then(
        () => null,
        (e: { code?: string; message: string; hint?: string }) => e,
      )
      t.equal(err?.code, '0A000', `${c.construct}: SQLSTATE`)
      t.match(err?.message ?? 'no error', c.message, `${c.construct}: ${err?.message ?? 'no error'}`)
      if (c.hint !== undefined) t.match(err?.hint ?? 'no hint', c.hint, `${c.construct}: hint`)
      if (c.before) await client.query('ROLLBACK')
    } finally {
      await client.end()
    }
  }

  t.test('pg-cursor over a result from every shard, outside a transaction and in one: read in parts, in order', async (t) => {
    const client = new pg.Client(fx.pgOptions)
    await client.connect()
    t.teardown(() => client.end())
    const all = (await client.query('SELECT id FROM accounts ORDER BY id')).rows.map((r: { id: string }) => r.id)
    const cursor = client.query(new Cursor('SELECT id FROM accounts ORDER BY id'))
    const read: string[] = []
    for (let batch = await cursor.read(2); batch.length > 0; batch = await cursor.read(2)) read.push(...batch.map((r: { id: string }) => r.id))
    t.same(read, all, `${all.length} rows in batches of 2, in order`)
    await cursor.close()
    await client.query('BEGIN READ ONLY')
    const inTx = client.query(new Cursor('SELECT id FROM accounts ORDER BY id'))
    const readInTx: string[] = []
    for (let batch = await inTx.read(3); batch.length > 0; batch = await inTx.read(3)) readInTx.push(...batch.map((r: { id: string }) => r.id))
    t.same(readInTx, all, 'in a READ ONLY transaction too, in batches of 3')
    await inTx.close()
    await client.query('ROLLBACK')
  })

  t.test('postgres.js cursors over a result from every shard, outside a transaction and in a READ ONLY one', async (t) => {
    const sql = postgres(fx.url, { max: 1, onnotice: (n) => notices.push(n.message) })
    const notices: string[] = []
    t.teardown(() => sql.end())
    const all = (await sql`SELECT id FROM accounts ORDER BY id`).map((r) => String(r.id))
    const outside: string[] = []
    for await (const rows of sql`SELECT id FROM accounts ORDER BY id`.cursor(2)) outside.push(...rows.map((r) => String(r.id)))
    t.same(outside, all, `outside a transaction: ${all.length} rows in batches of 2`)
    const inside = await sql.begin('read only', async (tx) => {
      const got: string[] = []
      for await (const rows of tx`SELECT id FROM accounts ORDER BY id DESC`.cursor(3)) got.push(...rows.map((r) => String(r.id)))
      return got
    })
    t.same(inside, [...all].reverse(), 'in a READ ONLY transaction, in batches of 3')
    t.same(notices, [], 'no notice: its COMMIT found the transaction the reads ran in')
  })

  const after = await Promise.all([0, 1, 2].map((s) => setup.query(`/* pgshard: shard=s${s} */ SELECT id, owner, balance::text FROM accounts ORDER BY id`).then((r) => r.rows)))
  t.same(after, before, 'no refused statement changed a row on any shard')
  const events = await setup.query('SELECT tenant, n, note FROM events ORDER BY tenant')
  t.same(events.rows, [{ tenant: 'acme', n: 1, note: 'a' }, { tenant: 'globex', n: 2, note: 'b' }])
  await setup.end()
})

t.test('a function created after pgshard read the catalog: refused across shards until RELOAD says what it is', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-catalog-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pgshard.json')
  const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: { tables: [SHARDING.tables[0]] } }, configFile: file })
  await writeFile(file, JSON.stringify(fx.app.config))
  // The catalog as pgshard reads it at start; what follows is new to it.
  await fx.app.health.refreshCatalogs()
  const client = new pg.Client(fx.pgOptions)
  await client.connect()
  t.teardown(() => client.end())
  await client.query('CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric)')
  await client.query('INSERT INTO accounts (id, balance) VALUES (1, 10), (2, 20), (3, 30), (4, 40)')
  // DDL through pgshard runs on every shard; the catalog pgshard read at start knows neither name.
  await client.query('CREATE AGGREGATE my_total (numeric) (sfunc = numeric_add, stype = numeric)')
  await client.query('CREATE FUNCTION doubled (numeric) RETURNS numeric IMMUTABLE LANGUAGE sql AS $$ SELECT $1 * 2 $$')
  const run = (sql: string) => client.query(sql).then((r) => ({ rows: r.rows }), (e: { code?: string; message: string }) => ({ code: e.code, message: e.message }))

  for (const sql of ['SELECT my_total(balance) FROM accounts', 'SELECT doubled(balance) FROM accounts ORDER BY 1']) {
    t.match(await run(sql), { code: '0A000', message: /it is not in the catalog pgshard read from the shards/ }, `before RELOAD: ${sql}`)
  }
  await fx.app.reload()
  t.match(await run('SELECT my_total(balance) FROM accounts'), { code: '0A000', message: /the aggregate my_total\(\) in a read across shards/ }, 'after RELOAD the aggregate is known, and refused as one')
  t.same(await run('SELECT doubled(balance) AS d FROM accounts ORDER BY 1'), { rows: [{ d: '20' }, { d: '40' }, { d: '60' }, { d: '80' }] }, 'and the plain function runs across shards')
})
