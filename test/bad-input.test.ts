// Bad bytes, impossible lengths, unknown messages, oversized messages, wrong passwords, unknown users and
// databases, over raw sockets: each gets a Postgres ErrorResponse with the right SQLSTATE and is disconnected,
// and the proxy keeps serving everyone else.
import pg from 'pg'
import t, { type Test } from 'tap'
import { encodeQuery } from '../src/protocol/FrontendMessages.js'
import { encodeStartup } from '../src/protocol/StartupEncoder.js'
import { APP_PASSWORD, APP_USER, startProxy } from './harness/startProxy.js'
import { RawClient, errorFields } from './harness/RawClient.js'

t.test('bad input', async (t) => {
  const fx = await startProxy(t, {
    topology: { users: [{ name: APP_USER, password: APP_PASSWORD }, { name: 'trusty', password: 'trusty-server-pw' }] },
    config: {
      users: [
        { name: APP_USER, password: APP_PASSWORD },
        { name: 'trusty', auth: 'trust', server_password: 'trusty-server-pw' },
      ],
      listen: { max_message_size: 65536 },
    },
  })
  // A client that stays connected through every test and must keep working.
  const bystander = new pg.Client(fx.pgOptions)
  await bystander.connect()
  t.teardown(() => bystander.end())
  const stillServing = async (t: Test, what: string) => {
    const r = await bystander.query('SELECT 1 AS one')
    t.equal(r.rows[0].one, 1, `after ${what}, other clients are served`)
    const fresh = new pg.Client(fx.pgOptions)
    await fresh.connect()
    t.equal((await fresh.query('SELECT 2 AS two')).rows[0].two, 2, `after ${what}, new clients connect`)
    await fresh.end()
  }

  const expectFatal = async (t: Test, c: RawClient, code: string, what: string, message?: RegExp) => {
    const msgs = await c.until('E')
    const err = msgs.find((m) => m.type === 'E')
    t.ok(err, `${what}: an ErrorResponse`)
    const f = errorFields(err?.body ?? Buffer.alloc(0))
    t.equal(f.code, code, `${what}: SQLSTATE ${code} (${f.message})`)
    if (message) t.match(f.message ?? '', message)
    t.ok(await c.closedByServer(), `${what}: disconnected`)
    c.end()
    await stillServing(t, what)
  }

  t.test('garbage instead of a start-up packet (an HTTP request)', async (t) => {
    const c = await RawClient.connect(fx.port)
    c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await expectFatal(t, c, '08P01', 'HTTP garbage', /invalid length of startup packet/)
  })

  t.test('an unsupported protocol version', async (t) => {
    const c = await RawClient.connect(fx.port)
    const pkt = Buffer.alloc(8)
    pkt.writeInt32BE(8, 0)
    pkt.writeInt32BE(2 << 16, 4)
    c.send(pkt)
    await expectFatal(t, c, '08P01', 'protocol 2.0', /unsupported frontend protocol 2\.0/)
  })

  t.test('a start-up packet with a missing terminator', async (t) => {
    const c = await RawClient.connect(fx.port)
    const good = encodeStartup({ user: APP_USER, database: 'app' })
    const bad = Buffer.from(good.subarray(0, good.length - 1))
    bad.writeInt32BE(bad.length, 0)
    c.send(bad)
    await expectFatal(t, c, '08P01', 'unterminated start-up packet')
  })

  t.test('a newer 3.x minor version is negotiated down to 3.0', async (t) => {
    const c = await RawClient.connect(fx.port)
    const pkt = encodeStartup({ user: 'trusty', database: 'app', _pq_: '' })
    pkt.writeInt32BE((3 << 16) | 2, 4)
    c.send(pkt)
    const msgs = await c.until('Z')
    const v = msgs.find((m) => m.type === 'v')
    t.ok(v, 'NegotiateProtocolVersion')
    t.equal(v?.body.readInt32BE(0), 3 << 16, 'offers 3.0')
    t.ok(msgs.some((m) => m.type === 'Z'), 'then logs in')
    c.end()
  })

  t.test('after log-in: an impossible message length', async (t) => {
    const c = await RawClient.login(fx.port, 'trusty')
    c.send(Buffer.from([0x51, 0, 0, 0, 1]))
    await expectFatal(t, c, '08P01', 'length 1', /invalid message length/)
  })

  t.test('after log-in: an unknown message type', async (t) => {
    const c = await RawClient.login(fx.port, 'trusty')
    c.send(Buffer.from([0x7a, 0, 0, 0, 4]))
    await expectFatal(t, c, '08P01', 'message type z', /invalid frontend message type/)
  })

  t.test('after log-in: a message over the size limit', async (t) => {
    const c = await RawClient.login(fx.port, 'trusty')
    c.send(encodeQuery(`SELECT '${'x'.repeat(70_000)}'`))
    await expectFatal(t, c, '08P01', 'a 70 kB query over a 64 kB limit', /over the limit of 65536 bytes/)
  })

  t.test('after log-in: a malformed Bind', async (t) => {
    const c = await RawClient.login(fx.port, 'trusty')
    c.send(Buffer.from([0x42, 0, 0, 0, 8, 0, 0, 0xff, 0xff]))
    const msgs = await c.until('E')
    const f = errorFields(msgs.find((m) => m.type === 'E')?.body ?? Buffer.alloc(0))
    t.equal(f.code, '08P01', `malformed Bind: ${f.message}`)
    c.end()
    await stillServing(t, 'a malformed Bind')
  })

  t.test('a wrong password, an unknown user, an unknown database', async (t) => {
    for (const [opts, code, what] of [
      [{ ...fx.pgOptions, password: 'wrong' }, '28P01', 'wrong password'],
      [{ ...fx.pgOptions, user: 'nobody' }, '28P01', 'unknown user'],
      [{ ...fx.pgOptions, database: 'nodb' }, '3D000', 'unknown database'],
    ] as const) {
      const c = new pg.Client(opts)
      const err = await c.connect().then(
        () => null,
        (e: { code?: string; message: string }) => e,
      )
      t.equal(err?.code, code, `${what}: ${err?.message}`)
      await c.end().catch(() => undefined)
      await stillServing(t, what)
    }
  })

  t.test('a client that vanishes in the middle of a message', async (t) => {
    const c = await RawClient.login(fx.port, 'trusty')
    c.send(encodeQuery('SELECT 1').subarray(0, 7))
    c.end()
    await stillServing(t, 'a half message then a disconnect')
  })
})
