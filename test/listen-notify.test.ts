// LISTEN in transaction pooling without pinning: twenty node-postgres clients listen through a pool of two
// server connections, get every notification in order (also while a query of theirs runs), stop at UNLISTEN,
// and keep getting them after a planned switchover moves the primary; postgres.js's sql.listen, whose LISTEN
// comes through the extended protocol, does too.
import pg from 'pg'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { startProxy, type ProxyFixture } from './harness/startProxy.js'

const LISTENERS = 20
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A node-postgres client through the proxy, ended when the test ends. */
async function client(t: Test, fx: ProxyFixture): Promise<pg.Client> {
  const c = new pg.Client(fx.pgOptions)
  c.on('error', () => {})
  await c.connect()
  t.teardown(() => c.end().catch(() => {}))
  return c
}

t.test('LISTEN through the pool: no pinned connection, every notification to every listener', async (t) => {
  const fx = await startProxy(t, { topology: { replicas: 1 }, config: { pool: { size: 2 }, health: { interval: 200, synchronous_policy: 'availability' } } })
  const connect = () => client(t, fx)
  const listeners = await Promise.all(Array.from({ length: LISTENERS }, connect))
  const got = listeners.map(() => [] as string[])
  listeners.forEach((c, i) => c.on('notification', (n) => got[i].push(`${n.channel}:${n.payload}`)))
  for (const c of listeners) t.equal((await c.query('LISTEN jobs')).command, 'LISTEN')
  const other = await connect()
  const otherGot: string[] = []
  other.on('notification', (n) => otherGot.push(`${n.channel}:${n.payload}`))
  await other.query('LISTEN "MixedCase"')

  const lent = () => fx.app.proxy.pools.all().reduce((n, e) => n + e.pool.counts.active, 0)
  t.equal(lent(), 0, 'no server connection is held by the listening clients')
  t.same([...fx.app.proxy.sessions].filter((s) => s.pinnedBy !== null).map((s) => s.pinnedBy), [], 'no client is pinned')

  const notifier = await connect()
  await notifier.query("NOTIFY jobs, 'one'")
  await notifier.query("SELECT pg_notify('jobs', 'two')")
  await notifier.query('BEGIN')
  await notifier.query("NOTIFY jobs, 'three'")
  await notifier.query('COMMIT')
  await notifier.query(`NOTIFY "MixedCase", 'quoted'`)
  const until = async (done: () => boolean, ms = 5000) => {
    const deadline = Date.now() + ms
    while (!done() && Date.now() < deadline) await sleep(20)
  }
  await until(() => got.every((g) => g.length >= 3) && otherGot.length >= 1)
  t.ok(got.every((g) => JSON.stringify(g) === JSON.stringify(['jobs:one', 'jobs:two', 'jobs:three'])), `every listener got the three, in order (${JSON.stringify(got[0])})`)
  t.same(otherGot, ['MixedCase:quoted'], 'a quoted channel name keeps its case; other channels are not delivered')

  // A notification while the listener's own query runs: it comes after the reply, which stays whole.
  const slow = listeners[0].query('SELECT pg_sleep(0.3), 42 AS n')
  await sleep(100)
  await notifier.query("NOTIFY jobs, 'four'")
  t.equal((await slow).rows[0].n, 42, 'the query in flight answers whole')
  await until(() => got[0].includes('jobs:four'))
  t.ok(got[0].includes('jobs:four'), 'and the notification arrives')
  t.equal((await listeners[1].query('SELECT 7 AS n')).rows[0].n, 7, 'listeners run queries through the pool as usual')

  t.equal((await listeners[1].query('UNLISTEN jobs')).command, 'UNLISTEN')
  await listeners[2].end()
  await listeners[3].query('DISCARD ALL')
  await notifier.query("NOTIFY jobs, 'five'")
  await until(() => got[0].includes('jobs:five'))
  await sleep(200)
  t.notOk(got[1].includes('jobs:five'), 'not after UNLISTEN')
  t.notOk(got[3].includes('jobs:five'), 'nor after DISCARD ALL (which includes UNLISTEN *)')
  t.ok(got.filter((_, i) => i > 3 || i === 0).every((g) => g.includes('jobs:five')), 'the others still get them')

  // A planned switchover: the hub follows the primary, and notifications go on.
  const promoted = await fx.app.failover.promote('s0-replica1')
  t.match(promoted, /switched shard s0 over to s0-replica1/)
  let delivered = false
  for (let i = 0; i < 50 && !delivered; i++) {
    await notifier.query(`NOTIFY jobs, 'after-${i}'`)
    await sleep(200)
    delivered = got[0].some((g) => g.startsWith('jobs:after-'))
  }
  t.ok(delivered, 'notifications sent on the new primary reach the listeners')
})

t.test('a listener that stops reading is ended at a bound; the others go on', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 2 } } })
  const connect = () => client(t, fx)
  const stalled = await connect()
  const reader = await connect()
  const notifier = await connect()
  let readerGot = 0
  reader.on('notification', () => readerGot++)
  await stalled.query('LISTEN flood')
  await reader.query('LISTEN flood')
  const socket = (stalled as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream
  socket.pause()
  const sessions = fx.app.proxy.sessions.size
  // 4,000 notifications of about 7,900 bytes (distinct: a transaction delivers identical ones once): 31 MB, past the 16 MiB bound for a client that reads none of it.
  for (let i = 0; i < 40; i++) await notifier.query(`SELECT pg_notify('flood', g || repeat('x', 7890)) FROM generate_series(1, 100) g`)
  const deadline = Date.now() + 10_000
  while (fx.app.proxy.sessions.size === sessions && Date.now() < deadline) await sleep(50)
  t.equal(fx.app.proxy.sessions.size, sessions - 1, 'the stalled listener was ended')
  socket.destroy()
  while (readerGot < 4000 && Date.now() < deadline) await sleep(50)
  t.equal(readerGot, 4000, 'the listener that reads got every notification')
  t.equal((await notifier.query('SELECT 1 AS n')).rows[0].n, 1, 'and the proxy serves on')
})

t.test('LISTEN through the extended protocol (postgres.js sql.listen, node-postgres extended mode): no pinned connection either', async (t) => {
  const fx = await startProxy(t, { config: { pool: { size: 1, checkout_timeout: 2000 } } })
  const got: string[][] = [[], [], []]
  const apps = got.map(() => postgres({ ...fx.pgOptions, username: fx.pgOptions.user, max: 1, onnotice: () => undefined }))
  t.teardown(() => Promise.all(apps.map((sql) => sql.end({ timeout: 1 }))))
  // postgres.js listens on a connection of its own, with LISTEN as Parse/Bind/Describe/Execute/Sync.
  const subscriptions = await Promise.all(apps.map((sql, i) => sql.listen('orders', (payload) => got[i].push(payload))))
  const extended = await client(t, fx)
  const extendedGot: string[] = []
  extended.on('notification', (n) => extendedGot.push(n.payload ?? ''))
  const listen = await extended.query({ text: 'LISTEN orders', queryMode: 'extended' } as pg.QueryConfig)
  t.equal(listen.command, 'LISTEN', 'LISTEN through Parse/Bind/Execute answers LISTEN')
  t.same([...fx.app.proxy.sessions].filter((s) => s.pinnedBy !== null).map((s) => s.pinnedBy), [], 'no client is pinned')
  const lent = () => fx.app.proxy.pools.all().reduce((n, e) => n + e.pool.counts.active, 0)
  t.equal(lent(), 0, 'no server connection is held by a listener')

  // With the pool's only connection pinned by any of the four, this client would time out.
  const notifier = await client(t, fx)
  for (const payload of ['a', 'b', 'c']) await notifier.query(`NOTIFY orders, '${payload}'`)
  const deadline = Date.now() + 5000
  while ((got.some((g) => g.length < 3) || extendedGot.length < 3) && Date.now() < deadline) await sleep(20)
  t.same(got, [['a', 'b', 'c'], ['a', 'b', 'c'], ['a', 'b', 'c']], 'every postgres.js listener got them, in order')
  t.same(extendedGot, ['a', 'b', 'c'], 'and the node-postgres one')

  await subscriptions[0].unlisten()
  t.equal((await extended.query({ text: 'UNLISTEN orders', queryMode: 'extended' } as pg.QueryConfig)).command, 'UNLISTEN')
  await notifier.query("NOTIFY orders, 'd'")
  while (got[1].length < 4 && Date.now() < deadline + 5000) await sleep(20)
  await sleep(200)
  t.same([got[0].length, extendedGot.length, got[1].at(-1), got[2].at(-1)], [3, 3, 'd', 'd'], 'unlisten through the extended protocol stops them; the others go on')
  t.equal((await apps[1]`SELECT 5 AS n`)[0].n, 5, 'listening clients query through the pool as usual')
})
