// A pool's life against a real server: min idle connections, idle timeout, max lifetime, connect timeout, the
// checkout timeout, and (session pooling) a connection reset before the next client gets it.
import net from 'node:net'
import pg from 'pg'
import t from 'tap'
import { Pool, type PoolOptions } from '../src/pool/Pool.js'
import { PgError } from '../src/protocol/PgError.js'
import { loginToServer } from '../src/protocol/ServerLogin.js'
import { APP_PASSWORD, APP_USER, startProxy } from './harness/startProxy.js'
import { startTopology } from './harness/startTopology.js'

const options = (o: Partial<PoolOptions>): PoolOptions => ({
  size: 4,
  crossShardReserve: 0,
  minIdle: 0,
  maxQueue: 100,
  checkoutTimeout: 2000,
  idleTimeout: 0,
  maxLifetime: 0,
  preparedCapacity: 100,
  ...o,
})

t.test('pool settings against a real server', async (t) => {
  const topo = await startTopology(t, { shards: 1, replicas: 0, users: [{ name: APP_USER, password: APP_PASSWORD }], databases: ['app'] })
  const node = topo.shards[0].primary
  const connector = () => loginToServer({ host: node.host, port: node.port }, { user: APP_USER, password: APP_PASSWORD, database: 'app', tls: 'disable', timeoutMs: 2000 })
  const settle = () => new Promise((r) => setTimeout(r, 300))

  t.test('min_idle connections are opened and kept', async (t) => {
    const pool = new Pool('p', 'n', options({ minIdle: 2, idleTimeout: 50 }), connector)
    t.teardown(() => pool.close())
    pool.maintain()
    await settle()
    t.equal(pool.counts.idle, 2, 'two idle connections opened ahead of demand')
    await new Promise((r) => setTimeout(r, 100))
    pool.maintain()
    t.equal(pool.counts.idle, 2, 'idle timeout never goes below min_idle')
  })

  t.test('idle timeout and max lifetime close connections', async (t) => {
    const pool = new Pool('p', 'n', options({ idleTimeout: 100 }), connector)
    t.teardown(() => pool.close())
    const [a, b] = await Promise.all([pool.acquire(), pool.acquire()])
    pool.release(a)
    pool.release(b)
    t.equal(pool.counts.idle, 2)
    await new Promise((r) => setTimeout(r, 150))
    pool.maintain()
    t.equal(pool.counts.idle, 0, 'connections idle past idle_timeout are closed')

    const old = new Pool('p2', 'n', options({ maxLifetime: 100 }), connector)
    t.teardown(() => old.close())
    const c = await old.acquire()
    await new Promise((r) => setTimeout(r, 150))
    old.release(c)
    t.equal(old.counts.idle, 0, 'a connection past max_lifetime is closed when released')
    t.ok(c.closed)
  })

  t.test('checkout timeout: a clear error when no connection frees up', async (t) => {
    const pool = new Pool('p', 'n', options({ size: 1, checkoutTimeout: 150 }), connector)
    t.teardown(() => pool.close())
    const held = await pool.acquire()
    const started = Date.now()
    const err = await pool.acquire().then(() => null, (e: unknown) => e)
    t.ok(err instanceof PgError && err.code === '53300' && /pool timeout/.test(err.message), `53300 pool timeout (${(err as Error).message})`)
    t.ok(Date.now() - started >= 140, 'after the checkout timeout')
    pool.release(held)
    const again = await pool.acquire()
    t.equal(again, held, 'the released connection is handed out again')
    pool.release(again)
  })

  t.test('a caller holding another pool\u2019s connection goes first, and may use the cross-shard reserve', async (t) => {
    // Two transactions across shards, each holding the only connection of one pool and wanting the other's.
    const pools = [0, 1].map((i) => new Pool(`s${i}`, `n${i}`, options({ size: 1, crossShardReserve: 1, checkoutTimeout: 1000 }), connector))
    t.teardown(() => pools.forEach((p) => p.close()))
    const [x0, y1] = await Promise.all([pools[0].acquire(), pools[1].acquire()])
    const [x1, y0] = await Promise.all([pools[1].acquire(undefined, true), pools[0].acquire(undefined, true)])
    t.same(pools.map((p) => p.counts.total), [2, 2], 'each got a connection beyond the size instead of waiting for the other')
    for (const [pool, conn] of [[pools[0], x0], [pools[1], x1], [pools[1], y1], [pools[0], y0]] as const) pool.release(conn)
    t.same(pools.map((p) => p.counts.total), [1, 1], 'back to the size once they are given back')

    const without = new Pool('none', 'n', options({ size: 1, checkoutTimeout: 200 }), connector)
    t.teardown(() => without.close())
    const only = await without.acquire()
    const err = await without.acquire(undefined, true).then(() => null, (e: unknown) => e)
    t.ok(err instanceof PgError && err.code === '53300', 'with no reserve, the same wait ends at the checkout timeout')

    // A caller holding nothing, queued first, waits behind one that holds another pool's connection.
    const order: string[] = []
    const plain = without.acquire().then((c) => (order.push('plain'), c))
    const holder = without.acquire(undefined, true).then((c) => (order.push('holder'), c))
    without.release(only)
    without.release(await holder)
    without.release(await plain)
    t.same(order, ['holder', 'plain'], 'the freed connection went to the caller holding another')
  })

  t.test('connect timeout: a server that accepts and never answers', async (t) => {
    const silent = net.createServer(() => undefined)
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()))
    t.teardown(() => silent.close())
    const port = (silent.address() as net.AddressInfo).port
    const pool = new Pool('p', 'n', options({ checkoutTimeout: 5000 }), () =>
      loginToServer({ host: '127.0.0.1', port }, { user: APP_USER, password: APP_PASSWORD, database: 'app', tls: 'disable', timeoutMs: 200 }),
    )
    t.teardown(() => pool.close())
    const started = Date.now()
    const err = await pool.acquire().then(() => null, (e: unknown) => e)
    t.ok(err instanceof PgError && /timeout after 200 ms/.test(err.message), `the waiting client gets the connect error (${(err as Error).message})`)
    t.ok(Date.now() - started < 2000, 'at the connect timeout, not the checkout timeout')
  })
})

t.test('session pooling resets a connection before the next client', async (t) => {
  const fx = await startProxy(t, { config: { pool: { mode: 'session', size: 1 } } })
  const a = new pg.Client(fx.pgOptions)
  await a.connect()
  const pid = (await a.query('SELECT pg_backend_pid() AS p')).rows[0].p
  await a.query("SET search_path = leftover, public")
  await a.query('PREPARE leftover_stmt AS SELECT 1')
  await a.query('CREATE TEMP TABLE leftover_tmp (x int)')
  await a.end()
  await new Promise((r) => setTimeout(r, 200))
  const b = new pg.Client(fx.pgOptions)
  await b.connect()
  t.teardown(() => b.end())
  const r = await b.query(
    "SELECT pg_backend_pid() AS p, current_setting('search_path') AS sp, (SELECT count(*)::int FROM pg_prepared_statements) AS prepared, (SELECT count(*)::int FROM pg_class WHERE relname = 'leftover_tmp') AS tmp",
  )
  t.equal(r.rows[0].p, pid, 'the same server connection')
  t.same({ sp: r.rows[0].sp, prepared: r.rows[0].prepared, tmp: r.rows[0].tmp }, { sp: '"$user", public', prepared: 0, tmp: 0 }, 'DISCARD ALL left nothing of the first client')
})
