// pgbench against a sharded map: pgbench_accounts and pgbench_history sharded by aid, branches and tellers
// reference tables, with two-phase commit. `pgbench -i` (DDL on every shard, one transaction of TRUNCATE,
// reference-table INSERTs and a COPY split by aid, then VACUUM) and its TPC-B transactions (an account's shard,
// every shard for the reference rows) run as on one server, and the balances agree at the end.
import pg from 'pg'
import t, { type Test } from 'tap'
import { runCommand } from './harness/runCommand.js'
import { sessionsInTransaction } from './harness/serverSessions.js'
import { startProxy } from './harness/startProxy.js'

const SHARDING = {
  tables: [
    { name: 'pgbench_accounts', key: 'aid', type: 'integer' },
    { name: 'pgbench_history', key: 'aid', type: 'integer' },
  ],
  reference_tables: ['pgbench_branches', 'pgbench_tellers'],
  cross_shard_transactions: 'two_phase',
}
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING, pool: { size: 8, checkout_timeout: '30s' } } })
const pgbench = (args: string[]) => runCommand('pgbench', [...args, '-h', '127.0.0.1', '-p', String(fx.port), '-U', fx.pgOptions.user, 'app'], { env: fx.env, timeoutMs: 120_000 })
const onServer = async (shard: number, sql: string) => (await fx.topo.query(fx.topo.shards[shard].primary, sql, 'app'))[0]

t.test('pgbench -i, then TPC-B from 4 clients: no failure, and every balance agrees', async (t) => {
  const init = await pgbench(['-i', '-s', '1'])
  t.equal(init.code, 0, `pgbench -i succeeds (refused before: its load is one transaction over every table, then VACUUM)\n${init.stderr}`)
  const counts = [await onServer(0, 'SELECT count(*)::int AS n FROM pgbench_accounts'), await onServer(1, 'SELECT count(*)::int AS n FROM pgbench_accounts')]
  t.equal((counts[0].n as number) + (counts[1].n as number), 100_000, 'every account row on the shard of its aid')
  t.ok((counts[0].n as number) > 0 && (counts[1].n as number) > 0, `both shards hold accounts (${counts[0].n} / ${counts[1].n})`)
  t.equal((await onServer(1, 'SELECT count(*)::int AS n FROM pgbench_tellers')).n, 10, 'the reference tables on every shard')

  const run = await pgbench(['-c', '4', '-j', '2', '-t', '50'])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /number of transactions actually processed: 200\/200/)
  t.match(run.stdout, /number of failed transactions: 0 /)
  await balancesAgree(t, 200)
})

t.test('TPC-B from 24 clients over pools of 8: transactions across shards do not wait on each other\u2019s pools', async (t) => {
  // Each transaction holds its account's shard and then needs every other for the reference rows. With every
  // connection of s0 held by transactions waiting for s1 and the other way round, all of them waited until
  // the checkout timeout; the cross-shard reserve lets one at a time finish and give both back.
  const run = await pgbench(['-n', '-c', '24', '-j', '2', '-t', '20'])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /number of transactions actually processed: 480\/480/)
  t.match(run.stdout, /number of failed transactions: 0 /)
  await balancesAgree(t, 680)
  const totals = fx.app.proxy.pools.all().map((e) => e.pool.counts.total)
  t.ok(totals.every((n) => n <= 8 + 2), `no pool grew past its size and reserve (${totals.join(', ')} connections)`)
})

/** The accounts, branches, tellers and history add up, the reference tables agree on both shards. */
async function balancesAgree(t: Test, transactions: number): Promise<void> {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  t.teardown(() => c.end())
  const sum = async (sql: string) => Number((await c.query(sql)).rows[0].s)
  const accounts = await sum('SELECT sum(abalance) AS s FROM pgbench_accounts')
  t.equal(await sum('SELECT sum(bbalance) AS s FROM pgbench_branches'), accounts, 'branches add up to the accounts')
  t.equal(await sum('SELECT sum(tbalance) AS s FROM pgbench_tellers'), accounts, 'tellers too')
  t.equal(await sum('SELECT sum(delta) AS s FROM pgbench_history'), accounts, 'and the history')
  t.equal(Number((await c.query('SELECT count(*) AS n FROM pgbench_history')).rows[0].n), transactions, 'one history row per transaction')
  for (const table of ['pgbench_branches', 'pgbench_tellers']) {
    const [a, b] = [await onServer(0, `SELECT sum(${table === 'pgbench_branches' ? 'bbalance' : 'tbalance'})::int AS s FROM ${table}`), await onServer(1, `SELECT sum(${table === 'pgbench_branches' ? 'bbalance' : 'tbalance'})::int AS s FROM ${table}`)]
    t.equal(a.s, b.s, `${table}: the same on both shards`)
  }
  t.equal(await sessionsInTransaction(fx.topo), 0, 'no server session left in a transaction')
}

t.test('concurrent writes to the same reference rows do not wait on each other across shards', async (t) => {
  const admin = new pg.Client(fx.pgOptions)
  await admin.connect()
  t.teardown(() => admin.end())
  await admin.query('UPDATE pgbench_branches SET bbalance = 0')
  const clients = await Promise.all(Array.from({ length: 6 }, async () => {
    const c = new pg.Client(fx.pgOptions)
    await c.connect()
    return c
  }))
  t.teardown(() => Promise.all(clients.map((c) => c.end())))
  // Autocommit: each UPDATE runs on every shard inside a transaction of its own there. Before, the shards ran
  // in parallel: one client could lock the row on one shard while another locked it on the other, and both
  // waited forever (no server sees a deadlock that spans two servers).
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < 30; i++) await c.query('UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1')
  }))
  for (const shard of [0, 1]) t.equal((await onServer(shard, 'SELECT bbalance FROM pgbench_branches WHERE bid = 1')).bbalance, 180, `shard ${shard}: every update`)
})
