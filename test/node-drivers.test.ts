// node-postgres and postgres.js, unchanged, through the proxy: parameters, named prepared statements,
// transactions, portals read in batches, LISTEN/NOTIFY, COPY both ways, pipelining and large results.
import { pipeline } from 'node:stream/promises'
import { Readable, Writable } from 'node:stream'
import pg from 'pg'
import Cursor from 'pg-cursor'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import postgres from 'postgres'
import t from 'tap'
import { startProxy } from './harness/startProxy.js'

for (const mode of ['session', 'transaction'] as const) {
  t.test(`drivers in ${mode} pooling`, async (t) => {
    // Session pooling gives each client its own server connection: the pool must cover every client here.
    const fx = await startProxy(t, { config: { pool: { mode, size: mode === 'session' ? 8 : 3 } } })
    const setup = new pg.Client(fx.pgOptions)
    await setup.connect()
    await setup.query('CREATE TABLE kv (k int PRIMARY KEY, v text)')
    await setup.end()

    t.test('node-postgres: parameters, named statements, rollback', async (t) => {
      const c = new pg.Client(fx.pgOptions)
      await c.connect()
      t.teardown(() => c.end())
      const r = await c.query('SELECT $1::int + $2::int AS sum, $3::text AS word', [40, 2, 'héllo'])
      t.same(r.rows, [{ sum: 42, word: 'héllo' }])
      for (let i = 0; i < 20; i++) await c.query({ name: 'put', text: 'INSERT INTO kv VALUES ($1, $2)', values: [i, `v${i}`] })
      const got = await c.query({ name: 'get', text: 'SELECT v FROM kv WHERE k = $1', values: [7] })
      t.same(got.rows, [{ v: 'v7' }])
      await c.query('BEGIN')
      await c.query('DELETE FROM kv')
      t.equal((await c.query('SELECT count(*)::int AS n FROM kv')).rows[0].n, 0, 'deleted inside the transaction')
      await c.query('ROLLBACK')
      t.equal((await c.query('SELECT count(*)::int AS n FROM kv')).rows[0].n, 20, 'rollback restored the rows')
      await t.rejects(c.query('SELECT * FROM missing_table'), { code: '42P01' })
      t.equal((await c.query({ name: 'get', text: 'SELECT v FROM kv WHERE k = $1', values: [3] })).rows[0].v, 'v3', 'statements survive an error')
    })

    t.test('node-postgres: a cursor read in batches (named portal, Execute with a row limit)', async (t) => {
      const c = new pg.Client(fx.pgOptions)
      await c.connect()
      t.teardown(() => c.end())
      await c.query('BEGIN')
      const cursor = c.query(new Cursor('SELECT g FROM generate_series(1, 1000) g ORDER BY g'))
      const batches: number[] = []
      let total = 0
      for (;;) {
        const rows: { g: number }[] = await cursor.read(300)
        if (rows.length === 0) break
        batches.push(rows.length)
        total += rows.reduce((a, r) => a + r.g, 0)
      }
      await cursor.close()
      await c.query('COMMIT')
      t.same(batches, [300, 300, 300, 100])
      t.equal(total, 500500)
    })

    t.test('node-postgres: LISTEN/NOTIFY', async (t) => {
      const listener = new pg.Client(fx.pgOptions)
      const notifier = new pg.Client(fx.pgOptions)
      await listener.connect()
      await notifier.connect()
      t.teardown(async () => {
        await listener.end()
        await notifier.end()
      })
      const got = new Promise<{ channel: string; payload?: string }>((resolve) => listener.on('notification', resolve))
      await listener.query('LISTEN events')
      await notifier.query("NOTIFY events, 'hello'")
      const n = await Promise.race([got, new Promise<null>((r) => setTimeout(() => r(null), 5000))])
      t.same(n && { channel: n.channel, payload: n.payload }, { channel: 'events', payload: 'hello' })
    })

    t.test('node-postgres: COPY in and out with pg-copy-streams', async (t) => {
      const c = new pg.Client(fx.pgOptions)
      await c.connect()
      t.teardown(() => c.end())
      await c.query('CREATE TABLE copied (id int, label text)')
      const lines = Array.from({ length: 20_000 }, (_, i) => `${i}\tlabel ${i}\n`)
      await pipeline(Readable.from(lines), c.query(copyFrom('COPY copied FROM STDIN')))
      t.equal((await c.query('SELECT count(*)::int AS n FROM copied')).rows[0].n, 20_000)
      let out = ''
      await pipeline(
        c.query(copyTo('COPY (SELECT * FROM copied ORDER BY id) TO STDOUT')),
        new Writable({
          write(chunk, _enc, cb) {
            out += chunk.toString()
            cb()
          },
        }),
      )
      t.equal(out, lines.join(''))
    })

    t.test('postgres.js: pipelined prepared statements, sql.begin, large results', async (t) => {
      const sql = postgres(fx.url, { max: 4, prepare: true, onnotice: () => {} })
      t.teardown(() => sql.end({ timeout: 5 }))
      const many = await Promise.all(Array.from({ length: 200 }, (_, i) => sql`SELECT ${i}::int AS i, ${'x' + i}::text AS s`))
      t.ok(many.every((r, i) => r[0].i === i && r[0].s === 'x' + i), '200 pipelined prepared queries answer correctly')
      const result = await sql.begin(async (tx) => {
        await tx`INSERT INTO kv VALUES (1000, 'in tx')`
        return tx`SELECT v FROM kv WHERE k = 1000`
      })
      t.equal(result[0].v, 'in tx')
      await t.rejects(
        sql.begin(async (tx) => {
          await tx`INSERT INTO kv VALUES (1001, 'rolled back')`
          throw new Error('abort')
        }),
        /abort/,
      )
      t.equal((await sql`SELECT count(*)::int AS n FROM kv WHERE k = 1001`)[0].n, 0, 'the failed transaction rolled back')
      const big = await sql`SELECT g, repeat('y', 100) AS pad FROM generate_series(1, 100000) g`
      t.equal(big.length, 100_000)
      t.equal(big[99_999].g, 100_000)
    })
  })
}
