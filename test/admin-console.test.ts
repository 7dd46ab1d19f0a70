// The admin console through the clients operators use: psql (simple protocol) runs every command, node-postgres
// (extended protocol for named queries) reads the same rows; a non-admin is refused; errors never close it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import type { Config } from '../src/config/ConfigSchema.js'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { runCommand } from './harness/runCommand.js'
import { ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER, proxyConfig } from './harness/startProxy.js'
import { startTopology } from './harness/startTopology.js'

const topo = await startTopology(t, { shards: 2, replicas: 1, users: [{ name: APP_USER, password: APP_PASSWORD }], databases: ['app'] })
for (const s of topo.shards) await topo.query(s.primary, `CREATE TABLE accounts (id bigint PRIMARY KEY, owner text); ALTER TABLE accounts OWNER TO ${APP_USER}`, 'app')
const dir = await mkdtemp(join(tmpdir(), 'pgshard-admin-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const file = join(dir, 'pgshard.json')
const base = proxyConfig(topo, {
  map_version: 'admin-test-1',
  sharding: { tables: [{ name: 'accounts', key: 'id', type: 'bigint' }] },
  health: { interval: 200, timeout: 1000 },
  pool: { size: 4 },
})
const writeConfig = (c: Config | Record<string, unknown>) => writeFile(file, JSON.stringify(c))
await writeConfig(base)
const app = await ProxyApp.start(base, { configFile: file, log: createLogger({ level: 'warn' }) })
t.teardown(() => app.stop(500))
const port = app.address.port

const adminEnv = { ...process.env, PGPASSWORD: ADMIN_PASSWORD, PGCONNECT_TIMEOUT: '10' }
/** One psql run against the console: rows as arrays of fields (unaligned, tab-separated, with the header first). */
const psql = async (sql: string) => {
  const r = await runCommand('psql', ['-X', '-A', '-F', '\t', '-P', 'footer=off', `host=127.0.0.1 port=${port} user=${ADMIN_USER} dbname=pgshard`, '-c', sql], { env: adminEnv })
  return { ...r, rows: r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')) }
}
const client = async (user = ADMIN_USER, password = ADMIN_PASSWORD, database = 'pgshard') => {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password, database, connectionTimeoutMillis: 10_000 })
  c.on('error', () => {})
  await c.connect()
  return c
}
const errorOf = async (p: Promise<unknown>) => {
  try {
    await p
    return null
  } catch (err) {
    return err as { code?: string; message: string; hint?: string }
  }
}

t.test('psql runs every SHOW command and gets rows with PgBouncer\u2019s column names', async (t) => {
  const appClient = await client(APP_USER, APP_PASSWORD, 'app')
  t.teardown(() => appClient.end())
  await appClient.query('INSERT INTO accounts (id, owner) VALUES ($1, $2)', [1, 'a'])
  await appClient.query('SELECT * FROM accounts WHERE id = 1')

  const help = await psql('show help;')
  t.equal(help.code, 0, help.stderr)
  t.same(help.rows[0], ['command', 'description'])
  for (const usage of ['SHOW POOLS', 'SHOW ROUTE <sql>', 'RELOAD', 'PAUSE [db]', 'KILL <client pid>', 'PROMOTE <node>', 'FENCE <node>', 'ADMIT <node>'])
    t.ok(help.rows.some((r) => r[0] === usage), `SHOW HELP lists ${usage}`)

  const pools = await psql('SHOW POOLS')
  t.equal(pools.code, 0, pools.stderr)
  t.same(pools.rows[0].slice(0, 16), ['database', 'user', 'cl_active', 'cl_waiting', 'cl_active_cancel_req', 'cl_waiting_cancel_req', 'sv_active', 'sv_active_cancel', 'sv_being_canceled', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login', 'maxwait', 'maxwait_us', 'pool_mode'])
  const appPools = pools.rows.slice(1).filter((r) => r[0] === 'app' && r[1] === APP_USER)
  t.ok(appPools.length >= 1, 'the app pools are listed')
  const col = (rows: string[][], name: string) => rows[0].indexOf(name)
  t.ok(appPools.some((r) => Number(r[col(pools.rows, 'sv_idle')]) >= 1), 'an idle server connection after the queries')
  t.ok(appPools.every((r) => r[col(pools.rows, 'pool_mode')] === 'transaction'))

  const servers = await psql('SHOW SERVERS')
  t.same(servers.rows[0].slice(0, 5), ['type', 'user', 'database', 'replication', 'state'])
  t.ok(servers.rows.slice(1).every((r) => r[0] === 'S' && Number(r[col(servers.rows, 'remote_pid')]) > 0), 'server rows carry the backend pid')

  const clients = await psql('SHOW CLIENTS')
  t.same(clients.rows[0].slice(0, 5), ['type', 'user', 'database', 'replication', 'state'])
  const mine = clients.rows.slice(1).filter((r) => r[1] === APP_USER)
  t.equal(mine.length, 1, 'the one app client (console clients are not listed)')
  t.equal(mine[0][col(clients.rows, 'state')], 'idle')
  t.ok(Number(mine[0][col(clients.rows, 'queries')]) >= 1)

  const stats = await psql('SHOW STATS')
  t.same(stats.rows[0].slice(0, 4), ['database', 'total_server_assignment_count', 'total_xact_count', 'total_query_count'])
  const appStats = stats.rows.find((r) => r[0] === 'app')!
  t.ok(Number(appStats[col(stats.rows, 'total_query_count')]) >= 1)
  t.ok(Number(appStats[col(stats.rows, 'total_received')]) > 0)

  const shards = await psql('SHOW SHARDS')
  t.same(shards.rows[0], ['name', 'index', 'primary', 'replicas', 'keyspace_percent', 'failover', 'default'])
  t.same(shards.rows.slice(1).map((r) => [r[0], r[2], r[3]]), [['s0', 's0-primary', 's0-replica1'], ['s1', 's1-primary', 's1-replica1']])
  const total = shards.rows.slice(1).reduce((a, r) => a + Number(r[4]), 0)
  t.ok(Math.abs(total - 100) < 0.01, `keyspace shares add up to 100% (${total})`)

  const nodes = await psql('SHOW NODES')
  t.same(nodes.rows[0].slice(0, 7), ['name', 'shard', 'role', 'state', 'lag_bytes', 'lag_seconds', 'replay_lsn'])
  t.same(nodes.rows.slice(1).map((r) => r.slice(0, 4)), [
    ['s0-primary', 's0', 'primary', 'up'],
    ['s0-replica1', 's0', 'replica', 'up'],
    ['s1-primary', 's1', 'primary', 'up'],
    ['s1-replica1', 's1', 'replica', 'up'],
  ])

  const config = await psql('SHOW CONFIG')
  t.same(config.rows[0], ['key', 'value', 'default', 'changeable'])
  const kv = new Map(config.rows.slice(1).map((r) => [r[0], r]))
  t.equal(kv.get('pool.size')?.[1], '4')
  t.equal(kv.get('pool.size')?.[2], '20', 'the schema default is shown')
  t.equal(kv.get('listen.port')?.[3], 'no', 'listen.port needs a restart')
  t.equal(kv.get('users[0].password')?.[1], '********')
  t.notOk(config.stdout.includes(APP_PASSWORD) || config.stdout.includes(ADMIN_PASSWORD) || config.stdout.includes(topo.superuser.password), 'no secret is shown')

  const version = await psql('SHOW VERSION')
  t.match(version.rows[1][0], /^pgshard \d+\.\d+\.\d+/)

  const route = await psql('SHOW ROUTE SELECT owner FROM accounts WHERE id = 42')
  t.equal(route.code, 0, route.stderr)
  t.match(route.rows[1][0], /^shard s[01] \(replica\)$/)
  const write = await psql("SHOW ROUTE UPDATE accounts SET owner = 'x' WHERE id = 42")
  t.match(write.rows[1][0], /^shard s[01] \(primary\)$/)
  t.equal(write.rows[1][0].split(' ')[1], route.rows[1][0].split(' ')[1], 'the same key goes to the same shard')
})

t.test('node-postgres reads the console with the extended protocol (named statements)', async (t) => {
  const c = await client()
  t.teardown(() => c.end())
  const r = await c.query({ name: 'nodes', text: 'SHOW NODES' })
  t.equal(r.rows.length, 4)
  t.equal(r.fields[0].name, 'name')
  t.equal(r.fields[4].dataTypeID, 20, 'lag_bytes is an int8')
  const again = await c.query({ name: 'nodes', text: 'SHOW NODES' })
  t.equal(again.rows.length, 4, 'the prepared statement runs again')
  const simple = await c.query('SHOW VERSION;')
  t.match(simple.rows[0].version, /^pgshard /)
})

t.test('errors answer with a SQLSTATE and the console goes on', async (t) => {
  const c = await client()
  t.teardown(() => c.end())
  const unknown = await errorOf(c.query('SHOW PONIES'))
  t.equal(unknown?.code, '42601')
  t.match(unknown?.hint, /SHOW POOLS.*RELOAD.*KILL <client pid>/)
  t.equal((await errorOf(c.query('RELOAD now')))?.code, '42601', 'RELOAD takes no argument')
  t.equal((await errorOf(c.query('KILL')))?.code, '42601', 'KILL needs a pid')
  t.equal((await errorOf(c.query('KILL 12345')))?.code, '42704', 'no such client')
  t.equal((await errorOf(c.query({ name: 'bad', text: 'SHOW NOTHING' })))?.code, '42601', 'the extended protocol gets the same error')
  t.equal((await errorOf(c.query('PAUSE nosuchdb')))?.code, '3D000')
  t.equal((await errorOf(c.query('PROMOTE nosuchnode')))?.code, '42704')
  const r = await c.query('show version')
  t.equal(r.rows.length, 1, 'still serving after the errors')
})

t.test('a non-admin user is refused with 42501; an unknown user with 28P01', async (t) => {
  const denied = await errorOf(client(APP_USER, APP_PASSWORD))
  t.equal(denied?.code, '42501')
  t.match(denied?.message, /may not use the admin console/)
  const psqlDenied = await runCommand('psql', ['-X', '-c', 'SHOW POOLS', `host=127.0.0.1 port=${port} user=${APP_USER} dbname=pgshard`], { env: { ...process.env, PGPASSWORD: APP_PASSWORD } })
  t.not(psqlDenied.code, 0)
  t.match(psqlDenied.stderr, /may not use the admin console/)
})

t.test('KILL disconnects the client with the pid SHOW CLIENTS shows', async (t) => {
  const victim = await client(APP_USER, APP_PASSWORD, 'app')
  const lost = new Promise<{ code?: string }>((resolve) => victim.on('error', (e) => resolve(e as { code?: string })))
  await victim.query('SELECT 1')
  const c = await client()
  t.teardown(() => c.end())
  const clients = await c.query('SHOW CLIENTS')
  t.equal(clients.rows.length, 1)
  const pid = clients.rows[0].pid as string
  t.equal(clients.rows[0].id, pid, 'id is the pid too')
  const r = await c.query(`KILL ${pid}`)
  t.equal(r.command, 'KILL')
  t.equal((await lost).code, '57P01', 'the client learns why')
  await t.resolves(async () => {
    for (let i = 0; i < 100 && (await c.query('SHOW CLIENTS')).rows.length > 0; i++) await new Promise((r) => setTimeout(r, 20))
  })
  t.equal((await c.query('SHOW CLIENTS')).rows.length, 0)
})

t.test('PAUSE holds new transactions until RESUME; nothing fails', async (t) => {
  const c = await client()
  const user = await client(APP_USER, APP_PASSWORD, 'app')
  t.teardown(async () => {
    await c.end()
    await user.end()
  })
  await user.query('SELECT * FROM accounts WHERE id = 1')
  await c.query('PAUSE app')
  const pools = await c.query('SHOW POOLS')
  t.ok(pools.rows.filter((r) => r.database === 'app').every((r) => r.paused === 't' || r.paused === true), 'every app pool is paused')
  let answered = false
  const held = user.query('SELECT * FROM accounts WHERE id = 1').then((r) => {
    answered = true
    return r
  })
  await new Promise((r) => setTimeout(r, 300))
  t.notOk(answered, 'the query waits while paused')
  const waiting = await c.query('SHOW CLIENTS')
  t.equal(waiting.rows[0].state, 'waiting')
  const resumed = await c.query('RESUME app')
  t.equal(resumed.command, 'RESUME')
  t.equal((await held).rows.length, 1, 'the held query completes after RESUME')
})

t.test('RELOAD applies a valid file and answers a broken one with F0000, changing nothing', async (t) => {
  const c = await client()
  t.teardown(() => c.end())
  await writeConfig({ ...base, map_version: 'admin-test-2', pool: { ...base.pool, size: 6 } })
  const ok = await c.query('RELOAD')
  t.equal(ok.command, 'RELOAD')
  t.equal(app.config.map_version, 'admin-test-2')
  t.equal(app.config.pool.size, 6)
  await writeFile(file, JSON.stringify({ ...base, pool: { size: 'many' } }))
  const bad = await errorOf(c.query('RELOAD'))
  t.equal(bad?.code, 'F0000')
  t.match(bad?.message, /pool\.size/)
  t.equal(app.config.map_version, 'admin-test-2', 'the running config is unchanged')
  await writeConfig(base)
})

t.test('FENCE and ADMIT go through the failover manager', async (t) => {
  const c = await client()
  t.teardown(() => c.end())
  const fenced = await c.query('FENCE s1-replica1')
  t.equal(fenced.command, 'FENCE')
  const row = (await c.query('SHOW NODES')).rows.find((r) => r.name === 's1-replica1')
  t.equal(row.state, 'fenced')
  await c.query('ADMIT s1-replica1')
  const after = (await c.query('SHOW NODES')).rows.find((r) => r.name === 's1-replica1')
  t.not(after.state, 'fenced')
})
