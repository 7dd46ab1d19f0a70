// Client authentication (SCRAM-SHA-256 from a password or a pg_authid verifier, md5, trust) and TLS: what
// psql and node-postgres see, and the server side logging in with SCRAM because the servers demand it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { makeScramVerifier } from '../src/protocol/ScramServer.js'
import { runCommand } from './harness/runCommand.js'
import { selfSignedCert } from './harness/selfSignedCert.js'
import { APP_PASSWORD, APP_USER, startProxy, type ProxyFixture } from './harness/startProxy.js'

function verifierText(password: string): string {
  const v = makeScramVerifier(password)
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`
}

const users = [
  { name: APP_USER, password: APP_PASSWORD },
  { name: 'md5user', password: 'md5-secret' },
  { name: 'veruser', password: 'ver-secret' },
  { name: 'trusty', password: 'trusty-server' },
]

t.test('client authentication methods', async (t) => {
  const fx = await startProxy(t, {
    topology: { users },
    config: {
      users: [
        { name: APP_USER, password: APP_PASSWORD },
        { name: 'md5user', password: 'md5-secret', auth: 'md5' },
        { name: 'veruser', scram_verifier: verifierText('ver-secret'), server_password: 'ver-secret' },
        { name: 'trusty', auth: 'trust', server_password: 'trusty-server' },
      ],
    },
  })
  const psql = (user: string, password: string) =>
    runCommand('psql', ['-X', '-At', `host=127.0.0.1 port=${fx.port} user=${user} dbname=app`, '-c', 'SELECT current_user'], { env: { ...fx.env, PGPASSWORD: password } })

  for (const [user, password] of [
    [APP_USER, APP_PASSWORD],
    ['md5user', 'md5-secret'],
    ['veruser', 'ver-secret'],
    ['trusty', 'anything'],
  ]) {
    const r = await psql(user, password)
    t.equal(r.code, 0, `${user} logs in: ${r.stderr}`)
    t.equal(r.stdout.trim(), user, `${user}: the server session runs as ${user} (the proxy logged in to a SCRAM server)`)
    const c = new pg.Client({ ...fx.pgOptions, user, password })
    await c.connect()
    t.equal((await c.query('SELECT current_user AS u')).rows[0].u, user, `${user} through node-postgres`)
    await c.end()
  }
  for (const [user, password] of [
    [APP_USER, 'wrong'],
    ['md5user', 'wrong'],
    ['veruser', 'wrong'],
  ]) {
    const r = await psql(user, password)
    t.not(r.code, 0)
    t.match(r.stderr, new RegExp(`FATAL:  password authentication failed for user "${user}"`), `${user} with a wrong password`)
    const c = new pg.Client({ ...fx.pgOptions, user, password })
    const err = await c.connect().then(() => null, (e: { code?: string }) => e)
    t.equal(err?.code, '28P01')
    await c.end().catch(() => undefined)
  }
})

/**
 * As `user`, with psql and node-postgres: the server sessions run as that role, and 20 rows of the sharded table
 * `items` reach every shard (so every shard's pool logged in). Returns the node-postgres client, still open.
 */
async function logInAndWriteEveryShard(t: Test, fx: ProxyFixture, user: string, password: string): Promise<pg.Client> {
  const r = await runCommand('psql', ['-X', '-At', `host=127.0.0.1 port=${fx.port} user=${user} dbname=app`, '-c', 'SELECT current_user'], { env: { ...fx.env, PGPASSWORD: password } })
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout.trim(), user, `psql as ${user}: the server session runs as that role`)
  const c = new pg.Client({ ...fx.pgOptions, user, password })
  await c.connect()
  t.teardown(() => c.end())
  for (let id = 1; id <= 20; id++) await c.query('INSERT INTO items (id) VALUES ($1)', [id])
  const perShard = await Promise.all(fx.topo.shards.map(async (s) => Number((await fx.topo.query(s.primary, 'SELECT count(*) AS n FROM items', 'app'))[0].n)))
  t.ok(perShard.every((n) => n > 0), `rows on every shard (${perShard.join(' + ')}): each shard's pool logged in without a password`)
  return c
}

t.test('SCRAM pass-through: a user with only its verifier logs in to every shard with its client\u2019s keys', async (t) => {
  const verifier = verifierText('pass-secret')
  const fx = await startProxy(t, {
    topology: { shards: 2, users: [...users, { name: 'passuser', password: 'pass-secret' }, { name: 'stale', password: 'stale-secret' }] },
    config: {
      users: [
        { name: APP_USER, password: APP_PASSWORD },
        { name: 'passuser', scram_verifier: verifier },
        { name: 'stale', scram_verifier: verifierText('stale-secret') },
      ],
      sharding: { tables: [{ name: 'items', key: 'id', type: 'bigint' }] },
    },
  })
  for (const shard of fx.topo.shards) {
    // The role's verifier on the servers is the one in the config: what ALTER ROLE … PASSWORD '<verifier>' sets.
    await fx.topo.query(shard.primary, `ALTER ROLE passuser PASSWORD '${verifier}'`)
    await fx.topo.query(shard.primary, 'CREATE TABLE items (id bigint PRIMARY KEY); GRANT ALL ON items TO passuser, stale', 'app')
  }
  const c = await logInAndWriteEveryShard(t, fx, 'passuser', 'pass-secret')
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 20, 'a read of every shard')

  const wrong = new pg.Client({ ...fx.pgOptions, user: 'passuser', password: 'wrong' })
  t.equal((await wrong.connect().then(() => null, (e: { code?: string }) => e))?.code, '28P01', 'a wrong password is refused by pgshard')
  await wrong.end().catch(() => undefined)

  // "stale": the servers were given another password since the verifier was copied.
  for (const shard of fx.topo.shards) await fx.topo.query(shard.primary, "ALTER ROLE stale PASSWORD 'changed-secret'")
  const s = new pg.Client({ ...fx.pgOptions, user: 'stale', password: 'stale-secret' })
  const err = await s
    .connect()
    .then(() => s.query('SELECT count(*) FROM items'))
    .then(() => null, (e: { code?: string; message: string; hint?: string }) => e)
  await s.end().catch(() => undefined)
  t.match(err?.message ?? '', /the server's SCRAM verifier for user "stale" is not the one pgshard checked the client with/, 'a verifier the servers no longer hold: said so')
  t.match(err?.hint ?? '', /scram_verifier/)
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 20, 'other clients go on')
})

t.test('auth_query: users not in the config log in with the verifier the servers hold, and pgshard keeps no password', async (t) => {
  const fx = await startProxy(t, {
    topology: { shards: 2, users: [...users, { name: 'dyn', password: 'dyn-secret' }] },
    config: { users: [{ name: APP_USER, password: APP_PASSWORD }], auth_query: {}, sharding: { tables: [{ name: 'items', key: 'id', type: 'bigint' }] } },
  })
  for (const shard of fx.topo.shards) {
    await fx.topo.query(shard.primary, 'CREATE TABLE items (id bigint PRIMARY KEY); GRANT ALL ON items TO dyn', 'app')
    await fx.topo.query(shard.primary, "SET password_encryption = md5; CREATE ROLE oldstyle LOGIN PASSWORD 'old-secret'")
  }
  const sessionsOpened = async () => Number((await fx.topo.query(fx.topo.shards[0].primary, "SELECT sessions AS n FROM pg_stat_database WHERE datname = 'postgres'"))[0].n)
  const opened = await sessionsOpened()
  const c = await logInAndWriteEveryShard(t, fx, 'dyn', 'dyn-secret')

  const refused = async (user: string, password: string, database = 'app') => {
    const x = new pg.Client({ ...fx.pgOptions, user, password, database })
    const err = await x.connect().then(() => null, (e: { code?: string; message: string; hint?: string }) => e)
    await x.end().catch(() => undefined)
    return err
  }
  t.equal((await refused('dyn', 'wrong'))?.code, '28P01', 'a wrong password')
  const unknown = await refused('nobody', 'x')
  t.equal(unknown?.code, '28P01', 'a role the servers do not have: refused like a wrong password')
  t.equal(unknown?.message, 'password authentication failed for user "nobody"')
  t.equal((await refused('dyn', 'dyn-secret', 'pgshard'))?.code, '28P01', 'the admin console takes only the config\u2019s users')
  const md5 = await refused('oldstyle', 'old-secret')
  t.equal(md5?.code, '28000')
  t.match(md5?.message ?? '', /MD5 password for user "oldstyle"/, 'an MD5 password on the servers: said so')
  t.match(md5?.hint ?? '', /password_encryption = scram-sha-256/)
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 20, 'the proxy goes on serving')
  await Promise.all(['ghost1', 'ghost2', 'ghost3', 'ghost4'].map((name) => refused(name, 'x')))
  // Seven names looked up; the resolver may have opened one session of its own meanwhile.
  const lookupSessions = (await sessionsOpened()) - opened
  t.ok(lookupSessions <= 2, `the lookups share one server connection (${lookupSessions} sessions opened for 7 names)`)
})

t.test('TLS', async (t) => {
  const { cert, key } = await selfSignedCert(t)

  t.test('with a certificate: sslmode=require connects over TLS', async (t) => {
    const fx = await startProxy(t, { config: { tls: { cert, key } } })
    const r = await runCommand('psql', ['-X', `host=127.0.0.1 port=${fx.port} user=${APP_USER} dbname=app sslmode=require`, '-c', '\\conninfo', '-c', 'SELECT 1'], { env: fx.env })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /SSL connection \(protocol: TLSv1\.[23]/)
    const c = new pg.Client({ ...fx.pgOptions, ssl: { rejectUnauthorized: false } })
    await c.connect()
    t.equal((await c.query('SELECT 3 AS n')).rows[0].n, 3, 'node-postgres over TLS')
    t.ok((c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted, 'the socket is encrypted')
    await c.end()
    const plain = await runCommand('psql', ['-X', '-At', `host=127.0.0.1 port=${fx.port} user=${APP_USER} dbname=app sslmode=disable`, '-c', 'SELECT 4'], { env: fx.env })
    t.equal(plain.stdout.trim(), '4', 'plain connections still work when TLS is not required')
  })

  t.test('with tls.required: a plain client is refused', async (t) => {
    const fx = await startProxy(t, { config: { tls: { cert, key, required: true } } })
    const r = await runCommand('psql', ['-X', `host=127.0.0.1 port=${fx.port} user=${APP_USER} dbname=app sslmode=disable`, '-c', 'SELECT 1'], { env: fx.env })
    t.not(r.code, 0)
    t.match(r.stderr, /this proxy accepts only TLS connections/)
  })

  t.test('a reload adds a certificate: the next client can use TLS, without a restart', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pgshard-tls-reload-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'pgshard.json')
    const fx = await startProxy(t, { configFile: file })
    const psqlRequire = () => runCommand('psql', ['-X', `host=127.0.0.1 port=${fx.port} user=${APP_USER} dbname=app sslmode=require`, '-c', '\\conninfo'], { env: fx.env })
    t.not((await psqlRequire()).code, 0, 'no certificate yet: sslmode=require is refused')
    await writeFile(file, JSON.stringify({ ...fx.app.config, tls: { cert, key } }))
    await fx.app.reload()
    const r = await psqlRequire()
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /SSL connection \(protocol: TLSv1\.[23]/, 'after the reload the same proxy speaks TLS')
  })

  t.test('without a certificate: sslmode=require is refused cleanly, sslmode=prefer connects in plain', async (t) => {
    const fx = await startProxy(t)
    const req = await runCommand('psql', ['-X', `host=127.0.0.1 port=${fx.port} user=${APP_USER} dbname=app sslmode=require`, '-c', 'SELECT 1'], { env: fx.env })
    t.not(req.code, 0)
    t.match(req.stderr, /server does not support SSL, but SSL was required/)
    const pref = await runCommand('psql', ['-X', `host=127.0.0.1 port=${fx.port} user=${APP_USER} dbname=app sslmode=prefer`, '-c', '\\conninfo'], { env: fx.env })
    t.equal(pref.code, 0, pref.stderr)
    t.notMatch(pref.stdout, /SSL connection/)
  })
})
