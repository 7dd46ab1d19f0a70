// sharding.cross_shard_transactions: two_phase. A read-write transaction may go on to other shards; COMMIT
// prepares it on every shard but the first, commits the first (which decides), then commits the prepared ones.
// Whatever fails before the decision rolls back everywhere; what is left prepared after it, the resolver
// finishes as the first shard decided.
import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import pg from 'pg'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { runCommand } from './harness/runCommand.js'
import { assertDriverChecks } from './harness/driverChecks.js'
import { sessionsInTransaction } from './harness/serverSessions.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'accounts', key: 'id', type: 'bigint' }, { name: 'entries', key: 'account_id', type: 'bigint' }], reference_tables: ['currencies'], cross_shard_transactions: 'two_phase' }
// The resolver looks only when asked (the tests call it): an hour between its own rounds.
const CONFIG = { sharding: SHARDING, pool: { size: 4 }, health: { resolve_prepared_interval: 3_600_000 } }
const fx = await startProxy(t, { topology: { shards: 2 }, config: CONFIG })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const keysOn = (shard: number, n: number): number[] => {
  const out: number[] = []
  for (let k = 1; out.length < n; k++) if (map.ring.shardFor(String(k)) === shard) out.push(k)
  return out
}
const [[a0, b0, c0], [a1, b1, c1]] = [keysOn(0, 3), keysOn(1, 3)]
const [s0, s1] = fx.topo.shards

const connect = async (): Promise<pg.Client> => {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  return c
}
const admin = await connect()
t.teardown(() => admin.end())
// A code unique per shard, checked at COMMIT: a transaction can fail on any shard at its very end.
await admin.query('CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, code int, UNIQUE (code) DEFERRABLE INITIALLY DEFERRED)')
await admin.query('CREATE TABLE currencies (code text PRIMARY KEY)')

/** Rows of accounts on one shard's primary, read there directly. */
const onShard = async (shard: typeof s0): Promise<Record<number, number>> => {
  const rows = await fx.topo.query(shard.primary, 'SELECT id, balance FROM accounts ORDER BY id', 'app')
  return Object.fromEntries(rows.map((r) => [Number(r.id), Number(r.balance)]))
}
const preparedLeft = async (): Promise<string[]> => {
  const gids: string[] = []
  for (const s of fx.topo.shards) gids.push(...(await fx.topo.query(s.primary, 'SELECT gid FROM pg_prepared_xacts')).map((r) => String(r.gid)))
  return gids
}
const settled = async (t: Test) => {
  t.ok(await waitFor(async () => (await sessionsInTransaction(fx.topo)) === 0, 5000), 'no server session is left inside a transaction')
  t.same(await preparedLeft(), [], 'no transaction is left prepared')
}
/** A counter or gauge of the fixture's proxy, by its labels as Prometheus prints them. */
const metric = async (name: string, labels = ''): Promise<number> => {
  const line = (await fx.app.registry.metrics()).split('\n').find((l) => l.startsWith(`${name}${labels} `))
  return Number(line?.split(' ')[1] ?? NaN)
}
const reset = async () => {
  for (const s of fx.topo.shards) await fx.topo.query(s.primary, 'DELETE FROM accounts', 'app')
}
const row = (id: number, code?: number) => `INSERT INTO accounts (id, balance, code) VALUES (${id}, 1, ${code ?? 'NULL'})`
/** A new client inside a transaction that ran these statements, on accounts emptied first. */
const inTransaction = async (t: Test, ...statements: string[]): Promise<pg.Client> => {
  await reset()
  const c = await connect()
  t.teardown(() => c.end())
  await c.query('BEGIN')
  for (const sql of statements) await c.query(sql)
  return c
}

t.test('a transaction writes two shards, reads both, and COMMIT makes both writes visible together', async (t) => {
  await reset()
  const c = await connect()
  t.teardown(() => c.end())
  await c.query('BEGIN')
  await c.query('INSERT INTO accounts (id, balance) VALUES ($1, 100)', [a0])
  await c.query(`INSERT INTO accounts (id, balance) VALUES (${a1}, 200)`)
  t.same((await c.query('SELECT count(*) AS n, sum(balance) AS s FROM accounts')).rows[0], { n: '2', s: '300' }, 'a read of every shard inside it sees its own writes on both')
  t.same([await onShard(s0), await onShard(s1)], [{}, {}], 'nothing visible outside before COMMIT')
  const done = await c.query('COMMIT')
  t.equal(done.command, 'COMMIT')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 100 }, { [a1]: 200 }], 'both shards have their row')
  await settled(t)
})

t.test('multi-row INSERT, UPDATE of several keys, a reference table and DDL inside one transaction', async (t) => {
  await reset()
  const c = await connect()
  t.teardown(() => c.end())
  await c.query('BEGIN')
  const ins = await c.query(`INSERT INTO accounts (id, balance) VALUES (${a0}, 1), (${a1}, 2), (${b0}, 3), (${b1}, 4)`)
  t.equal(ins.rowCount, 4, 'split into one INSERT per shard, inside the transaction (refused before)')
  const upd = await c.query(`UPDATE accounts SET balance = balance * 10 WHERE id IN (${a0}, ${a1})`)
  t.equal(upd.rowCount, 2)
  await c.query("INSERT INTO currencies VALUES ('EUR')")
  await c.query('CREATE INDEX accounts_balance ON accounts (balance)')
  await c.query('COMMIT')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 10, [b0]: 3 }, { [a1]: 20, [b1]: 4 }])
  for (const s of [s0, s1]) {
    t.equal((await fx.topo.query(s.primary, "SELECT count(*)::int AS n FROM currencies WHERE code = 'EUR'", 'app'))[0].n, 1, `the reference row on ${s.name}`)
    t.equal((await fx.topo.query(s.primary, "SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'accounts_balance'", 'app'))[0].n, 1, `the index on ${s.name}`)
  }
  await admin.query('DROP INDEX accounts_balance')
  await admin.query('DELETE FROM currencies')
  await settled(t)
})

t.test('ROLLBACK undoes the writes on every shard', async (t) => {
  const c = await inTransaction(t, row(a0), row(a1))
  await c.query('ROLLBACK')
  t.same([await onShard(s0), await onShard(s1)], [{}, {}])
  await settled(t)
})

t.test('a SET inside the transaction is undone by ROLLBACK and ROLLBACK TO, for the client and on every shard', async (t) => {
  await reset()
  await admin.query(`${row(a0)}; ${row(a1)}`)
  const c = await connect()
  t.teardown(() => c.end())
  const name = async () => (await c.query('SHOW application_name')).rows[0].application_name
  const onEach = async () => (await c.query(`SELECT id, current_setting('application_name') AS v FROM accounts WHERE id IN (${a0}, ${a1}) ORDER BY id`)).rows.map((r) => r.v)
  const before = await name()
  /** The transaction reaches both shards, the second joining with what was set; then another SET runs there. */
  const setAcross = async (value: string) => {
    await c.query(`SELECT 1 FROM accounts WHERE id = ${a0}`)
    await c.query(`SELECT 1 FROM accounts WHERE id = ${a1}`)
    await c.query(`SET application_name = '${value}'`)
    await c.query(`SELECT 1 FROM accounts WHERE id = ${a0}`)
  }
  await c.query('BEGIN')
  await c.query("SET application_name = 'first'")
  await setAcross('second')
  await c.query('ROLLBACK')
  t.equal(await name(), before, 'ROLLBACK: the client’s setting is what it was before BEGIN')
  t.same(await onEach(), [before, before], 'and every shard’s connection has it')

  await c.query('BEGIN')
  await c.query("SET application_name = 'kept'")
  await c.query('SAVEPOINT s')
  await setAcross('undone')
  await c.query('ROLLBACK TO s')
  t.equal(await name(), 'kept', 'ROLLBACK TO: what was set before the savepoint')
  t.same(await onEach(), ['kept', 'kept'], 'on every shard of the transaction')
  await c.query('COMMIT')
  t.same([await name(), ...(await onEach())], ['kept', 'kept', 'kept'], 'COMMIT keeps it')
  await settled(t)
})

t.test('a shard that fails to prepare (a deferred constraint): the transaction rolls back on every shard', async (t) => {
  const [committedBefore, rolledBackBefore] = [await metric('pgshard_cross_shard_commits_total', '{outcome="committed"}'), await metric('pgshard_cross_shard_commits_total', '{outcome="rolled_back"}')]
  const c = await inTransaction(t, row(a0, 7), row(a1, 5), row(b1, 5))
  await t.rejects(c.query('COMMIT'), { code: '23505', message: /accounts_code_key/ }, 'the server\u2019s own error from the shard that refused')
  t.same([await onShard(s0), await onShard(s1)], [{}, {}], 'nothing committed on the first shard either')
  t.same((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the client goes on, outside any transaction')
  t.equal(await metric('pgshard_cross_shard_commits_total', '{outcome="rolled_back"}'), rolledBackBefore + 1, 'counted as rolled back')
  t.equal(await metric('pgshard_cross_shard_commits_total', '{outcome="committed"}'), committedBefore, 'not as committed')
  await settled(t)
})

t.test('the deciding shard fails at COMMIT: the shards already prepared are rolled back', async (t) => {
  const c = await inTransaction(t, row(a1, 5), row(a0, 7), row(b0, 7))
  await t.rejects(c.query('COMMIT'), { code: '23505' })
  t.same([await onShard(s0), await onShard(s1)], [{}, {}], 'shard 1 had prepared its row: rolled back')
  await settled(t)
})

t.test('an error inside aborts the transaction on every shard; COMMIT then rolls back', async (t) => {
  const c = await inTransaction(t, row(a0), row(a1))
  await t.rejects(c.query(row(a1)), { code: '23505' })
  await t.rejects(c.query(`SELECT balance FROM accounts WHERE id = ${a0}`), { code: '25P02' }, 'the other shard answers as the aborted transaction')
  t.equal((await c.query('COMMIT')).command, 'ROLLBACK', 'as Postgres answers COMMIT of an aborted transaction')
  t.same([await onShard(s0), await onShard(s1)], [{}, {}])
  await settled(t)
})

t.test('what could not end it all or nothing is refused, and rolls back like any error in a transaction', async (t) => {
  const refusals: [string, pg.QueryConfig | string, RegExp][] = [
    ['COMMIT AND CHAIN', 'COMMIT AND CHAIN', /AND CHAIN/],
    ['PREPARE TRANSACTION by the client', "PREPARE TRANSACTION 'mine'", /PREPARE TRANSACTION/],
  ]
  for (const [what, query, message] of refusals) {
    const c = await inTransaction(t, row(a0), row(a1))
    await t.rejects(c.query(query), { code: '0A000', message }, what)
    await t.rejects(c.query(`SELECT balance FROM accounts WHERE id = ${a0}`), { code: '25P02' }, `${what}: the transaction is aborted, as after any error`)
    t.equal((await c.query('COMMIT')).command, 'ROLLBACK', `${what}: COMMIT then rolls back`)
    t.same([await onShard(s0), await onShard(s1)], [{}, {}], `${what}: nothing committed anywhere`)
  }
  await settled(t)
})

t.test('COMMIT through the extended protocol (node-postgres named, postgres.js) commits across shards too', async (t) => {
  const c = await inTransaction(t, row(a0), row(a1))
  const done = await c.query({ text: 'COMMIT', name: 'commit-extended' })
  t.equal(done.command, 'COMMIT')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 1 }, { [a1]: 1 }], 'node-postgres: Parse/Bind/Describe/Execute/Sync of COMMIT')
  await reset()
  const sql = postgres({ ...fx.pgOptions, username: fx.pgOptions.user, max: 1, onnotice: () => undefined })
  t.teardown(() => sql.end())
  // postgres.js: BEGIN as a simple query, its statements and COMMIT through the extended protocol.
  await sql.begin(async (tx) => {
    await tx`INSERT INTO accounts (id, balance) VALUES (${a0}, 2)`
    await tx`INSERT INTO accounts (id, balance) VALUES (${a1}, 3)`
  })
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 2 }, { [a1]: 3 }], 'postgres.js sql.begin across two shards')
  await reset()
  await t.rejects(
    sql.begin(async (tx) => {
      await tx`INSERT INTO accounts (id, balance, code) VALUES (${a0}, 1, 1)`
      await tx`INSERT INTO accounts (id, balance, code) VALUES (${a1}, 1, 9), (${b1}, 1, 9)`
    }),
    { code: '23505' },
    'a COMMIT that fails on a shard: the driver gets the server’s error',
  )
  t.same([await onShard(s0), await onShard(s1)], [{}, {}], 'and nothing is committed')
  t.same(await sql`SELECT 1 AS one`, [{ one: 1 }], 'the connection goes on')
  await settled(t)
})

t.test('savepoints and SET LOCAL through the extended protocol reach every shard of the transaction', async (t) => {
  await reset()
  const sql = postgres({ ...fx.pgOptions, username: fx.pgOptions.user, max: 1, onnotice: () => undefined })
  t.teardown(() => sql.end())
  // postgres.js sends its savepoint as Parse/Bind/Execute: opened while only shard 0 is held, so shard 1 must
  // join at it, and the rollback to it must undo the writes on both.
  await sql.begin(async (tx) => {
    await tx`INSERT INTO accounts (id, balance) VALUES (${a0}, 1)`
    await tx
      .savepoint(async (sp) => {
        await sp`INSERT INTO accounts (id, balance) VALUES (${a1}, 2)`
        await sp`INSERT INTO accounts (id, balance) VALUES (${b0}, 3)`
        throw new Error('undo the savepoint')
      })
      .catch((e: Error) => t.equal(e.message, 'undo the savepoint'))
    await tx`INSERT INTO accounts (id, balance) VALUES (${b1}, 4)`
  })
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 1 }, { [b1]: 4 }], 'postgres.js: the savepoint’s writes are undone on both shards, the rest committed')

  await reset()
  // node-postgres in extended mode, with both shards already held when the savepoint and SET LOCAL come.
  const c = await connect()
  t.teardown(() => c.end())
  const run = (text: string, values: unknown[] = []) => c.query({ text, values, queryMode: 'extended' } as pg.QueryConfig)
  await run('BEGIN')
  await run('INSERT INTO accounts (id, balance) VALUES ($1, 1), ($2, 1)', [a0, a1])
  await run('SAVEPOINT inner_work')
  await run("SET LOCAL pgshard_test.tag = 'inner'")
  await run('UPDATE accounts SET balance = 5 WHERE id = $1 OR id = $2', [a0, a1])
  const tags = await Promise.all([a0, a1].map(async (id) => (await run("SELECT current_setting('pgshard_test.tag', true) AS tag FROM accounts WHERE id = $1", [id])).rows[0]?.tag))
  t.same(tags, ['inner', 'inner'], 'SET LOCAL holds on both shards')
  await run('ROLLBACK TO SAVEPOINT inner_work')
  await run('RELEASE SAVEPOINT inner_work')
  const after = await Promise.all([a0, a1].map(async (id) => (await run("SELECT balance, current_setting('pgshard_test.tag', true) AS tag FROM accounts WHERE id = $1", [id])).rows[0]))
  t.same(after.map((r) => [r.balance, r.tag ?? '']), [[1, ''], [1, '']], 'ROLLBACK TO undid the update and the SET LOCAL on both shards')
  await run('COMMIT')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 1 }, { [a1]: 1 }], 'what was committed')
  await settled(t)
})

t.test('pgjdbc: every statement and COMMIT through the extended protocol', async (t) => {
  await reset()
  const program = join(dirname(fileURLToPath(import.meta.url)), 'java', 'JdbcTwoPhase.java')
  const url = `jdbc:postgresql://127.0.0.1:${fx.port}/app`
  const args = ['-cp', '/usr/share/java/postgresql.jar', program, url, fx.pgOptions.user, fx.pgOptions.password, String(a0), String(a1), String(b1)]
  await assertDriverChecks(t, 'java', args, ['commit across shards', 'rollback across shards', 'a failing commit rolls back everywhere', 'a rollback to a savepoint undoes it on every shard', 'a cursor on one shard while writing to another', 'a fetch-size read across shards in a transaction', 'autosave recovers from an error and commits across shards', 'an autocommit batch across shards is all or nothing', 'a rewritten batch across shards is all or nothing'], 120_000)
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 16 }, { [a1]: 23 }], 'what the servers hold')
  await settled(t)
})

t.test('psycopg 3: transaction blocks and pipeline mode across shards', async (t) => {
  await reset()
  const script = join(dirname(fileURLToPath(import.meta.url)), 'python', 'psycopg_two_phase.py')
  const args = [script, `${fx.dsn} password=${fx.pgOptions.password}`, String(a0), String(a1), String(b1)]
  await assertDriverChecks(t, '/usr/bin/python3', args, ['transaction block across shards', 'pipeline across shards', 'an error in a pipeline across shards skips the rest', 'a failing commit rolls back everywhere', 'a nested block rolled back undoes its writes on every shard', 'a named cursor on one shard while writing to another', 'commit inside a pipeline across shards', 'executemany in autocommit across shards is all or nothing', 'an autocommit pipeline across shards that fails leaves nothing', 'the SET of a failed pipeline is undone, the next one stays'], 60_000)
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 13 }, { [a1]: 51 }], 'what the servers hold')
  await settled(t)
})

t.test('lastval() and currval() answer only from the server session that made the transaction’s sequence values', async (t) => {
  await admin.query('CREATE TABLE IF NOT EXISTS entries (id serial, account_id bigint NOT NULL)')
  const c = await connect()
  t.teardown(() => c.end())
  await c.query('BEGIN')
  const first = (await c.query(`INSERT INTO entries (account_id) VALUES (${a0}) RETURNING id`)).rows[0].id
  t.equal((await c.query('SELECT lastval() AS v')).rows[0].v, String(first), 'after nextval() on one shard: its value')
  await c.query(`INSERT INTO entries (account_id) VALUES (${a1}) RETURNING id`)
  await c.query(`SELECT count(*) FROM accounts WHERE id = ${a0}`)
  await t.rejects(c.query('SELECT lastval()'), { code: '0A000', message: /called nextval\(\) on several shards/ }, 'after nextval() on two shards: refused, not the first shard’s older value')
  await c.query('ROLLBACK')
  await c.query('BEGIN')
  const made = (await c.query(`INSERT INTO entries (account_id) VALUES (${a1}) RETURNING id`)).rows[0].id
  await c.query(`SELECT count(*) FROM accounts WHERE id = ${a0}`)
  t.equal((await c.query("SELECT currval('entries_id_seq') AS v")).rows[0].v, String(made), 'asked after a statement on another shard: answered by the shard that made it')
  await c.query('ROLLBACK')
})

t.test('SELECT … FOR UPDATE across shards locks the rows it returns on every shard until COMMIT', async (t) => {
  await reset()
  await admin.query(`INSERT INTO accounts (id, balance) VALUES (${a0}, 1), (${a1}, 1), (${b1}, 5)`)
  const [x, y] = [await connect(), await connect()]
  t.teardown(() => Promise.all([x.end(), y.end()]))
  await x.query('BEGIN')
  const locked = await x.query('SELECT id FROM accounts WHERE balance = 1 ORDER BY id FOR UPDATE')
  t.same(locked.rows.map((r) => Number(r.id)), [a0, a1].sort((p, q) => p - q), 'the rows of both shards, merged in order')
  await y.query("SET lock_timeout = '200ms'")
  for (const id of [a0, a1]) await t.rejects(y.query(`UPDATE accounts SET balance = 2 WHERE id = ${id}`), { code: '55P03' }, `row ${id} is locked on its shard`)
  t.equal((await y.query(`UPDATE accounts SET balance = 6 WHERE id = ${b1}`)).rowCount, 1, 'a row it did not return is not locked')
  await x.query(`UPDATE accounts SET balance = 3 WHERE id IN (${a0}, ${a1})`)
  await x.query('COMMIT')
  t.equal((await y.query(`UPDATE accounts SET balance = balance + 1 WHERE id IN (${a0}, ${a1})`)).rowCount, 2, 'after COMMIT the rows are free')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 4 }, { [a1]: 4, [b1]: 6 }])
  await settled(t)
})

/**
 * x (older) locks a0 on shard 0, y (newer) a1 on shard 1, then x waits on shard 1 for y's row: whatever y does
 * next on a0 closes a cycle that each server sees only half of.
 */
const crosswise = async (t: Test) => {
  await reset()
  await admin.query(`INSERT INTO accounts (id, balance) VALUES (${a0}, 0), (${a1}, 0), (${b1}, 0)`)
  const [x, y] = [await connect(), await connect()]
  t.teardown(() => Promise.all([x.end(), y.end()]))
  await x.query('BEGIN')
  await x.query(`UPDATE accounts SET balance = 1 WHERE id = ${a0}`)
  await y.query('BEGIN')
  await y.query(`UPDATE accounts SET balance = 2 WHERE id = ${a1}`)
  const xWaits = x.query(`UPDATE accounts SET balance = 1 WHERE id = ${a1}`)
  const waiting = async () => (await fx.topo.query(s1.primary, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'app' AND wait_event_type = 'Lock'"))[0].n === 1
  t.ok(await waitFor(waiting, 5000), 'x waits on shard 1')
  return { x, y, xWaits }
}

t.test('two transactions that wait on each other across shards: one gets 40P01, the other commits', async (t) => {
  const { x, y, xWaits } = await crosswise(t)
  const before = await metric('pgshard_cross_shard_deadlocks_total')
  await t.rejects(y.query(`UPDATE accounts SET balance = 2 WHERE id = ${a0}`), { code: '40P01', message: 'deadlock detected across shards', detail: /waits on s0-primary for client \d+/ }, 'the newer one is told why, as by a server')
  t.equal(await metric('pgshard_cross_shard_deadlocks_total'), before + 1, 'counted')
  // As a server releases an aborted transaction's locks at the error, y's part on shard 1 is gone already.
  t.equal((await xWaits).rowCount, 1, 'the older one goes on before y even rolls back')
  await t.rejects(y.query(`SELECT balance FROM accounts WHERE id = ${a1}`), { code: '25P02' }, 'y is aborted')
  await y.query('ROLLBACK')
  await x.query('COMMIT')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 1 }, { [a1]: 1, [b1]: 0 }], 'x\u2019s writes, on both shards')
  await settled(t)
})

t.test('a deadlock whose newest member waits inside a statement on several shards: cancelled too, nothing hangs', async (t) => {
  const { x, y, xWaits } = await crosswise(t)
  // y's UPDATE of two keys runs on shard 0 (where it waits for x), then shard 1.
  await t.rejects(y.query(`UPDATE accounts SET balance = 2 WHERE id IN (${a0}, ${b1})`), { code: '57014' }, 'cancelled: the server\u2019s own error')
  await y.query('ROLLBACK')
  t.equal((await xWaits).rowCount, 1, 'x goes on once y rolled back')
  await x.query('COMMIT')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 1 }, { [a1]: 1, [b1]: 0 }])
  await settled(t)
})

t.test('concurrent transfers between shards keep the total', async (t) => {
  await reset()
  await admin.query(`INSERT INTO accounts (id, balance) VALUES (${a0}, 1000), (${a1}, 1000), (${c0}, 1000), (${c1}, 1000)`)
  const clients = await Promise.all([0, 1, 2, 3].map(() => connect()))
  t.teardown(() => Promise.all(clients.map((c) => c.end())))
  const pairs = [[a0, a1], [c0, c1], [a0, c1], [c0, a1]]
  let committed = 0
  await Promise.all(
    clients.map(async (c, i) => {
      const [from, to] = pairs[i]
      for (let n = 0; n < 20; n++) {
        await c.query('BEGIN')
        // Always shard 0's row first: no two transfers wait on each other in opposite order.
        await c.query('UPDATE accounts SET balance = balance - 7 WHERE id = $1', [from])
        await c.query('UPDATE accounts SET balance = balance + 7 WHERE id = $1', [to])
        await c.query('COMMIT')
        committed++
      }
    }),
  )
  t.equal(committed, 80)
  const [r0, r1] = [await onShard(s0), await onShard(s1)]
  t.same(r0, { [a0]: 1000 - 7 * 40, [c0]: 1000 - 7 * 40 }, 'shard 0 gave 40 transfers per row')
  t.same(r1, { [a1]: 1000 + 7 * 40, [c1]: 1000 + 7 * 40 }, 'shard 1 received them')
  await settled(t)
})

t.test('a client that leaves in the middle of one leaves nothing behind', async (t) => {
  const c = await inTransaction(t, row(a0), row(a1))
  await c.end()
  await settled(t)
  t.same([await onShard(s0), await onShard(s1)], [{}, {}])
})

t.test('a shutdown lets a transaction across shards finish: its COMMIT ends it, not the timeout', async (t) => {
  await reset()
  const lines: Record<string, unknown>[] = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()))
      done()
    },
  })
  const app = await ProxyApp.start(proxyConfig(fx.topo, CONFIG), { log: createLogger({ level: 'info', destination }) })
  const c = new pg.Client({ ...fx.pgOptions, port: app.address.port })
  c.on('error', () => {})
  await c.connect()
  for (const sql of ['BEGIN', row(a0), row(a1)]) await c.query(sql)
  const stopped = app.stop(20_000)
  t.equal((await c.query('COMMIT')).command, 'COMMIT', 'the transaction in flight commits')
  await stopped
  t.match(lines.find((l) => l.msg === 'shutdown: clients ended'), { at_transaction_boundary: 1, forced: 0 }, 'the client was ended right after its COMMIT')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 1 }, { [a1]: 1 }])
  await c.end().catch(() => undefined)
  await settled(t)
})

t.test('psql runs a cross-shard transaction from a script', async (t) => {
  await reset()
  const script = join(fx.topo.baseDir, 'two-phase.sql')
  await writeFile(script, `BEGIN;\nINSERT INTO accounts (id, balance) VALUES (${b0}, 5);\nINSERT INTO accounts (id, balance) VALUES (${b1}, 6);\nCOMMIT;\n`)
  const out = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', fx.dsn, '-f', script], { env: fx.env })
  t.equal(out.code, 0, out.stderr)
  t.match(out.stdout, /COMMIT/)
  t.same([await onShard(s0), await onShard(s1)], [{ [b0]: 5 }, { [b1]: 6 }])
  await settled(t)
})

t.test('COPY FROM STDIN inside the transaction: rows split by key, committed with the rest, or failing it', async (t) => {
  await reset()
  const script = join(fx.topo.baseDir, 'two-phase-copy.sql')
  const copy = (rows: number[][]) => `COPY accounts (id, balance) FROM STDIN;\n${rows.map((r) => r.join('\t')).join('\n')}\n\\.\n`
  await writeFile(script, `BEGIN;\n${row(c0)};\n${copy([[a0, 1], [a1, 2], [b0, 3], [b1, 4]])}COMMIT;\n`)
  const ok = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', fx.dsn, '-f', script], { env: fx.env })
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /COPY 4/)
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 1, [b0]: 3, [c0]: 1 }, { [a1]: 2, [b1]: 4 }], 'every row on the shard of its key, with the INSERT before it')
  await reset()
  await writeFile(script, `BEGIN;\n${row(c0)};\n${copy([[a0, 1], [a1, 2], [a1, 3]])}SELECT 1;\nCOMMIT;\n`)
  const failed = await runCommand('psql', ['-X', '-d', fx.dsn, '-f', script], { env: fx.env })
  t.match(failed.stderr, /duplicate key value violates unique constraint "accounts_pkey"[\s\S]*current transaction is aborted/, 'the shard\u2019s error, then the transaction is aborted')
  t.match(failed.stdout, /ROLLBACK/, 'COMMIT rolls back')
  t.same([await onShard(s0), await onShard(s1)], [{}, {}], 'nothing anywhere, not even the rows of the other shard')
  await settled(t)
})

t.test('INSERT … SELECT whose keys come from its SELECT, inside the transaction: reads its own rows, committed or rolled back with the rest', async (t) => {
  await reset()
  const c = await inTransaction(t, row(c0))
  await c.query('INSERT INTO currencies VALUES ($1), ($2)', ['EUR', 'USD'])
  const fromRows = await c.query(`INSERT INTO accounts (id, balance) SELECT v, length(code) FROM (SELECT code, row_number() OVER (ORDER BY code) AS n FROM currencies) s, LATERAL (VALUES (CASE n WHEN 1 THEN ${a0} ELSE ${a1} END)) AS k(v)`)
  t.equal(fromRows.rowCount, 2, 'the currencies the transaction wrote are read (its own connection)')
  const copied = await c.query('INSERT INTO accounts (id, balance) SELECT id + 1000000, balance + 1 FROM accounts')
  t.equal(copied.rowCount, 3, 'the accounts it wrote on both shards are read')
  await c.query('ROLLBACK')
  t.same([await onShard(s0), await onShard(s1)], [{}, {}], 'ROLLBACK: nothing anywhere')
  const d = await inTransaction(t)
  await d.query(`INSERT INTO accounts (id, balance) SELECT unnest(ARRAY[${a0}, ${a1}, ${b0}]::bigint[]), 7`)
  await d.query('COMMIT')
  t.same([await onShard(s0), await onShard(s1)], [{ [a0]: 7, [b0]: 7 }, { [a1]: 7 }], 'COMMIT: each row on the shard of its key')
  await settled(t)
})

t.test('the resolver finishes prepared parts as the deciding shard decided', async (t) => {
  await reset()
  /** A prepared part on shard 1 whose deciding transaction on shard 0 had this end (or is still open, or never was). */
  const prepare = async (id: number, xid: string) => {
    const part = new pg.Client({ host: fx.topo.baseDir, port: s1.primary.port, user: 'postgres', database: 'app' })
    await part.connect()
    await part.query('BEGIN')
    await part.query(`INSERT INTO accounts (id, balance) VALUES (${id}, 1)`)
    await part.query(`PREPARE TRANSACTION 'pgshard:${s0.name}:${xid}'`)
    await part.end()
    return `pgshard:${s0.name}:${xid}`
  }
  const leaveOne = async (id: number, end: 'COMMIT' | 'ROLLBACK' | null) => {
    const deciding = new pg.Client({ host: fx.topo.baseDir, port: s0.primary.port, user: 'postgres', database: 'app' })
    await deciding.connect()
    await deciding.query('BEGIN')
    const xid = (await deciding.query('SELECT txid_current()::text AS x')).rows[0].x as string
    if (end !== null) {
      await deciding.query(end)
      await deciding.end()
    }
    return { gid: await prepare(id, xid), open: end === null ? deciding : null }
  }
  const committed = await leaveOne(a1, 'COMMIT')
  const aborted = await leaveOne(b1, 'ROLLBACK')
  const undecided = await leaveOne(c1, null)
  // An id the deciding shard never assigned: its primary was replaced by one that had not seen the COMMIT.
  const lost = await prepare(keysOn(1, 4)[3], '999999999999')
  const round = await fx.app.resolver.resolve()
  t.same(round.committed, [committed.gid])
  t.same([...round.rolledBack].sort(), [aborted.gid, lost].sort(), 'aborted, and unknown to the deciding shard: rolled back')
  t.same(round.waiting, [undecided.gid], 'a deciding transaction still open is left alone')
  t.same(await onShard(s1), { [a1]: 1 }, 'the committed part is visible, the aborted one gone')
  await undecided.open!.query('COMMIT')
  await undecided.open!.end()
  t.same((await fx.app.resolver.resolve()).committed, [undecided.gid], 'finished once its deciding transaction committed')
  t.same(await onShard(s1), { [a1]: 1, [c1]: 1 })
  t.equal(await metric('pgshard_prepared_resolved_total', '{action="commit"}'), 2, 'two parts committed by the resolver')
  t.equal(await metric('pgshard_prepared_resolved_total', '{action="rollback"}'), 2)
  t.equal(await metric('pgshard_prepared_waiting'), 0, 'none left waiting')
  await settled(t)
})
