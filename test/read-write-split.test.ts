import pg from 'pg'
import t from 'tap'
import { parseConfig } from '../src/config/ConfigLoader.js'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { SessionSettings } from '../src/proxy/SessionSettings.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { startTopology } from './harness/startTopology.js'

// One shard, a primary and two asynchronous replicas, behind one pgshard. Which server ran a statement is read
// from the statement itself (inet_server_port()), so the counts below are the servers' own word.

const topo = await startTopology(t, { shards: 1, replicas: 2, users: [{ name: 'app', password: 'secret' }], databases: ['app'] })
const port = { primary: topo.node('s0-primary').port, r1: topo.node('s0-replica1').port, r2: topo.node('s0-replica2').port }
const asApp = (sql: string) => `SET ROLE app; ${sql}`
await topo.query('s0-primary', asApp(`CREATE TABLE items (id int PRIMARY KEY, v int);
  INSERT INTO items SELECT g, 0 FROM generate_series(1, 10) g;
  CREATE SEQUENCE seq;
  CREATE FUNCTION bump() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1';
  CREATE FUNCTION twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2'`), 'app')
await topo.waitForReplay('s0-replica1')
await topo.waitForReplay('s0-replica2')

const logLines: string[] = []
const app = await ProxyApp.start(
  parseConfig(
    JSON.stringify({
      listen: { port: 0 },
      users: [{ name: 'app', password: 'secret' }],
      databases: [{ name: 'app' }],
      shards: topo.shardsConfig().map((s) => ({ ...s, failover: 'manual' })),
      control: { user: 'postgres', password: topo.superuser.password },
      health: { interval: 200, timeout: 500, failures: 3, successes: 2, max_lag: '2s' },
    }),
  ),
  { log: createLogger({ level: 'info', destination: { write: (s: string) => void logLines.push(s) } }) },
)
t.teardown(() => app.stop(1000))
const node = (name: string) => app.proxy.topology.node(name)!

const connect = async () => {
  const c = new pg.Client({ ...app.address, user: 'app', password: 'secret', database: 'app', connectionTimeoutMillis: 5000 })
  c.on('error', () => {})
  await c.connect()
  return c
}
const client = await connect()
t.teardown(() => client.end().catch(() => {}))
/** The port of the server that ran `sql` (which must return a `port` column). */
const ranOn = async (sql: string, c = client): Promise<number> => (await c.query(sql)).rows[0].port
const countPorts = async (n: number, sql = 'SELECT inet_server_port() AS port') => {
  const seen = new Map<number, number>()
  for (let i = 0; i < n; i++) {
    const p = await ranOn(sql)
    seen.set(p, (seen.get(p) ?? 0) + 1)
  }
  return seen
}

t.test('the function catalog comes from the shard primary at start', async (t) => {
  t.ok(await waitFor(() => logLines.some((l) => l.includes('function catalog loaded')), 5000), 'catalog loaded')
})

t.test('reads spread over the replicas; write-like SELECTs go to the primary', async (t) => {
  const seen = await countPorts(40)
  t.equal(seen.get(port.primary) ?? 0, 0, 'the primary serves no plain read (primary_reads is off)')
  t.equal((seen.get(port.r1) ?? 0) + (seen.get(port.r2) ?? 0), 40)
  t.ok((seen.get(port.r1) ?? 0) >= 10 && (seen.get(port.r2) ?? 0) >= 10, `both replicas serve reads: ${JSON.stringify([...seen])}`)

  t.equal(await ranOn(`SELECT nextval('seq') AS n, inet_server_port() AS port`), port.primary, 'nextval → primary')
  t.equal(await ranOn('SELECT inet_server_port() AS port FROM items WHERE id = 1 FOR UPDATE'), port.primary, 'FOR UPDATE → primary')
  t.equal(await ranOn('SELECT inet_server_port() AS port FROM items WHERE id = 1 FOR SHARE'), port.primary, 'FOR SHARE → primary')
  t.equal(
    await ranOn('WITH w AS (UPDATE items SET v = v + 1 WHERE id = 2 RETURNING id) SELECT inet_server_port() AS port FROM w'),
    port.primary,
    'a writing CTE → primary',
  )
  t.equal(await ranOn('SELECT bump() AS b, inet_server_port() AS port'), port.primary, 'a user-defined volatile function → primary')
  // Only the catalog says twice() is immutable: without it an unknown function counts as a write.
  t.not(await ranOn('SELECT twice(2) AS d, inet_server_port() AS port'), port.primary, 'a user-defined immutable function → a replica')
  t.not(await ranOn('SELECT inet_server_port() AS port FROM items WHERE id = 1'), port.primary, 'a plain read → a replica')
})

t.test('a SERIALIZABLE transaction or session reads from the primary: a hot standby cannot run it', async (t) => {
  const c = await connect()
  t.teardown(() => c.end())
  const read = "SELECT inet_server_port() AS port, current_setting('transaction_isolation') AS iso"
  await c.query('SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE')
  t.same((await c.query(read)).rows[0], { port: port.primary, iso: 'serializable' }, 'the session’s default → primary')
  await c.query('RESET default_transaction_isolation')
  t.not((await c.query(read)).rows[0].port, port.primary, 'after RESET → a replica again')
  await c.query("SELECT set_config('default_transaction_isolation', 'serializable', false)")
  t.equal((await c.query(read)).rows[0].port, port.primary, 'set_config → primary')
  await c.query('BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY')
  t.not((await c.query(read)).rows[0].port, port.primary, 'a READ COMMITTED READ ONLY transaction in that session → a replica')
  await c.query('COMMIT')
  await c.query('RESET ALL')
  await c.query('BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY')
  t.same((await c.query(read)).rows[0], { port: port.primary, iso: 'serializable' }, 'BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY → primary')
  await c.query('COMMIT')
  await c.query('BEGIN READ ONLY')
  t.not((await c.query(read)).rows[0].port, port.primary, 'BEGIN READ ONLY → a replica')
  await c.query('COMMIT')
})

t.test('settings are brought to a standby connection whose last client left SERIALIZABLE as its default', async (t) => {
  // What pgshard sends to give a connection a client's settings runs as one implicit transaction: begun as
  // serializable on a standby, its set_config() would fail and leave the last client's default in place.
  const settings = new SessionSettings(new Map([['search_path', 'public']]))
  const sql = settings.adopt(new Map([['default_transaction_isolation', "SET default_transaction_isolation = 'serializable'"]]))!
  const direct = new pg.Client({ host: '127.0.0.1', port: port.r1, user: 'app', password: 'secret', database: 'app' })
  await direct.connect()
  t.teardown(() => direct.end())
  await direct.query("SET default_transaction_isolation = 'serializable'")
  await direct.query(sql)
  t.same(
    (await direct.query("SELECT current_setting('default_transaction_isolation') AS iso, current_setting('search_path') AS sp")).rows[0],
    { iso: 'read committed', sp: 'public' },
  )
})

t.test('a replica delayed by recovery_min_apply_delay gets no reads while it is over max_lag', async (t) => {
  await topo.query('s0-replica2', `ALTER SYSTEM SET recovery_min_apply_delay = '1h'`)
  await topo.query('s0-replica2', 'SELECT pg_reload_conf()')
  // A commit replica2 receives but may not replay for an hour. Its startup process takes the setting a moment
  // after the reload (later on a busy machine): commits go on until one is held back.
  const commit = () => topo.query('s0-primary', 'UPDATE items SET v = v + 1 WHERE id = 3', 'app')
  await commit()
  let last = Date.now()
  const delayed = await waitFor(async () => {
    if (Date.now() - last > 500) {
      await commit()
      last = Date.now()
    }
    return node('s0-replica2').lagSeconds > 2
  }, 20_000)
  t.ok(delayed, `replica2's replay delay is seen (${node('s0-replica2').lagSeconds.toFixed(1)} s)`)
  t.ok(node('s0-replica2').lagBytes > 0, `and its lag in bytes (${node('s0-replica2').lagBytes})`)
  t.ok(await waitFor(() => node('s0-replica1').lagSeconds === 0, 5_000), 'replica1 is not behind')
  const seen = await countPorts(20)
  t.same([...seen], [[port.r1, 20]], 'every read went to replica1')

  await topo.query('s0-replica2', 'ALTER SYSTEM RESET recovery_min_apply_delay')
  await topo.query('s0-replica2', 'SELECT pg_reload_conf()')
  t.ok(await waitFor(() => node('s0-replica2').lagSeconds === 0 && node('s0-replica2').lagBytes === 0, 10_000), 'caught up again')
  t.ok(((await countPorts(20)).get(port.r2) ?? 0) > 0, 'and it serves reads again')
})

t.test('a replica killed with -9 during a read load: reads keep succeeding once it is detected; it rejoins after restart', async (t) => {
  type Read = { start: number; ok: boolean; port?: number; err?: string }
  const reads: Read[] = []
  let running = true
  const worker = async () => {
    let c: pg.Client | null = null
    while (running) {
      const start = Date.now()
      try {
        c ??= await connect()
        reads.push({ start, ok: true, port: await ranOn('SELECT inet_server_port() AS port', c) })
      } catch (err) {
        reads.push({ start, ok: false, err: String((err as { code?: string }).code ?? (err as Error).message) })
        await c?.end().catch(() => {})
        c = null
      }
    }
    await c?.end().catch(() => {})
  }
  const workers = Array.from({ length: 4 }, worker)
  await new Promise((r) => setTimeout(r, 500))
  const killedAt = Date.now()
  await topo.kill('s0-replica2', 'SIGKILL')
  t.ok(await waitFor(() => !node('s0-replica2').up, 5000), 'replica2 marked down')
  const detectedAt = Date.now()
  await new Promise((r) => setTimeout(r, 1500))
  const afterDetection = reads.filter((r) => r.start > detectedAt)
  const failedBefore = reads.filter((r) => !r.ok && r.start >= killedAt && r.start <= detectedAt)
  t.comment(`detection took ${detectedAt - killedAt} ms; ${failedBefore.length} reads failed before it (${[...new Set(failedBefore.map((r) => r.err))].join(', ')})`)
  t.ok(afterDetection.length > 50, `reads went on after detection (${afterDetection.length})`)
  t.same(afterDetection.filter((r) => !r.ok), [], 'no read failed after detection')
  t.same([...new Set(afterDetection.map((r) => r.port))], [port.r1], 'replica1 served them all')

  await topo.startNode('s0-replica2')
  t.ok(await waitFor(() => node('s0-replica2').up, 10_000), 'replica2 is up again after its restart')
  const rejoinedAt = Date.now()
  await new Promise((r) => setTimeout(r, 1000))
  running = false
  await Promise.all(workers)
  const afterRejoin = reads.filter((r) => r.start > rejoinedAt)
  t.ok(afterRejoin.some((r) => r.port === port.r2), 'replica2 serves reads again')
  t.same(afterRejoin.filter((r) => !r.ok), [], 'no read failed after it rejoined')
})

t.test('failover: manual — a dead primary makes writes fail fast while reads go on; PROMOTE, FENCE and ADMIT', async (t) => {
  // Connected before: a new client's log-in needs the primary today (ProxyServer.reportedParams).
  const c = await connect()
  await topo.kill('s0-primary', 'SIGKILL')
  t.ok(await waitFor(() => !node('s0-primary').up, 5000), 'primary marked down')
  await new Promise((r) => setTimeout(r, 1000))
  t.equal(app.failover.stats.failovers, 0, 'nothing was promoted on its own')
  t.equal(node('s0-primary').role, 'primary')

  const began = Date.now()
  const err = await c.query('UPDATE items SET v = 0 WHERE id = 1').catch((e: unknown) => e as pg.DatabaseError)
  const took = Date.now() - began
  t.match(err, { code: '57P03', message: /primary of shard s0 \(s0-primary\) is down/, hint: /failover is manual/ }, 'a clear error')
  t.ok(took < 500, `the write failed fast (${took} ms)`)
  await c.end().catch(() => {})
  const reads = await countPorts(20)
  t.equal((reads.get(port.r1) ?? 0) + (reads.get(port.r2) ?? 0), 20, 'reads still succeed, on the replicas')

  t.match(await app.failover.admit('s0-primary'), /not fenced: nothing to do/)
  await t.rejects(app.failover.promote('nope'), { code: '42704' })
  const message = await app.failover.promote('s0-replica1')
  t.match(message, /s0-replica1 is the primary of shard s0 \(manual failover in \d+ ms\); s0-primary is fenced/)
  t.equal(node('s0-replica1').role, 'primary')
  t.ok(node('s0-primary').fenced)
  t.equal(app.failover.stats.failovers, 1)
  await t.rejects(app.failover.admit('s0-primary'), { code: '55000', message: /does not answer/ }, 'ADMIT of the dead, fenced primary is refused')
  t.equal(await ranOn(`SELECT inet_server_port() AS port FROM (SELECT nextval('seq')) s`), port.r1, 'writes go to the promoted replica')
  t.ok(
    await waitFor(async () => (await topo.query('s0-replica2', 'SELECT sender_port FROM pg_stat_wal_receiver WHERE status = \'streaming\''))[0]?.sender_port === port.r1, 10_000),
    'replica2 streams from the new primary',
  )
  await t.rejects(app.failover.promote('s0-replica1'), { code: '55000', message: /already the primary/ })

  t.match(app.failover.fence('s0-replica2'), /fenced: it gets no reads until ADMIT/)
  t.same([...(await countPorts(10))], [[port.r1, 10]], 'with replica2 fenced, the primary is the only node left for reads')
  t.match(await app.failover.admit('s0-replica2'), /s0-replica2 admitted as a replica of shard s0/)
  t.ok(((await countPorts(10)).get(port.r2) ?? 0) > 0, 'replica2 serves reads again')
  t.equal(app.failover.stats.fencings, 2)
  t.ok(logLines.some((l) => l.includes('manual failover: promoting')), 'the steps are logged')
})
