import pg from 'pg'
import t from 'tap'
import { parseConfig } from '../src/config/ConfigLoader.js'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import type { LocalTopology } from '../src/topology/LocalTopology.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { startTopology } from './harness/startTopology.js'

// Automatic failover against real servers, killed for real. The health settings are the defaults (checks every
// 1 s, 1 s timeout, 3 failures to mark a node down) unless a test says otherwise.

const USERS = [{ name: 'app', password: 'secret' }]

async function startApp(topo: LocalTopology, extra: Record<string, unknown> = {}) {
  const logLines: string[] = []
  const app = await ProxyApp.start(
    parseConfig(
      JSON.stringify({
        listen: { port: 0 },
        users: USERS,
        databases: [{ name: 'app' }],
        shards: topo.shardsConfig().map((s) => ({ ...s, failover: 'auto' })),
        control: { user: 'postgres', password: topo.superuser.password },
        ...extra,
      }),
    ),
    { log: createLogger({ level: 'info', destination: { write: (s: string) => void logLines.push(s) } }) },
  )
  const logged = (text: string) => logLines.some((l) => l.includes(text))
  return { app, logLines, logged, node: (name: string) => app.proxy.topology.node(name)! }
}

async function connect(app: ProxyApp, queryTimeout?: number): Promise<pg.Client> {
  const c = new pg.Client({ ...app.address, user: 'app', password: 'secret', database: 'app', connectionTimeoutMillis: 5000, query_timeout: queryTimeout })
  c.on('error', () => {})
  await c.connect()
  return c
}

interface Ack {
  writer: number
  seq: number
  at: number
}

let writerIds = 0

/** Writers inserting (writer, seq) rows as fast as they can; a failed attempt's seq is never reused. */
function ledgerLoad(app: ProxyApp, writers: number, queryTimeout: number) {
  const acked: Ack[] = []
  const failures: { at: number; code: string }[] = []
  let running = true
  const writer = async (w: number) => {
    let c: pg.Client | null = null
    let seq = 0
    while (running) {
      seq++
      try {
        c ??= await connect(app, queryTimeout)
        await c.query('INSERT INTO ledger (writer, seq) VALUES ($1, $2)', [w, seq])
        acked.push({ writer: w, seq, at: Date.now() })
      } catch (err) {
        failures.push({ at: Date.now(), code: String((err as { code?: string }).code ?? (err as Error).message) })
        void c?.end().catch(() => {})
        c = null
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    void c?.end().catch(() => {})
  }
  const done = Promise.all(Array.from({ length: writers }, () => writer(++writerIds)))
  return {
    acked,
    failures,
    stop: async () => {
      running = false
      await done
    },
  }
}

/** Acknowledged rows missing from `node`'s ledger. */
async function missingOn(topo: LocalTopology, node: string, acked: Ack[]): Promise<Ack[]> {
  const rows = await topo.query(node, 'SELECT writer, seq FROM ledger', 'app')
  const present = new Set(rows.map((r) => `${r.writer}:${r.seq}`))
  return acked.filter((a) => !present.has(`${a.writer}:${a.seq}`))
}

const setting = async (topo: LocalTopology, node: string, name: string) =>
  String((await topo.query(node, `SELECT current_setting('${name}') AS v`))[0].v)

t.test('synchronous replication, 2 replicas, failover: auto, synchronous_policy: durability', async (t) => {
  const topo = await startTopology(t, { shards: 1, replicas: 2, synchronousReplicas: true, users: USERS, databases: ['app'] })
  await topo.query('s0-primary', 'SET ROLE app; CREATE TABLE ledger (writer int, seq int, PRIMARY KEY (writer, seq))', 'app')
  const { app, logged, node } = await startApp(topo)
  t.teardown(() => app.stop(1000))
  t.ok(await waitFor(() => node('s0-primary').syncStandbys > 0, 5000), 'the checks see the synchronous standbys')

  await t.test('a primary SIGSTOPped for less than the failure threshold is not promoted over', async (t) => {
    const load = ledgerLoad(app, 2, 10_000)
    await new Promise((r) => setTimeout(r, 300))
    let maxFailures = 0
    const watch = setInterval(() => (maxFailures = Math.max(maxFailures, node('s0-primary').failures)), 20)
    await topo.kill('s0-primary', 'SIGSTOP', 'all')
    await new Promise((r) => setTimeout(r, 2500))
    await topo.kill('s0-primary', 'SIGCONT', 'all')
    const resumedAt = Date.now()
    await new Promise((r) => setTimeout(r, 1500))
    clearInterval(watch)
    await load.stop()
    t.ok(maxFailures >= 1, `the checker saw the pause (${maxFailures} failed check(s) in a row)`)
    t.ok(node('s0-primary').up, 'never marked down')
    t.equal(app.failover.stats.failovers, 0, 'nothing promoted')
    t.notOk(logged('failover:'), 'no failover step started')
    t.ok(load.acked.some((a) => a.at > resumedAt), 'writes go on after SIGCONT')
    t.same(load.failures, [], 'no write failed: they waited')
  })

  await t.test('a primary that is down for the checks but answers the confirming check is not promoted over', async (t) => {
    const confirming = waitFor(() => logged('failover: primary is down; confirming'), 15_000)
    await topo.kill('s0-primary', 'SIGSTOP', 'all')
    t.ok(await confirming, 'marked down after 3 failed checks; the failover manager confirms')
    await topo.kill('s0-primary', 'SIGCONT', 'all')
    t.ok(await waitFor(() => logged('answered the confirming check; not promoting'), 5000), 'the confirming check found it alive')
    t.ok(await waitFor(() => node('s0-primary').up, 5000), 'and the checks bring it back')
    t.equal(app.failover.stats.failovers, 0)
    t.notOk(node('s0-primary').fenced)
  })

  let newPrimary = ''
  let other = ''
  await t.test('kill -9 of the primary under a write load: the best replica is promoted, no acknowledged write is lost', async (t) => {
    const load = ledgerLoad(app, 4, 10_000)
    await new Promise((r) => setTimeout(r, 1000))
    const killedAt = Date.now()
    await topo.kill('s0-primary', 'SIGKILL')
    // Backends outlive a SIGKILLed postmaster for a moment and may still commit: count from when all are gone.
    const goneAt = Date.now()
    t.ok(await waitFor(() => load.acked.some((a) => a.at > goneAt), 20_000), 'writes succeed again')
    const firstWrite = load.acked.find((a) => a.at > goneAt)!.at - killedAt
    await new Promise((r) => setTimeout(r, 1000))
    await load.stop()
    const before = load.acked.filter((a) => a.at <= goneAt).length
    t.comment(`kill -9 → first acknowledged write: ${firstWrite} ms (the kill took ${goneAt - killedAt} ms; the failover itself, from 'down' to writes rerouted, ${app.failover.stats.lastFailoverMs} ms); ${before} writes acknowledged before, ${load.acked.length - before} after; ${load.failures.length} attempts failed meanwhile`)
    t.ok(firstWrite <= 8000, `first write ${firstWrite} ms after the kill (goal 5 s)`)
    t.equal(app.failover.stats.failovers, 1)
    newPrimary = ['s0-replica1', 's0-replica2'].find((n) => node(n).role === 'primary')!
    other = newPrimary === 's0-replica1' ? 's0-replica2' : 's0-replica1'
    t.ok(newPrimary, `promoted ${newPrimary}`)
    t.ok(node('s0-primary').fenced, 'the old primary is fenced')
    t.equal((await topo.query(newPrimary, 'SELECT pg_is_in_recovery() AS r'))[0].r, false)
    t.same(await missingOn(topo, newPrimary, load.acked), [], `every acknowledged write (${load.acked.length}) is on the new primary`)

    t.equal(await setting(topo, newPrimary, 'synchronous_standby_names'), `ANY 1 ("${other}")`, 'durability: the new primary requires the remaining replica')
    t.ok(
      await waitFor(async () => (await topo.query(other, `SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'`))[0]?.sender_port === topo.node(newPrimary).port, 10_000),
      `${other} streams from ${newPrimary}`,
    )
    const [rep] = await topo.query(newPrimary, 'SELECT application_name, sync_state FROM pg_stat_replication')
    t.same(rep, { application_name: other, sync_state: 'quorum' }, `${other} is its synchronous standby`)
    await topo.waitForReplay(other, { from: newPrimary })
    t.same(await missingOn(topo, other, load.acked), [], 'and has every acknowledged write too')
    t.ok(logged('failover: chose the replica that received the most WAL') && logged('failover: writes now go to the new primary'), 'each step is logged')
  })

  await t.test('the old primary, restarted, gets no traffic and cannot be admitted as it is', async (t) => {
    await topo.startNode('s0-primary')
    t.ok(await waitFor(() => node('s0-primary').up, 10_000), 'its checks succeed again')
    t.ok(await waitFor(() => logged('a fenced node is up and not in recovery'), 5000), 'the log says it claims to be a primary')
    t.ok(node('s0-primary').fenced, 'still fenced')
    const load = ledgerLoad(app, 2, 10_000)
    const c = await connect(app)
    for (let i = 0; i < 50; i++) await c.query('SELECT count(*) FROM ledger')
    await c.end()
    await load.stop()
    t.ok(load.acked.length > 0, 'writes went on meanwhile')
    const [{ n }] = await topo.query('s0-primary', `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'app'`)
    t.equal(n, 0, 'no client connection on the old primary')
    t.same(app.proxy.pools.all().filter((p) => p.node.name === 's0-primary'), [], 'and no pool for it')
    await t.rejects(app.failover.admit('s0-primary'), { code: '55000', message: /is a primary \(not in recovery\) and shard s0 already has the primary/ })
  })

  await t.test('planned switchover under a write load; with no replica left, durability keeps commits waiting', async (t) => {
    const load = ledgerLoad(app, 4, 1500)
    await new Promise((r) => setTimeout(r, 500))
    const message = await app.failover.promote(other)
    t.match(message, new RegExp(`switched shard s0 over to ${other} in \\d+ ms; ${newPrimary} is fenced`))
    await new Promise((r) => setTimeout(r, 500))
    await load.stop()
    t.equal(app.failover.stats.switchovers, 1)
    t.equal(node(other).role, 'primary')
    t.ok(node(newPrimary).fenced)
    t.ok(load.acked.length > 0, 'writes were acknowledged around the switchover')
    t.same(await missingOn(topo, other, load.acked), [], `every acknowledged write (${load.acked.length}) is on ${other}`)
    t.equal(await setting(topo, other, 'synchronous_standby_names'), '*', 'no standby to name: any future one must confirm')
    t.ok(logged('no replica left to be synchronous'), 'said loudly in the log')
    t.ok(await waitFor(() => app.health.commitsWaiting().includes('s0'), 5000), 'and in the health state (for metrics)')
    const c = await connect(app, 1500)
    const err = await c.query('INSERT INTO ledger VALUES (99, 1)').catch((e: Error) => e)
    t.match(err, { message: /timeout/ }, 'a commit waits for a synchronous standby')
    void c.end().catch(() => {})
  })
})

t.test('synchronous_policy: availability; a replica down during the failover follows the new primary when it returns', async (t) => {
  const topo = await startTopology(t, { shards: 1, replicas: 2, synchronousReplicas: true, users: USERS, databases: ['app'] })
  await topo.query('s0-primary', 'SET ROLE app; CREATE TABLE ledger (writer int, seq int, PRIMARY KEY (writer, seq))', 'app')
  const { app, node, logged } = await startApp(topo, { health: { interval: 200, timeout: 500, synchronous_policy: 'availability' } })
  t.teardown(() => app.stop(1000))
  const c = await connect(app, 5000)
  await c.query('INSERT INTO ledger VALUES (1, 1)')
  await topo.kill('s0-replica2', 'SIGKILL')
  t.ok(await waitFor(() => !node('s0-replica2').up, 5000), 'replica2 is down')
  await c.query('INSERT INTO ledger VALUES (1, 2)')
  await topo.kill('s0-primary', 'SIGKILL')
  t.ok(await waitFor(() => node('s0-replica1').role === 'primary', 10_000), 'replica1 is promoted')
  t.equal(await setting(topo, 's0-replica1', 'synchronous_standby_names'), '', 'availability: no synchronous standby required')
  t.ok(logged('replica could not be repointed now; will retry when it answers'))
  const c2 = await connect(app, 5000)
  await c2.query('INSERT INTO ledger VALUES (1, 3)')
  t.same((await c2.query('SELECT seq FROM ledger ORDER BY seq')).rows, [{ seq: 1 }, { seq: 2 }, { seq: 3 }], 'commits return without a standby')
  t.same(app.health.commitsWaiting(), [])

  await topo.startNode('s0-replica2')
  t.ok(await waitFor(() => logged('replica repointed to the new primary after it came back'), 10_000), 'repointed once it answers')
  t.ok(
    await waitFor(async () => (await topo.query('s0-replica2', `SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'`))[0]?.sender_port === topo.node('s0-replica1').port, 10_000),
    'replica2 streams from the new primary',
  )
  await topo.waitForReplay('s0-replica2', { from: 's0-replica1' })
  t.same((await topo.query('s0-replica2', 'SELECT seq FROM ledger ORDER BY seq', 'app')).map((r) => r.seq), [1, 2, 3], 'and has every row')
  await c2.end()
  void c.end().catch(() => {})
})

t.test('a planned switchover under a write load fails no client: they wait at the gate while the primary changes', async (t) => {
  const topo = await startTopology(t, { shards: 1, replicas: 2, users: USERS, databases: ['app'] })
  await topo.query('s0-primary', 'SET ROLE app; CREATE TABLE ledger (writer int, seq int, PRIMARY KEY (writer, seq))', 'app')
  const { app, node, logged } = await startApp(topo, { health: { interval: 200, timeout: 500, synchronous_policy: 'availability' } })
  t.teardown(() => app.stop(1000))
  const load = ledgerLoad(app, 4, 10_000)
  await new Promise((r) => setTimeout(r, 500))
  const ackedBefore = load.acked.length
  const message = await app.failover.promote('s0-replica1')
  t.match(message, /switched shard s0 over to s0-replica1/)
  await new Promise((r) => setTimeout(r, 500))
  await load.stop()
  t.same(load.failures, [], 'no write failed: the clients waited while the primary changed')
  t.ok(load.acked.length > ackedBefore, `writes went on after the switch (${load.acked.length - ackedBefore})`)
  t.equal(node('s0-replica1').role, 'primary')
  t.same(await missingOn(topo, 's0-replica1', load.acked), [], `every acknowledged write (${load.acked.length}) is on the new primary`)
  t.notOk(logged('transactions still running on the primary'), 'every transaction on the old primary ended before it was fenced')
})
