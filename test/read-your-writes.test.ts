// Read-your-writes against a replica that applies WAL 1.5 s late: with it on, 20 clients that each write a row
// then read it back never see an old value; with it off, the same loop reads stale rows (so the test can fail).
import pg from 'pg'
import t, { type Test } from 'tap'
import { APP_PASSWORD, APP_USER, startProxy } from './harness/startProxy.js'

async function staleReads(t: Test, readYourWrites: boolean): Promise<{ stale: number; reads: number }> {
  const fx = await startProxy(t, {
    topology: { shards: 1, replicas: 1, settings: { recovery_min_apply_delay: '1500ms' } },
    config: {
      routing: { read_your_writes: readYourWrites },
      health: { interval: '200ms', timeout: '1s' },
      pool: { size: 30 },
    },
  })
  const primary = new pg.Client({ host: '127.0.0.1', port: fx.topo.shards[0].primary.port, user: APP_USER, password: APP_PASSWORD, database: 'app' })
  await primary.connect()
  await primary.query('CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL)')
  await primary.query('INSERT INTO counters SELECT g, 0 FROM generate_series(0, 19) g')
  await primary.end()
  await fx.topo.waitForReplay(fx.topo.shards[0].replicas[0], { timeoutMs: 15_000 })
  let stale = 0
  let reads = 0
  await Promise.all(
    Array.from({ length: 20 }, async (_, id) => {
      const c = new pg.Client(fx.pgOptions)
      await c.connect()
      for (let i = 1; i <= 8; i++) {
        const w = await c.query('UPDATE counters SET v = v + 1 WHERE id = $1 RETURNING v', [id])
        const r = await c.query('SELECT v FROM counters WHERE id = $1', [id])
        reads++
        if (r.rows[0].v !== w.rows[0].v) stale++
      }
      await c.end()
    }),
  )
  const replica = fx.app.proxy.topology.node('s0-replica1')!
  t.ok(replica, 'the replica is known')
  return { stale, reads }
}

t.test('read-your-writes on: no stale read', async (t) => {
  const { stale, reads } = await staleReads(t, true)
  t.equal(reads, 160)
  t.equal(stale, 0, `${stale} of ${reads} reads were stale`)
})

t.test('read-your-writes off: the same loop reads stale rows from the late replica', async (t) => {
  const { stale, reads } = await staleReads(t, false)
  t.ok(stale > 0, `${stale} of ${reads} reads were stale (the check above can fail)`)
})

t.test('read-your-writes on: a read of every shard after a write sees it too (no shard read on a lagging replica)', async (t) => {
  const fx = await startProxy(t, {
    topology: { shards: 2, replicas: 1, settings: { recovery_min_apply_delay: '1500ms' } },
    config: {
      sharding: { tables: [{ name: 'counters', key: 'id', type: 'integer' }] },
      routing: { read_your_writes: true },
      health: { interval: '200ms', timeout: '1s' },
    },
  })
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  t.teardown(() => c.end())
  await c.query('CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL)')
  await c.query('INSERT INTO counters (id, v) VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0)')
  await Promise.all(fx.topo.shards.map((s) => fx.topo.waitForReplay(s.replicas[0]!, { timeoutMs: 15_000 })))
  const sums: number[] = []
  for (let i = 1; i <= 4; i++) {
    await c.query('UPDATE counters SET v = v + 1 WHERE id = $1', [i % 2])
    sums.push(Number((await c.query('SELECT sum(v) AS total FROM counters')).rows[0].total))
  }
  t.same(sums, [1, 2, 3, 4], 'each merged sum counts every update before it')
})
