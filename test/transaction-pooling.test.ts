// Transaction pooling that real drivers survive: prepared statements across pooled connections, session
// settings that never leak, SQL PREPARE/EXECUTE, a client killed mid-transaction, pgbench -M prepared with more
// clients than server connections giving the same results as session pooling.
import net from 'node:net'
import pg from 'pg'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { FLUSH, SYNC, encodeBind, encodeExecute, encodeParse, encodeQuery, encodeUnnamedRun } from '../src/protocol/FrontendMessages.js'
import { decodeDataRow } from '../src/protocol/RowMessages.js'
import { RawClient, errorFields } from './harness/RawClient.js'
import { runCommand } from './harness/runCommand.js'
import { APP_PASSWORD, startProxy, type ProxyFixture } from './harness/startProxy.js'

t.test('pgbench -M prepared, 32 clients over 8 server connections, matches session pooling', async (t) => {
  const results: Record<string, string> = {}
  for (const mode of ['transaction', 'session'] as const) {
    const fx = await startProxy(t, { config: { pool: { mode, size: mode === 'session' ? 40 : 8 } } })
    const init = await runCommand('pgbench', ['-i', '-s', '1', fx.dsn], { env: fx.env, timeoutMs: 120_000 })
    t.equal(init.code, 0, init.stderr)
    const r = await runCommand('pgbench', ['-n', '-c', '32', '-j', '2', '-t', '40', '-M', 'prepared', '--random-seed=7', fx.dsn], { env: fx.env, timeoutMs: 180_000 })
    t.equal(r.code, 0, `${mode}: ${r.stderr.slice(0, 500)}`)
    t.match(r.stdout, /number of transactions actually processed: 1280\/1280/, `${mode}: every transaction ran`)
    t.match(r.stdout, /number of failed transactions: 0 /, `${mode}: 0 failed`)
    const c = new pg.Client(fx.pgOptions)
    await c.connect()
    const state = await c.query(
      `SELECT (SELECT sum(abalance) FROM pgbench_accounts) AS a, (SELECT sum(bbalance) FROM pgbench_branches) AS b,
              (SELECT sum(tbalance) FROM pgbench_tellers) AS t, (SELECT count(*) FROM pgbench_history) AS h,
              (SELECT sum(delta) FROM pgbench_history) AS d`,
    )
    await c.end()
    results[mode] = JSON.stringify(state.rows[0])
    const pools = fx.app.proxy.pools.all()
    const servers = pools.reduce((n, p) => n + p.pool.counts.total, 0)
    if (mode === 'transaction') t.ok(servers <= 8, `transaction pooling used at most 8 server connections (${servers})`)
    await fx.app.stop(500)
  }
  t.equal(results.transaction, results.session, `the same final state in both modes: ${results.session}`)
})

t.test('named prepared statements: 50 clients over 5 server connections', async (t) => {
  const fx = await startProxy(t, {
    topology: { users: [{ name: 'app', password: APP_PASSWORD }, { name: 'trusty', password: 'trusty-pw' }] },
    config: {
      pool: { size: 5, checkout_timeout: '20s' },
      users: [{ name: 'app', password: APP_PASSWORD }, { name: 'trusty', auth: 'trust', server_password: 'trusty-pw' }],
    },
  })
  const clients = await Promise.all(
    Array.from({ length: 50 }, async () => {
      const c = new pg.Client(fx.pgOptions)
      await c.connect()
      return c
    }),
  )
  t.teardown(() => Promise.all(clients.map((c) => c.end())))
  let wrong = 0
  await Promise.all(
    clients.map(async (c, id) => {
      // Every client uses the same statement name for a different statement.
      for (let i = 0; i < 30; i++) {
        const r = await c.query({ name: 'mine', text: `SELECT $1::int * 1000 + ${id} AS v`, values: [i] })
        if (r.rows[0].v !== i * 1000 + id) wrong++
        if (i % 10 === 0) {
          await c.query('BEGIN')
          const inTx = await c.query({ name: 'mine', text: `SELECT $1::int * 1000 + ${id} AS v`, values: [i] })
          if (inTx.rows[0].v !== i * 1000 + id) wrong++
          await c.query('COMMIT')
        }
      }
    }),
  )
  t.equal(wrong, 0, '1,650 executions of 50 same-named statements, every answer is the client’s own')

  // postgres.js: 50 clients (connections), each with its own named statements, over the same 5 servers.
  const sqls = Array.from({ length: 50 }, () => postgres(fx.url, { max: 1, prepare: true, onnotice: () => {} }))
  t.teardown(() => Promise.all(sqls.map((sql) => sql.end({ timeout: 5 }))))
  let wrongJs = 0
  await Promise.all(
    sqls.map(async (sql, id) => {
      for (let i = 0; i < 20; i++) {
        const r = await sql`SELECT ${i}::int * 1000 + ${id}::int AS v`
        if (r[0].v !== i * 1000 + id) wrongJs++
      }
      const piped = await Promise.all(Array.from({ length: 10 }, (_, i) => sql`SELECT ${i}::int + ${id}::int AS v`))
      if (!piped.every((r, i) => r[0].v === i + id)) wrongJs++
    }),
  )
  t.equal(wrongJs, 0, 'postgres.js: 50 clients × 30 prepared queries (10 of them pipelined), every answer right')

  // A statement one client prepared is invisible to another, even on the same server connection.
  const a = clients[0]
  const b = clients[1]
  await a.query({ name: 'only_a', text: 'SELECT 1 AS one', values: [] })
  const raw = await rawBind(fx.port, 'only_a')
  t.match(raw, /26000|does not exist/, `another client binding "only_a" gets 26000 (${raw})`)
  const seen = await b.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'only_a'")
  t.equal(seen.rows[0].n, 0, 'the client’s own name never reaches a server')
})

t.test('DEALLOCATE through the extended protocol (psycopg empties its cache so) drops no statement another client shares', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 1 } } })
  const [a, b] = [new pg.Client(fx.pgOptions), new pg.Client(fx.pgOptions)]
  await Promise.all([a.connect(), b.connect()])
  t.teardown(() => Promise.all([a.end(), b.end()]))
  const query = { name: 'q', text: 'SELECT $1::int + 1 AS v' }
  t.equal((await a.query({ ...query, values: [1] })).rows[0].v, 2, 'prepared on the one server connection')
  await b.query({ name: 'b', text: 'SELECT 2 AS two' })
  t.equal((await b.query({ name: 'dealloc', text: 'DEALLOCATE ALL' })).command, 'DEALLOCATE', 'the client is answered')
  t.equal((await a.query({ ...query, values: [41] })).rows[0].v, 42, 'the other client’s statement still runs on that connection')
  await t.rejects(b.query({ name: 'b', text: 'SELECT 2 AS two' }).then(() => b.query({ name: 'dealloc-b', text: 'DEALLOCATE b' })), { code: '26000' }, 'its own names are gone, as on a server: DEALLOCATE of one of them fails')
  await t.rejects(b.query({ name: 'prep', text: 'PREPARE p AS SELECT 1' }), { code: '0A000', message: /SQL PREPARE through the extended protocol/ }, 'SQL PREPARE there is refused, not run under the client’s name')
})

/** A proxy with `app` and `trusty`, whom it trusts: a raw protocol client logs in as trusty without SCRAM. */
function proxyWithTrusty(t: Test, poolSize: number): Promise<ProxyFixture> {
  return startProxy(t, {
    topology: { users: [{ name: 'app', password: APP_PASSWORD }, { name: 'trusty', password: 'trusty-pw' }] },
    config: { pool: { size: poolSize }, users: [{ name: 'app', password: APP_PASSWORD }, { name: 'trusty', auth: 'trust', server_password: 'trusty-pw' }] },
  })
}

/** Binds a statement name on a fresh connection that never prepared it: what the proxy answers. */
async function rawBind(port: number, name: string): Promise<string> {
  const c = await RawClient.login(port, 'trusty')
  c.send(Buffer.concat([encodeBind('', name, [], [], []), encodeExecute('', 0), SYNC]))
  const msgs = await c.until('Z')
  c.end()
  const err = msgs.find((m) => m.type === 'E')
  return err ? `${errorFields(err.body).code} ${errorFields(err.body).message}` : 'no error'
}

t.test('session settings: one client’s never leak to another sharing its server connection', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 1 } } })
  const [a, b] = await connectedClients(t, { ...fx.pgOptions, application_name: 'client-a' }, { ...fx.pgOptions, application_name: 'client-b' })
  const show = (c: pg.Client) =>
    c.query(
      "SELECT current_setting('search_path') AS sp, current_setting('TimeZone') AS tz, current_setting('application_name') AS app, current_setting('statement_timeout') AS st, pg_backend_pid() AS pid",
    )
  const defaults = (await show(b)).rows[0]
  await a.query('CREATE SCHEMA IF NOT EXISTS other')
  await a.query("SET search_path = other, public")
  await a.query("SET TimeZone = 'Asia/Tokyo'")
  await a.query("SET application_name = 'renamed-a'")
  await a.query("SELECT set_config('statement_timeout', '12345', false)")
  for (let round = 0; round < 5; round++) {
    const ra = (await show(a)).rows[0]
    const rb = (await show(b)).rows[0]
    t.same([ra.sp, ra.tz, ra.app, ra.st], ['other, public', 'Asia/Tokyo', 'renamed-a', '12345ms'], `round ${round}: A sees its own settings`)
    t.same([rb.sp, rb.tz, rb.app, rb.st], [defaults.sp, defaults.tz, 'client-b', defaults.st], `round ${round}: B sees none of A’s`)
    t.equal(ra.pid, rb.pid, 'they share the one server connection')
  }
  // set_config() with parameters (node-postgres binds them): the values are kept, not `$1`, which replayed on
  // the connection after B used it made the server refuse A's settings ("syntax error at or near $1").
  await a.query('SELECT set_config($1, $2, false)', ['lock_timeout', '4321'])
  await a.query("SELECT set_config('idle_in_transaction_session_timeout', $1, false)", ['7654'])
  for (let round = 0; round < 3; round++) {
    const timeouts = "SELECT current_setting('lock_timeout') AS lt, current_setting('idle_in_transaction_session_timeout') AS it"
    const rb = (await b.query(timeouts)).rows[0]
    const ra = (await a.query(timeouts)).rows[0]
    t.same([ra.lt, ra.it], ['4321ms', '7654ms'], `round ${round}: A's bound set_config settings follow it`)
    t.notSame([rb.lt, rb.it], ['4321ms', '7654ms'], `round ${round}: B has none of them`)
  }
  await a.query('RESET TimeZone')
  await a.query('RESET ALL')
  const after = (await show(a)).rows[0]
  t.equal(after.app, 'client-a', 'RESET ALL returns to the value A connected with, not the server default')
  t.equal(after.sp, '"$user", public')
  await a.query('BEGIN')
  await a.query("SET search_path = rolled_back")
  await a.query('ROLLBACK')
  t.equal((await show(a)).rows[0].sp, '"$user", public', 'a SET inside a rolled-back transaction does not stick')
})

t.test('a SET that Postgres undid (ROLLBACK, an aborted transaction, ROLLBACK TO, a failed pipeline) is undone in the proxy too', async (t) => {
  const fx = await proxyWithTrusty(t, 2)
  const [a, b] = await connectedClients(t, { ...fx.pgOptions, user: 'trusty', password: undefined }, { ...fx.pgOptions, user: 'trusty', password: undefined })
  const raw = await RawClient.login(fx.port, 'trusty')
  t.teardown(() => raw.end())
  const workMem = async (c: pg.Client) => (await c.query("SELECT current_setting('work_mem') AS value, pg_backend_pid() AS pid")).rows[0]
  const rawWorkMem = async () => {
    raw.send(encodeQuery("SELECT current_setting('work_mem'), pg_backend_pid()"))
    const row = (await raw.until('Z')).find((m) => m.type === 'D')
    const [wm, pid] = decodeDataRow(row!.body)
    return { value: wm!.toString(), pid: Number(pid!.toString()) }
  }
  const everywhere = (show: () => Promise<Seen>) => seenOnBothConnections(show, b)

  await a.query("SET work_mem = '2MB'")
  await a.query('BEGIN')
  await a.query("SET work_mem = '3MB'")
  await a.query('ROLLBACK')
  await a.query('BEGIN')
  await a.query("SET work_mem = '4MB'")
  await t.rejects(a.query('SELECT 1/0'))
  await a.query('COMMIT')
  let seen = await everywhere(() => workMem(a))
  t.same(seen.values, ['2MB'], 'after a ROLLBACK and an aborted transaction, A has its committed setting on every connection')
  t.equal(seen.pids, 2, 'A was served by both server connections')

  await a.query('BEGIN')
  await a.query("SET work_mem = '3MB'")
  await a.query('SAVEPOINT s1')
  await a.query("SET work_mem = '4MB'")
  await a.query('SAVEPOINT s2')
  await a.query("SET work_mem = '5MB'")
  await a.query('ROLLBACK TO SAVEPOINT s1')
  t.equal((await workMem(a)).value, '3MB', 'ROLLBACK TO s1 undid the SETs after s1')
  await a.query("SET work_mem = '6MB'")
  await a.query('SAVEPOINT s3')
  await t.rejects(a.query('SELECT 1/0'))
  await a.query('ROLLBACK TO s3')
  await a.query('RELEASE s1')
  await a.query('COMMIT')
  seen = await everywhere(() => workMem(a))
  t.same(seen.values, ['6MB'], 'after an error rolled back to a savepoint, the COMMIT kept the SET before it, on every connection')
  t.equal(seen.pids, 2)

  // One implicit transaction up to Sync: an error after the SET undoes it, on the server and in the proxy.
  raw.send(encodeQuery("SET work_mem = '7MB'"))
  await raw.until('Z')
  const step = (sql: string) => Buffer.concat([encodeParse('', sql, []), encodeBind('', '', [], [], []), encodeExecute('', 0)])
  raw.send(Buffer.concat([step("SET work_mem = '8MB'"), step('SELECT 1/0'), SYNC]))
  t.ok((await raw.until('Z')).some((m) => m.type === 'E'), 'the pipeline failed')
  seen = await everywhere(rawWorkMem)
  t.same(seen.values, ['7MB'], 'the failed pipeline’s SET is gone on every connection')
  raw.send(Buffer.concat([step("SET work_mem = '9MB'"), step('SELECT 1'), SYNC]))
  await raw.until('Z')
  seen = await everywhere(rawWorkMem)
  t.same(seen.values, ['9MB'], 'a pipeline that succeeded keeps its SET')
  t.equal(seen.pids, 2)
})

/** What `show` returns as each of a pool's two connections serves it: `holder` holds one of them every other round. */
interface Seen {
  value: string
  pid: number
}

async function seenOnBothConnections(show: () => Promise<Seen>, holder: pg.Client): Promise<{ values: string[]; pids: number }> {
  const values = new Set<string>()
  const pids = new Set<number>()
  for (let round = 0; round < 4; round++) {
    if (round % 2 === 0) await holder.query('BEGIN; SELECT 1')
    const got = await show()
    values.add(got.value)
    pids.add(got.pid)
    if (round % 2 === 0) await holder.query('COMMIT')
  }
  return { values: [...values], pids: pids.size }
}

t.test('a multi-statement query whose settings may or may not have stuck leaves no setting to the next client', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 1 } } })
  const [a, b] = await connectedClients(t, fx.pgOptions, fx.pgOptions)
  const workMem = async (c: pg.Client) => (await c.query("SELECT current_setting('work_mem') AS wm")).rows[0].wm
  const defaults = await workMem(b)
  // The COMMIT inside ends the implicit transaction: the SET sticks although the query as a whole failed.
  await t.rejects(a.query("SET work_mem = '9MB'; COMMIT; SELECT 1/0"), { code: '22012' })
  t.equal(await workMem(b), defaults, 'B, on the same server connection, does not get A’s setting')
  // And the other way round: the SET is rolled back although the query as a whole succeeded.
  await b.query("SET work_mem = '8MB'")
  await a.query("BEGIN; SET work_mem = '8MB'; ROLLBACK")
  t.equal(await workMem(b), '8MB', 'B keeps the setting it asked for')
})

t.test('a setting a server refuses to take again: the client gets its error, its statement does not run, RESET frees it', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 1 } } })
  await fx.topo.query('s0-primary', 'CREATE ROLE short_lived; GRANT short_lived TO app; CREATE TABLE refused_log (n int); GRANT ALL ON refused_log TO app, short_lived', 'app')
  const [a, b] = await connectedClients(t, fx.pgOptions, fx.pgOptions)
  const who = async (c: pg.Client) => (await c.query('SELECT current_user AS u')).rows[0].u
  await a.query('SET ROLE short_lived')
  t.equal(await who(a), 'short_lived')
  t.equal(await who(b), 'app', 'B, on the same server connection, is not A’s role')
  await fx.topo.query('s0-primary', 'REVOKE ALL ON refused_log FROM short_lived; DROP ROLE short_lived', 'app')
  // The one server connection must take SET ROLE short_lived again for A: the server refuses.
  await t.rejects(a.query('INSERT INTO refused_log VALUES (1)'), {
    code: '22023',
    message: /server s0-primary refused this session's settings: role "short_lived" does not exist/,
  })
  t.equal(Number((await b.query('SELECT count(*) AS n FROM refused_log')).rows[0].n), 0, 'A’s INSERT never ran')
  t.same((await b.query("SELECT current_user AS u, current_setting('role') AS r")).rows[0], { u: 'app', r: 'none' }, 'the connection B gets next is clean')
  await t.rejects(a.query('SELECT 1'), { code: '22023' }, 'A keeps getting the error while it wants that role')
  await a.query('RESET ROLE')
  await a.query('INSERT INTO refused_log VALUES (2)')
  t.same((await a.query('SELECT current_user AS u, array_agg(n) AS ns FROM refused_log')).rows[0], { u: 'app', ns: [2] }, 'after RESET ROLE, A works again')
})

t.test('currval()/lastval() answer only where the client’s own nextval() surely is; else a clear error', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 2 } } })
  const [a, b] = await connectedClients(t, fx.pgOptions, fx.pgOptions)
  await a.query('CREATE TABLE seq_items (id serial PRIMARY KEY, note text)')
  // B's nextval() calls leave their value in the sequence state of the server connections A may get next.
  await b.query("INSERT INTO seq_items (note) VALUES ('b1'), ('b2')")
  await a.query("INSERT INTO seq_items (note) VALUES ('a1')")
  await b.query("INSERT INTO seq_items (note) VALUES ('b3')")
  await t.rejects(a.query('SELECT lastval()'), { code: '0A000', message: /another client’s sequence value/, hint: /RETURNING/ }, 'autocommit lastval() after an earlier INSERT: refused, not B’s id')
  await t.rejects(a.query("SELECT currval('seq_items_id_seq')"), { code: '0A000' }, 'currval() likewise')
  await t.rejects(a.query({ text: 'SELECT lastval()', values: [] }), { code: '0A000' }, 'and over the extended protocol')

  await a.query('BEGIN')
  const inserted = await a.query("INSERT INTO seq_items (note) VALUES ('a2') RETURNING id")
  const last = await a.query('SELECT lastval() AS v')
  await a.query('COMMIT')
  t.equal(Number(last.rows[0].v), inserted.rows[0].id, 'inside the transaction of the INSERT: its own id')
  const multi = await a.query("INSERT INTO seq_items (note) VALUES ('a3'); SELECT lastval() AS v")
  const a3 = await a.query("SELECT id FROM seq_items WHERE note = 'a3'")
  t.equal(Number((multi as unknown as pg.QueryResult[])[1].rows[0].v), a3.rows[0].id, 'in one query with the INSERT: its own id')
  await a.query('BEGIN')
  await t.rejects(a.query('SELECT lastval()'), { code: '0A000' }, 'first in a transaction: nothing of this client’s is there yet')
  await a.query('ROLLBACK')

  const fs = await startProxy(t, { config: { pool: { mode: 'session', size: 2 } } })
  const [s] = await connectedClients(t, fs.pgOptions)
  await s.query('CREATE TABLE seq_session (id serial PRIMARY KEY)')
  await s.query('INSERT INTO seq_session DEFAULT VALUES')
  t.equal(Number((await s.query('SELECT lastval() AS v')).rows[0].v), 1, 'session pooling: the session is the client’s, lastval() works as on a server')
})

t.test('an object created in pg_temp pins its client: no other client ever sees it', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 2 } } })
  const [a, b] = await connectedClients(t, fx.pgOptions, fx.pgOptions)
  await a.query('CREATE TABLE pg_temp.shadow (x int)')
  await a.query('INSERT INTO pg_temp.shadow VALUES (1)')
  for (let round = 0; round < 4; round++) {
    const seen = await b.query("SELECT to_regclass('pg_temp.shadow') IS NOT NULL AS visible")
    t.equal(seen.rows[0].visible, false, `round ${round}: B's server connection has no temporary "shadow"`)
  }
  t.equal((await a.query('SELECT count(*)::int AS n FROM shadow')).rows[0].n, 1, 'A keeps its table, on its own connection')
})

t.test('a setting changed where pgshard cannot see it (inside a function) follows the server’s report', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 2 } } })
  const [a, b] = await connectedClients(t, fx.pgOptions, fx.pgOptions)
  await a.query(`CREATE FUNCTION go_east() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN PERFORM set_config('TimeZone', 'Asia/Tokyo', false); PERFORM set_config('application_name', 'east', false); END $$`)
  const zone = async (c: pg.Client): Promise<Seen> =>
    (await c.query("SELECT current_setting('TimeZone') || ' ' || current_setting('application_name') AS value, pg_backend_pid() AS pid")).rows[0]
  const before = (await zone(b)).value
  await a.query('SELECT go_east()')
  t.same(await seenOnBothConnections(() => zone(a), b), { values: ['Asia/Tokyo east'], pids: 2 }, 'A keeps what its function set, on both server connections')
  t.same(await seenOnBothConnections(() => zone(b), a), { values: [before], pids: 2 }, 'B never gets it, on either')

  // search_path is not reported: a DO block that may set something gets its connection reset instead.
  const path = async (c: pg.Client): Promise<Seen> => (await c.query("SELECT current_setting('search_path') AS value, pg_backend_pid() AS pid")).rows[0]
  const pathBefore = (await path(b)).value
  await a.query(`DO $$BEGIN PERFORM set_config('search_path', 'east_only', false); END$$`)
  t.same(await seenOnBothConnections(() => path(b), a), { values: [pathBefore], pids: 2 }, 'B never gets the DO block’s search_path, on either connection')
})

t.test('a routing hint SET in a transaction that rolls back is undone, as Postgres undoes a setting', async (t) => {
  const fx = await twoShardsWith(t, 'hinted_items', 40)
  const [c] = await connectedClients(t, fx.pgOptions)
  const count = async () => (await c.query('SELECT count(*)::int AS n FROM hinted_items')).rows[0].n
  t.equal(await count(), 40, 'a read of every shard')
  const shard = fx.topo.shards[1].name
  await c.query('BEGIN')
  await c.query(`SET pgshard.shard = '${shard}'`)
  const oneShard = await count()
  t.ok(oneShard > 0 && oneShard < 40, `inside the transaction the hint keeps the read on ${shard} (${oneShard} rows)`)
  await c.query('ROLLBACK')
  t.equal(await count(), 40, 'after the rollback the hint is gone: every shard again')
  await c.query('BEGIN')
  await c.query(`SET pgshard.shard = '${shard}'`)
  await c.query('COMMIT')
  t.equal(await count(), oneShard, 'a committed hint stays for the session')
})

t.test('SET TRANSACTION, SET LOCAL and savepoints after BEGIN follow the transaction to its first statement’s shard', async (t) => {
  const fx = await twoShardsWith(t, 'tx_items', 12)
  const [c] = await connectedClients(t, fx.pgOptions)
  const ports = new Set<number>()
  for (let id = 1; id <= 12; id++) {
    // Rails' isolated transaction, a row-level-security style SET LOCAL and a nested transaction's savepoint.
    await c.query('BEGIN')
    await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
    await c.query("SET LOCAL statement_timeout = '7s'")
    await c.query('SAVEPOINT nested')
    const row = (
      await c.query(
        `SELECT inet_server_port() AS port, current_setting('transaction_isolation') AS iso, current_setting('statement_timeout') AS st FROM tx_items WHERE id = ${id}`,
      )
    ).rows[0]
    t.same([row.iso, row.st], ['repeatable read', '7s'], `id ${id}: the transaction has its isolation level and SET LOCAL`)
    ports.add(row.port)
    await c.query('UPDATE tx_items SET n = n + 100 WHERE id = $1', [id])
    await c.query('ROLLBACK TO SAVEPOINT nested')
    await c.query('RELEASE nested')
    await c.query('UPDATE tx_items SET n = n + 1 WHERE id = $1', [id])
    await c.query('COMMIT')
  }
  t.equal(ports.size, 2, 'the transactions ran on both shards')
  t.same((await c.query('SELECT n, count(*)::int AS rows FROM tx_items GROUP BY n')).rows, [{ n: 1, rows: 12 }], 'every transaction committed; its ROLLBACK TO undid its first update')
  t.equal((await c.query("SELECT current_setting('statement_timeout') AS st")).rows[0].st, '0', 'SET LOCAL ended with its transaction')

  // A setting the server refuses: the client was told SET, and learns of the refusal at the next statement.
  await c.query('BEGIN')
  await c.query('SET LOCAL no_such_setting = 1')
  await t.rejects(c.query('SELECT n FROM tx_items WHERE id = $1', [1]), { code: '42704', message: /unrecognized configuration parameter "no_such_setting"/ })
  await t.rejects(c.query('SELECT 1'), { code: '25P02' }, 'the transaction is aborted, as it would be on the server')
  await c.query('ROLLBACK')
  t.equal((await c.query('SELECT n FROM tx_items WHERE id = 1')).rows[0].n, 1, 'and the session goes on')

  // A statement pgshard refuses before the transaction reached a server fails it as a server's error would:
  // what follows must not begin it on a server, run there, and be committed.
  await c.query('BEGIN')
  await t.rejects(c.query('INSERT INTO tx_items SELECT 99, 0'), { code: '0A000' })
  await t.rejects(c.query('UPDATE tx_items SET n = 50 WHERE id = $1', [2]), { code: '25P02' }, 'a statement with parameters after it: 25P02')
  await t.rejects(c.query('UPDATE tx_items SET n = 50 WHERE id = 3'), { code: '25P02' }, 'a simple query: 25P02')
  t.equal((await c.query('COMMIT')).command, 'ROLLBACK', 'COMMIT rolls back')
  t.same((await c.query('SELECT n FROM tx_items WHERE id IN (2, 3) ORDER BY id')).rows, [{ n: 1 }, { n: 1 }], 'nothing of it was written')
  await c.query('BEGIN')
  await c.query('SAVEPOINT s')
  await t.rejects(c.query('INSERT INTO tx_items SELECT 99, 0'), { code: '0A000' })
  await c.query('ROLLBACK TO SAVEPOINT s')
  await c.query('UPDATE tx_items SET n = 2 WHERE id = 2')
  await c.query('COMMIT')
  t.equal((await c.query('SELECT n FROM tx_items WHERE id = 2')).rows[0].n, 2, 'ROLLBACK TO a savepoint made before it recovers the transaction')

  // ActiveRecord reads a table's columns inside the first transaction that uses it: a catalog read while the
  // BEGIN waits runs outside the transaction, which then begins on the shard of its first real statement.
  const txPorts = new Set<number>()
  for (let id = 1; id <= 6; id++) {
    await c.query('BEGIN')
    const columns = await c.query("SELECT a.attname FROM pg_attribute a WHERE a.attrelid = '\"tx_items\"'::regclass AND a.attnum > 0 ORDER BY a.attnum")
    t.same(columns.rows.map((r) => r.attname), ['id', 'n'])
    const typed = await c.query('SELECT format_type(t.oid, NULL) AS name FROM pg_catalog.pg_type t WHERE t.typname = $1', ['int8'])
    t.same(typed.rows, [{ name: 'bigint' }], 'through the extended protocol too')
    await c.query('UPDATE tx_items SET n = n + 1 WHERE id = $1', [id])
    t.same((await c.query('SELECT count(*)::int AS tables FROM pg_class WHERE relname = $1', ['tx_items'])).rows, [{ tables: 1 }], 'a catalog read once the transaction began')
    txPorts.add((await c.query('SELECT inet_server_port() AS port FROM tx_items WHERE id = $1', [id])).rows[0].port)
    await c.query('COMMIT')
  }
  t.equal(txPorts.size, 2, 'the transactions began on both shards, not on the one that answered the catalog reads')
  await c.query('BEGIN')
  await t.rejects(c.query("SELECT 1 FROM pg_class WHERE oid = 'no_such_table'::regclass"), { code: '42P01' })
  await t.rejects(c.query('UPDATE tx_items SET n = 0 WHERE id = 1'), { code: '25P02' }, 'a catalog read that failed aside fails the transaction')
  t.equal((await c.query('COMMIT')).command, 'ROLLBACK')
})

t.test('a shared statement whose table changed columns is prepared again: one error on the connection, not one per client forever', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 1 } } })
  const [a, b] = await connectedClients(t, fx.pgOptions, fx.pgOptions)
  await a.query('CREATE TABLE altered (id int, v int)')
  await a.query('INSERT INTO altered VALUES (1, 10)')
  const q = { name: 'q', text: 'SELECT * FROM altered WHERE id = $1', values: [1] }
  t.same((await a.query(q)).rows, [{ id: 1, v: 10 }])
  await a.query('ALTER TABLE altered ADD COLUMN extra text')
  // B prepares the statement after the ALTER, which went through pgshard: planned anew, as on its own server session.
  t.same((await b.query(q)).rows, [{ id: 1, v: 10, extra: null }], 'B prepares it after the ALTER: the new columns at once')
  // A's statement was prepared before: the server refuses its old plan once, as Postgres does in A's own session.
  await t.rejects(a.query(q), { code: '0A000', message: /cached plan must not change result type/ })
  t.same((await a.query(q)).rows, [{ id: 1, v: 10, extra: null }], 'A again (its driver only Binds): prepared anew, the new columns')
  await b.query('BEGIN')
  await b.query('ALTER TABLE altered ADD COLUMN more int')
  t.same((await b.query({ ...q, name: 'q2' })).rows, [{ id: 1, v: 10, extra: null, more: null }], 'prepared after an ALTER in the same transaction (Rails after PreparedStatementCacheExpired)')
  await b.query('ROLLBACK')
  await a.query('PREPARE sq AS SELECT * FROM altered')
  await a.query('EXECUTE sq')
  await a.query('ALTER TABLE altered DROP COLUMN extra')
  await t.rejects(a.query('EXECUTE sq'), { code: '0A000' })
  t.equal((await b.query('PREPARE sq AS SELECT * FROM altered')).command, 'PREPARE')
  t.same((await b.query('EXECUTE sq')).rows, [{ id: 1, v: 10 }], 'SQL EXECUTE: prepared anew after the refusal')
})

t.test('one client meets a table\u2019s new columns: the other server connections prepare the statement again before theirs do', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 4 } } })
  const clients = await connectedClients(t, fx.pgOptions, fx.pgOptions, fx.pgOptions, fx.pgOptions)
  await clients[0].query('CREATE TABLE widened (id int, v int)')
  await clients[0].query('INSERT INTO widened VALUES (1, 10)')
  const q = { name: 'w', text: 'SELECT * FROM widened WHERE id = $1', values: [1] }
  const pid = async (c: pg.Client) => (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
  // Four transactions at once: four server connections, each preparing the statement.
  await Promise.all(clients.map((c) => c.query('BEGIN')))
  const before = await Promise.all(clients.map(pid))
  await Promise.all(clients.map((c) => c.query(q)))
  await Promise.all(clients.map((c) => c.query('COMMIT')))
  t.equal(new Set(before).size, 4, 'the statement is prepared on four server connections')

  await clients[0].query('ALTER TABLE widened ADD COLUMN extra text')
  // One after the other, each keeping its connection (in a transaction), so that each runs on another one.
  const after: number[] = []
  const errors: string[] = []
  for (const c of clients) {
    await c.query('BEGIN')
    after.push(await pid(c))
    await c.query(q).then((r) => t.same(r.rows, [{ id: 1, v: 10, extra: null }]), (err: Error & { code?: string }) => errors.push(`${err.code}: ${err.message}`))
  }
  await Promise.all(clients.map((c) => c.query('ROLLBACK')))
  t.equal(new Set(after).size, 4, 'the four ran on the four server connections')
  t.same(errors, ['0A000: cached plan must not change result type'], 'only the first met the old plan')
})

t.test('SQL PREPARE / EXECUTE / DEALLOCATE in transaction pooling', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 2 } } })
  const cs = await Promise.all([0, 1, 2].map(async () => {
    const c = new pg.Client(fx.pgOptions)
    await c.connect()
    return c
  }))
  t.teardown(() => Promise.all(cs.map((c) => c.end())))
  await Promise.all(cs.map((c, i) => c.query(`PREPARE twice(int) AS SELECT $1 * 2 + ${i} AS v`)))
  for (let round = 0; round < 10; round++) {
    const got = await Promise.all(cs.map((c) => c.query(`EXECUTE twice(${round})`)))
    t.same(got.map((r) => r.rows[0].v), cs.map((_, i) => round * 2 + i), `round ${round}: each client runs its own "twice"`)
  }
  await t.rejects(cs[0].query('PREPARE twice(int) AS SELECT 1'), { code: '42P05' }, 'a duplicate PREPARE is refused')
  await cs[0].query('DEALLOCATE twice')
  await t.rejects(cs[0].query('EXECUTE twice(1)'), { code: '26000' }, 'EXECUTE after DEALLOCATE')
  t.equal((await cs[1].query('EXECUTE twice(1)')).rows[0].v, 3, 'the other clients keep theirs')
})

t.test('SQL PREPARE and protocol-level statements share one namespace, as in Postgres', async (t) => {
  const fx = await proxyWithTrusty(t, 2)
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  t.teardown(() => c.end())
  await c.query('PREPARE shared_name AS SELECT 1 AS v')
  await t.rejects(c.query({ name: 'shared_name', text: 'SELECT 2 AS v' }), { code: '42P05' }, 'a Parse may not reuse a SQL PREPARE name')
  await c.query('DEALLOCATE shared_name')
  const multi = (await c.query('PREPARE in_multi AS SELECT 1 AS v; EXECUTE in_multi')) as unknown as pg.QueryResult[]
  t.same(multi.map((r) => [r.command, r.rows]), [['PREPARE', []], ['SELECT', [{ v: 1 }]]], 'PREPARE among other statements: each runs in turn, under the proxy\'s names')
  t.equal((await c.query('EXECUTE in_multi')).rows[0].v, 1, 'and the statement stays prepared')
  await c.query('DEALLOCATE in_multi')
  t.equal((await c.query({ name: 'shared_name', text: 'SELECT 2 AS v' })).rows[0].v, 2, 'after DEALLOCATE the name is free for a Parse')
  await t.rejects(c.query('PREPARE shared_name AS SELECT 3'), { code: '42P05' }, 'and a PREPARE may not reuse a Parse name')
  await t.rejects(c.query('EXECUTE shared_name'), { code: '0A000', message: /made by a protocol-level Parse/ }, 'EXECUTE of a Parse name says what is unsupported')
  await c.query('DEALLOCATE ALL')
  await c.query('PREPARE shared_name AS SELECT 3 AS v')
  t.equal((await c.query('EXECUTE shared_name')).rows[0].v, 3, 'DEALLOCATE ALL freed the Parse name for a PREPARE')

  const raw = await RawClient.login(fx.port, 'trusty')
  t.teardown(() => raw.end())
  raw.send(encodeQuery('PREPARE by_sql AS SELECT 1'))
  await raw.until('Z')
  raw.send(Buffer.concat([encodeBind('', 'by_sql', [], [], []), encodeExecute('', 0), SYNC]))
  const err = (await raw.until('Z')).find((m) => m.type === 'E')
  t.match(err && errorFields(err.body), { code: '0A000', message: /made by SQL PREPARE; pgshard does not run it with Bind/ }, 'Bind of a PREPARE name says what is unsupported')
})

t.test('a cancel that arrives as its query ends never cancels the next client on that server connection', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 1, checkout_timeout: '10s' } } })
  const [a, b] = await connectedClients(t, fx.pgOptions, fx.pgOptions)
  const cancelA = () => cancelRequest(fx.port, a)
  let aCancelled = 0
  let bCancelled = 0
  const rounds = 120
  for (let i = 0; i < rounds; i++) {
    // A's query ends about when its cancel reaches the server; B waits for the one connection meanwhile.
    const aQuery = a.query('SELECT pg_sleep(0.01)').then(() => undefined, (e: { code?: string }) => {
      if (e.code === '57014') aCancelled++
      else throw e
    })
    await new Promise((r) => setTimeout(r, 6 + (i % 8)))
    const bQuery = b.query('SELECT pg_sleep(0.02)').then(() => undefined, (e: { code?: string }) => {
      if (e.code === '57014') bCancelled++
      else throw e
    })
    await cancelA()
    await Promise.all([aQuery, bQuery])
  }
  t.equal(bCancelled, 0, `B was never cancelled by A's cancel (A's query was cancelled in ${aCancelled} of ${rounds} rounds)`)
  t.ok(aCancelled > 0, 'some of the cancels arrived in time to cancel A')
})

/** node-postgres clients through the proxy, one per config, connected; they end with the test. */
/**
 * A proxy over two shards where `table` (id bigint PRIMARY KEY, n int DEFAULT 0) is sharded by id, created
 * through the proxy with ids 1..rows; `pool` settings on top.
 */
async function twoShardsWith(t: Test, table: string, rows: number, pool: Record<string, unknown> = {}): Promise<ProxyFixture> {
  const fx = await startProxy(t, { topology: { shards: 2 }, config: { pool, sharding: { tables: [{ name: table, key: 'id', type: 'bigint' }] } } })
  const [setup] = await connectedClients(t, fx.pgOptions)
  await setup.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, n int DEFAULT 0)`)
  await setup.query(`INSERT INTO ${table} (id) VALUES ${Array.from({ length: rows }, (_, i) => `(${i + 1})`).join(', ')}`)
  return fx
}

async function connectedClients(t: Test, ...configs: pg.ClientConfig[]): Promise<pg.Client[]> {
  const clients = configs.map((c) => new pg.Client(c))
  t.teardown(() => Promise.all(clients.map((c) => c.end())))
  await Promise.all(clients.map((c) => c.connect()))
  return clients
}

/** Sends a CancelRequest with the client's key, as libpq's PQcancel does; resolves when the proxy closes it. */
function cancelRequest(port: number, client: pg.Client): Promise<void> {
  const key = client as unknown as { processID: number; secretKey: number }
  const packet = Buffer.alloc(16)
  packet.writeInt32BE(16, 0)
  packet.writeInt32BE(80877102, 4)
  packet.writeInt32BE(key.processID, 8)
  packet.writeInt32BE(key.secretKey, 12)
  return new Promise<void>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.end(packet))
    s.on('close', () => resolve()).on('error', () => resolve())
  })
}

t.test('a cancel reaches a statement still waiting for a server connection, and one running on several shards', async (t) => {
  const fx = await twoShardsWith(t, 'cancel_items', 20, { size: 1, checkout_timeout: '30s' })
  const [a, b] = await connectedClients(t, fx.pgOptions, fx.pgOptions)

  // A holds the only connection to the shard B's statement needs.
  await a.query('BEGIN')
  await a.query('SELECT * FROM cancel_items WHERE id = 1')
  const started = Date.now()
  const waiting = b.query('SELECT * FROM cancel_items WHERE id = 1').then(() => null, (e: { code?: string }) => e)
  await new Promise((r) => setTimeout(r, 200))
  await cancelRequest(fx.port, b)
  t.match(await waiting, { code: '57014', message: /canceling statement due to user request/ }, 'the waiting statement is cancelled')
  t.ok(Date.now() - started < 5000, `at once, not at the 30 s checkout timeout (${Date.now() - started} ms)`)
  await a.query('COMMIT')
  t.equal((await b.query('SELECT count(*)::int AS n FROM cancel_items WHERE id = 1')).rows[0].n, 1, 'B goes on')

  const scatterStarted = Date.now()
  const scatter = b.query('SELECT count(*) FROM cancel_items WHERE pg_sleep(0.5) IS NOT NULL').then(() => null, (e: { code?: string }) => e)
  await new Promise((r) => setTimeout(r, 300))
  await cancelRequest(fx.port, b)
  t.match(await scatter, { code: '57014' }, 'a statement running on both shards is cancelled on them')
  t.ok(Date.now() - scatterStarted < 4000, `well before the 5 s each shard would sleep (${Date.now() - scatterStarted} ms)`)
  t.equal((await b.query('SELECT count(*)::int AS n FROM cancel_items')).rows[0].n, 20, 'B goes on across shards')
  await cancelRequest(fx.port, b)
  t.equal((await b.query('SELECT 1 AS one')).rows[0].one, 1, 'a cancel with nothing running changes nothing')
})

t.test('a client that leaves inside a pipeline, before its Sync, leaves nothing to the next client', async (t) => {
  const fx = await proxyWithTrusty(t, 1)
  const owner = new pg.Client(fx.pgOptions)
  await owner.connect()
  await owner.query('CREATE TABLE pipelined (id int)')
  await owner.query('GRANT ALL ON pipelined TO trusty')
  await owner.end()
  // The same user as the leaving clients: the same pool, and so the same one server connection.
  const next = new pg.Client({ host: '127.0.0.1', port: fx.port, user: 'trusty', database: 'app', query_timeout: 5000 } as pg.ClientConfig)
  await next.connect()
  t.teardown(() => next.end())
  // Each leaves with its statement answered (a Flush) and no Sync: the server is still inside their group.
  for (const [sql, until] of [['INSERT INTO pipelined VALUES (1)', 'C'], ['SELECT 1 / 0', 'E']] as const) {
    const raw = await RawClient.login(fx.port, 'trusty')
    raw.send(Buffer.concat([encodeUnnamedRun(sql), FLUSH]))
    await raw.until(until)
    raw.end()
    await new Promise((r) => setTimeout(r, 200))
    // Before, the one server connection went back to the pool as it was: the next client's statement committed
    // the dead client's INSERT, or was skipped by a server waiting for the dead client's Sync (a timeout).
    t.equal((await next.query('SELECT count(*)::int AS n FROM pipelined')).rows[0].n, 0, `after ${sql}: the next client is answered and no row stays`)
  }
})

t.test('a client killed mid-transaction leaves a clean server connection', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 1 } } })
  const setup = new pg.Client(fx.pgOptions)
  await setup.connect()
  await setup.query('CREATE TABLE victims (id int)')
  await setup.end()
  const doomed = new pg.Client(fx.pgOptions)
  doomed.on('error', () => undefined)
  await doomed.connect()
  await doomed.query("SET statement_timeout = '4321'")
  await doomed.query({ name: 'doomed_stmt', text: 'SELECT 1', values: [] })
  await doomed.query('PREPARE doomed_sql AS SELECT 2')
  await doomed.query('BEGIN')
  await doomed.query('INSERT INTO victims VALUES (1)')
  await doomed.query("SET search_path = nowhere")
  ;(doomed as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy()
  await new Promise((r) => setTimeout(r, 300))
  const next = new pg.Client(fx.pgOptions)
  await next.connect()
  t.teardown(() => next.end())
  const r = await next.query(
    "SELECT current_setting('statement_timeout') AS st, current_setting('search_path') AS sp, (SELECT count(*)::int FROM pg_prepared_statements) AS prepared, (SELECT count(*)::int FROM victims) AS rows, now() = statement_timestamp() AS own_tx",
  )
  t.same(r.rows[0], { st: '0', sp: '"$user", public', prepared: 0, rows: 0, own_tx: true }, 'no setting, statement, open transaction or row of the dead client')
})
