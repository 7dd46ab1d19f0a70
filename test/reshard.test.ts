// RESHARD in the admin console: a shard added to the map, then removed again, with the rows moved to the
// shards that own them now while clients keep reading and writing through pgshard. Checked on the servers
// themselves: every row exactly once, on its owner, with the same values; triggers and foreign keys untouched;
// nothing left prepared. A move that fails halfway (a duplicate key on a destination) changes nothing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import type { Config } from '../src/config/ConfigSchema.js'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { encodeBind, encodeExecute, encodeParse, SYNC } from '../src/protocol/FrontendMessages.js'
import { RawClient } from './harness/RawClient.js'
import { ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER, proxyConfig } from './harness/startProxy.js'
import { startTopology } from './harness/startTopology.js'

const ACCOUNTS = 400
const ORDERS_PER_ACCOUNT = 3

const RAW_USER = 'trusty'
const topo = await startTopology(t, { shards: 3, replicas: 1, users: [{ name: APP_USER, password: APP_PASSWORD }, { name: RAW_USER, password: 'unused' }], databases: ['app'] })
const SCHEMA = `
  CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL DEFAULT 0, tags text[],
    opened timestamptz, doubled bigint GENERATED ALWAYS AS (id * 2) STORED);
  CREATE TABLE orders (seq bigint GENERATED ALWAYS AS IDENTITY, account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    n integer NOT NULL, note text, payload jsonb, PRIMARY KEY (account_id, n));
  CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
  CREATE TABLE audit (at timestamptz DEFAULT now());
  CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO audit DEFAULT VALUES; RETURN NULL; END$$;
  CREATE TRIGGER accounts_audit AFTER INSERT OR DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION audit_row();
  GRANT ALL ON ALL TABLES IN SCHEMA public TO ${APP_USER}, ${RAW_USER};`
for (const s of topo.shards) await topo.query(s.primary, SCHEMA, 'app')

const dir = await mkdtemp(join(tmpdir(), 'pgshard-reshard-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const file = join(dir, 'pgshard.json')
const configWith = (shards: number, extra: Record<string, unknown> = {}): Config =>
  proxyConfig(topo, {
    shards: topo.shardsConfig().slice(0, shards),
    users: [
      { name: APP_USER, password: APP_PASSWORD },
      { name: ADMIN_USER, password: ADMIN_PASSWORD, admin: true },
      { name: RAW_USER, auth: 'trust', password: 'unused' },
    ],
    sharding: { tables: [{ name: 'accounts', key: 'id', type: 'bigint' }, { name: 'orders', key: 'account_id', type: 'bigint' }], reference_tables: ['countries'] },
    pool: { size: 4, checkout_timeout: 30_000 },
    health: { interval: 200 },
    ...extra,
  })
const twoShards = configWith(2)
await writeFile(file, JSON.stringify(twoShards))
const app = await ProxyApp.start(twoShards, { configFile: file, log: createLogger({ level: 'warn' }) })
t.teardown(() => app.stop(500))
const port = app.address.port

const connect = async (user: string, password: string, database: string) => {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password, database, connectionTimeoutMillis: 10_000 })
  c.on('error', () => {})
  await c.connect()
  return c
}
const appClient = await connect(APP_USER, APP_PASSWORD, 'app')
t.teardown(() => appClient.end())
for (let id = 1; id <= ACCOUNTS; id++) {
  await appClient.query('INSERT INTO accounts (id, owner, tags, opened) VALUES ($1, $2, $3, $4)', [
    id,
    id % 7 === 0 ? `o'neil, "q" (${id}) \u00fc\\` : `owner ${id}`,
    id % 5 === 0 ? null : ['a,b', `t${id}`, 'NULL'],
    id % 3 === 0 ? null : new Date(Date.UTC(2026, 0, 1) + id * 3_600_000),
  ])
  for (let n = 0; n < ORDERS_PER_ACCOUNT; n++) {
    await appClient.query('INSERT INTO orders (account_id, n, note, payload) VALUES ($1, $2, $3, $4)', [id, n, n === 0 ? null : `order ${n}`, { n, id, nested: [1, 'x'] }])
  }
}

const COUNTRIES = [['de', 'Germany'], ['fr', 'France'], ['jp', 'Japan'], ['pe', 'Per\u00fa']]
for (const [code, name] of COUNTRIES) await appClient.query('INSERT INTO countries (code, name) VALUES ($1, $2)', [code, name])
const countriesOn = async (shard: number) => (await topo.query(topo.shards[shard].primary, 'SELECT code, name FROM countries ORDER BY code', 'app')).map((r) => [r.code, r.name])

const ROW_SQL = {
  accounts: "SELECT id, to_jsonb(a) AS row FROM accounts a ORDER BY id",
  orders: "SELECT account_id AS id, to_jsonb(o) AS row FROM orders o ORDER BY account_id, n",
}
/** Every row of a table on every shard's primary: where it is and what it holds. */
const rowsOnServers = async (table: keyof typeof ROW_SQL) => {
  const out: { shard: string; id: string; row: string }[] = []
  for (const [i, s] of topo.shards.entries()) {
    for (const r of await topo.query(s.primary, ROW_SQL[table], 'app')) out.push({ shard: `s${i}`, id: String(r.id), row: JSON.stringify(r.row) })
  }
  return out
}
const contents = (rows: { row: string }[]) => rows.map((r) => r.row).sort()
const misplaced = (rows: { shard: string; id: string }[], config: Config) => {
  const map = new ShardMap(config)
  return rows.filter((r) => map.shardName(map.ring.shardFor(canonicalKey('bigint', r.id, 0, 0))) !== r.shard)
}
const auditCounts = async () => Promise.all(topo.shards.map(async (s) => Number((await topo.query(s.primary, 'SELECT count(*) AS n FROM audit', 'app'))[0].n)))
/** A metric's values by its labels' JSON, as Prometheus would scrape them now. */
const metric = async (name: string) => {
  const m = await app.registry.getSingleMetric(name)?.get()
  return new Map((m?.values ?? []).map((v) => [JSON.stringify(v.labels), v.value]))
}
const preparedLeft = async () => (await Promise.all(topo.shards.map((s) => topo.query(s.primary, 'SELECT gid FROM pg_prepared_xacts')))).flat()

const admin = await connect(ADMIN_USER, ADMIN_PASSWORD, 'pgshard')
t.teardown(() => admin.end())
const notices: string[] = []
admin.on('notice', (n) => notices.push(n.message ?? ''))

/** Keyed reads and writes through pgshard while `during` runs; every statement must answer. */
async function underLoad<T>(during: () => Promise<T>): Promise<{ result: T; updates: Map<number, number>; failures: string[] }> {
  const updates = new Map<number, number>()
  const failures: string[] = []
  let stop = false
  const worker = async (w: number) => {
    const c = await connect(APP_USER, APP_PASSWORD, 'app')
    for (let i = 0; i < 5000 && !stop; i++) {
      const id = ((w * 7919 + i * 104729) % ACCOUNTS) + 1
      try {
        const read = await c.query('SELECT owner FROM accounts WHERE id = $1', [id])
        if (read.rowCount !== 1) failures.push(`account ${id} not found`)
        await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [id])
        updates.set(id, (updates.get(id) ?? 0) + 1)
      } catch (err) {
        failures.push(`${id}: ${(err as Error).message}`)
      }
    }
    await c.end()
  }
  const workers = [0, 1, 2, 3].map(worker)
  await new Promise((r) => setTimeout(r, 300))
  try {
    return { result: await during(), updates, failures }
  } finally {
    await new Promise((r) => setTimeout(r, 300))
    stop = true
    await Promise.all(workers)
  }
}

t.test('a RELOAD that moves keys is refused and points to RESHARD', async (t) => {
  await writeFile(file, JSON.stringify(configWith(3)))
  const err = await admin.query('RELOAD').catch((e: { code?: string; hint?: string }) => e)
  t.match(err, { code: 'F0000', hint: /RESHARD/ })
  t.equal(app.config.shards.length, 2, 'the running map is unchanged')
})

t.test('RESHARD onto an added shard moves exactly the rows the new ring gives it, under load', async (t) => {
  const accountsBefore = await rowsOnServers('accounts')
  const ordersBefore = await rowsOnServers('orders')
  t.same(misplaced(accountsBefore, twoShards), [], 'every account starts on its shard')
  t.equal(accountsBefore.filter((r) => r.shard === 's2').length, 0, 'the new shard starts empty')
  const audit = await auditCounts()
  t.same(await countriesOn(2), [], 'the new shard has no countries yet')
  await topo.query(topo.shards[2].primary, "INSERT INTO countries VALUES ('xx', 'left over')", 'app')
  const threeShards = configWith(3)
  await writeFile(file, JSON.stringify(threeShards))

  // The new shard's replica replays nothing for a while: the clients must stay held until it has the rows.
  const replica = topo.shards[2].replicas[0]
  await topo.query(replica, 'SELECT pg_wal_replay_pause()')
  let replayResumedAt = 0
  const resume = setTimeout(() => {
    replayResumedAt = Date.now()
    void topo.query(replica, 'SELECT pg_wal_replay_resume()')
  }, 1500)
  t.teardown(() => clearTimeout(resume))

  notices.length = 0
  const { result, updates, failures } = await underLoad(() => admin.query('RESHARD').then((r) => ({ ...r, doneAt: Date.now() })))
  t.ok(replayResumedAt > 0 && result.doneAt >= replayResumedAt, 'RESHARD let the clients go only once the new shard’s replica had replayed the move')
  t.same(failures, [], 'every read and write through pgshard answered during the move')
  t.ok(updates.size > 0, `clients worked during the move (${[...updates.values()].reduce((a, b) => a + b, 0)} updates)`)
  t.equal(app.config.shards.length, 3, 'the new map is applied')
  t.match(notices.join('\n'), /rows moved by RESHARD/)

  const accountsAfter = await rowsOnServers('accounts')
  const ordersAfter = await rowsOnServers('orders')
  t.same(misplaced(accountsAfter, threeShards), [], 'every account is on the shard that owns it now')
  t.same(misplaced(ordersAfter, threeShards), [], 'every order is with its account')
  const movedAccounts = accountsAfter.filter((r) => r.shard === 's2').length
  t.ok(movedAccounts > 0 && movedAccounts < ACCOUNTS, `the new shard got a share of the accounts (${movedAccounts})`)
  t.equal(accountsAfter.length, ACCOUNTS, 'no account lost or doubled')
  t.equal(ordersAfter.length, ACCOUNTS * ORDERS_PER_ACCOUNT, 'no order lost or doubled')
  t.same(contents(ordersAfter), contents(ordersBefore), 'orders hold the same values (identity column and jsonb kept)')
  const withoutBalance = (rows: { row: string }[]) => rows.map((r) => ({ row: JSON.stringify({ ...JSON.parse(r.row), balance: 0 }) }))
  t.same(contents(withoutBalance(accountsAfter)), contents(withoutBalance(accountsBefore)), 'accounts hold the same values (quotes, arrays, NULLs, timestamps, generated column)')
  const balances = new Map(accountsAfter.map((r) => [Number(r.id), Number(JSON.parse(r.row).balance)]))
  t.same([...updates].filter(([id, n]) => balances.get(id) !== n), [], 'every update made during the move is in the row, wherever it went')

  const rows = result.rows as { database: string; table: string; from_shard: string; to_shard: string; rows: string }[]
  t.ok(rows.every((r) => r.to_shard === 's2' && r.database === 'app'), 'adding a shard moves keys only to it')
  t.same(await countriesOn(2), [...COUNTRIES].sort(), 'the new shard has the reference table\u2019s rows, and only them')
  t.same(rows.filter((r) => r.table === 'public.countries').map((r) => [r.from_shard, Number(r.rows)]), [['s0', COUNTRIES.length]], 'copied from the default shard')
  t.equal(rows.filter((r) => r.table === 'public.accounts').reduce((n, r) => n + Number(r.rows), 0), movedAccounts, 'RESHARD reports the accounts it moved')
  t.equal(rows.filter((r) => r.table === 'public.orders').reduce((n, r) => n + Number(r.rows), 0), movedAccounts * ORDERS_PER_ACCOUNT, 'and the orders')
  const movedMetric = await metric('pgshard_reshard_rows_moved_total')
  t.equal(movedMetric.get(JSON.stringify({ table: 'public.accounts' })), movedAccounts, 'pgshard_reshard_rows_moved_total counts them')
  t.same(await auditCounts(), audit, 'no trigger fired on the servers (rows were moved, not deleted and inserted)')
  t.same(await preparedLeft(), [], 'nothing is left prepared')
  const applied = await topo.query(topo.shards[0].primary, 'SELECT placement FROM pgshard.applied_map')
  t.same((applied[0]?.placement as { shards?: string[] })?.shards, ['s0', 's1', 's2'], 'the new map is recorded as applied, in the same commit')
  const stale = await ProxyApp.start(twoShards, { log: createLogger({ level: 'silent' }) }).then(
    (other) => other.stop(100).then(() => null),
    (err: Error) => err,
  )
  t.match(stale?.message, /places rows differently/, 'a restart with the old file is refused')

  const found = await appClient.query('SELECT count(*)::int AS n FROM accounts')
  t.equal(found.rows[0].n, ACCOUNTS, 'pgshard counts every account across the three shards (read on the replicas)')
  let missing = 0
  for (let id = 1; id <= ACCOUNTS; id++) if ((await appClient.query('SELECT n FROM orders WHERE account_id = $1', [id])).rowCount !== ORDERS_PER_ACCOUNT) missing++
  t.equal(missing, 0, 'every account\u2019s orders are found by key through pgshard')
})

t.test('a RESHARD that fails on one server changes nothing; fixed, it completes', async (t) => {
  const twoAgain = configWith(2)
  await writeFile(file, JSON.stringify(twoAgain))
  const onS2 = (await rowsOnServers('accounts')).filter((r) => r.shard === 's2')
  const clash = onS2.find((r) => new ShardMap(twoAgain).ring.shardFor(canonicalKey('bigint', r.id, 0, 0)) === 1)!
  t.ok(clash, 'an account on s2 goes back to s1')
  // The same key already on s1 (put there behind pgshard's back): moving the s2 row there violates the key.
  await topo.query(topo.shards[1].primary, `SET session_replication_role = replica; INSERT INTO accounts (id, owner) VALUES (${clash.id}, 'intruder')`, 'app')
  const accountsBefore = await rowsOnServers('accounts')
  const ordersBefore = await rowsOnServers('orders')

  const { result: err, failures } = await underLoad(() => admin.query('RESHARD').catch((e: { code?: string; message: string; hint?: string }) => e))
  t.match(err, { code: '23505', message: /on s1-primary \(shard s1, database app\): duplicate key value/ }, 'the server\u2019s error, with where it happened')
  t.same(failures.filter((f) => !f.startsWith(`${clash.id}:`)), [], 'clients went on (the clashing key aside)')
  t.equal(app.config.shards.length, 3, 'the running map is unchanged')
  t.same((await rowsOnServers('accounts')).map((r) => `${r.shard}/${r.id}`).sort(), accountsBefore.map((r) => `${r.shard}/${r.id}`).sort(), 'every account is where it was')
  t.same(contents(await rowsOnServers('orders')), contents(ordersBefore), 'every order is where it was')
  t.same(await preparedLeft(), [], 'nothing is left prepared')
  t.equal((await appClient.query('SELECT owner FROM accounts WHERE id = $1', [clash.id])).rows[0]?.owner, JSON.parse(clash.row).owner, 'pgshard still reads the account from s2')

  await topo.query(topo.shards[1].primary, `SET session_replication_role = replica; DELETE FROM accounts WHERE id = ${clash.id}`, 'app')
  const done = await admin.query('RESHARD')
  t.ok(done.rows.every((r) => r.from_shard === 's2'), 'removing a shard moves keys only away from it')
  t.equal(app.config.shards.length, 2, 'the two-shard map is applied')
  const accountsAfter = await rowsOnServers('accounts')
  t.equal(accountsAfter.filter((r) => r.shard === 's2').length, 0, 'the removed shard holds no account')
  t.same(misplaced(accountsAfter, twoAgain), [], 'every account is on its shard')
  t.same(misplaced(await rowsOnServers('orders'), twoAgain), [], 'every order is with its account')
  t.equal(accountsAfter.length, ACCOUNTS)
})

t.test('RESHARD waits for transactions in flight, and refuses when one does not end', async (t) => {
  await writeFile(file, JSON.stringify(configWith(2, { shutdown_timeout: 500 })))
  await admin.query('RELOAD')
  await writeFile(file, JSON.stringify(configWith(3, { shutdown_timeout: 500 })))
  const holder = await connect(APP_USER, APP_PASSWORD, 'app')
  t.teardown(() => holder.end())
  await holder.query('BEGIN')
  await holder.query('SELECT balance FROM accounts WHERE id = 1')
  const err = await admin.query('RESHARD').catch((e: { code?: string; message: string }) => e)
  t.match(err, { code: '55006', message: /1 still is in use/ })
  t.equal(app.config.shards.length, 2, 'nothing applied')
  t.equal((await rowsOnServers('accounts')).filter((r) => r.shard === 's2').length, 0, 'nothing moved')
  await holder.query('COMMIT')
  t.equal((await appClient.query('SELECT owner FROM accounts WHERE id = 2')).rowCount, 1, 'clients are served again')
})

t.test('a table missing on the new shard: RESHARD says so and moves nothing', async (t) => {
  await writeFile(file, JSON.stringify(configWith(3, { shutdown_timeout: 500 })))
  await topo.query(topo.shards[2].primary, 'ALTER TABLE orders RENAME TO orders_elsewhere', 'app')
  const err = await admin.query('RESHARD').catch((e: { code?: string; message: string; hint?: string }) => e)
  await topo.query(topo.shards[2].primary, 'ALTER TABLE orders_elsewhere RENAME TO orders', 'app')
  t.match(err, { code: '42P01', message: /on s2-primary \(shard s2, database app\): relation "public.orders" does not exist/, hint: /Create every sharded table on every shard/ })
  t.equal(app.config.shards.length, 2, 'nothing applied')
  t.equal((await rowsOnServers('accounts')).filter((r) => r.shard === 's2').length, 0, 'no account moved')
  t.same(await preparedLeft(), [], 'nothing is left prepared')
})

t.test('a client whose Parse came before RESHARD routes its Bind by the new map', async (t) => {
  const three = configWith(3, { shutdown_timeout: 500 })
  const map = new ShardMap(three)
  let id = ACCOUNTS + 1
  while (map.shardName(map.ring.shardFor(String(id))) !== 's2') id++
  const raw = await RawClient.login(port, RAW_USER)
  t.teardown(() => raw.end())
  // A group held for its Bind: nothing routed yet, no server connection.
  raw.send(encodeParse('', 'INSERT INTO accounts (id, owner) VALUES ($1, $2)', []))
  await new Promise((r) => setTimeout(r, 100))

  // The move blocks on the new shard until the lock goes: clients stay held meanwhile.
  const s2 = topo.shardsConfig()[2].primary
  const locker = new pg.Client({ host: s2.host, port: s2.port, user: 'postgres', password: topo.superuser.password, database: 'app' })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE')
  await writeFile(file, JSON.stringify(three))
  const resharding = admin.query('RESHARD')
  await new Promise((r) => setTimeout(r, 500))
  raw.send(Buffer.concat([encodeBind('', '', [Buffer.from(String(id)), Buffer.from('late')], [], []), encodeExecute('', 0), SYNC]))
  const early = await raw.until('Z', 700)
  t.same(early.map((m) => m.type), [], 'the INSERT waits while the rows move')
  t.equal((await metric('pgshard_clients_held')).get('{}'), 1, 'pgshard_clients_held shows the client held')
  t.same([...app.proxy.sessions].filter((s) => s.state === 'held').map((s) => s.identity.user.name), [RAW_USER], 'SHOW CLIENTS and pgshard_clients say held')

  await locker.query('COMMIT')
  await resharding
  const late = await raw.until('Z', 10_000)
  t.ok(late.some((m) => m.type === 'C'), `the INSERT ran after the move (${late.map((m) => m.type).join('')})`)
  const where = await Promise.all(topo.shards.map(async (s) => Number((await topo.query(s.primary, `SELECT count(*) AS n FROM accounts WHERE id = ${id}`, 'app'))[0].n)))
  t.same(where, [0, 0, 1], 'the row is on the shard the new map gives it')
  t.equal((await metric('pgshard_clients_held')).get('{}'), 0, 'and no client is held after it')
})
