// A sharded table outside `public`, named without its schema by clients whose search_path finds it: pgshard
// must read the client's search_path to know which table the name is, or it sends the rows to the default shard.
import pg from 'pg'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { RoleSearchPaths } from '../src/router/RoleSearchPaths.js'
import { searchPathOf, splitSearchPath } from '../src/router/SearchPath.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { initSqlParser } from '../src/router/SqlParser.js'
import { ADMIN_PASSWORD, ADMIN_USER, proxyConfig, startProxy } from './harness/startProxy.js'

t.test('the search_path a server session starts with: role in database, role, database, configuration', async (t) => {
  const paths = new RoleSearchPaths(
    new Map([
      ['app', { roles: new Map([['alice', 'ledger, "$user"'], ['bob', '']]), database: 'shared', server: null }],
      ['other', { roles: new Map(), database: null, server: '"My Schema", public' }],
    ]),
  )
  t.same(paths.of('app', 'alice'), ['ledger', '$user'], 'the role\u2019s own')
  t.same(paths.of('app', 'bob'), [], 'an empty search_path finds nothing unqualified')
  t.same(paths.of('app', 'carol'), ['shared'], 'else the database\u2019s')
  t.same(paths.of('other', 'carol'), ['My Schema', 'public'], 'else the configuration\u2019s')
  t.same(paths.of('unknown', 'carol'), ['$user', 'public'], 'else Postgres\u2019 built-in default')
  t.equal(paths.of('app', 'carol'), paths.of('app', 'dave'), 'the same array each time, to compare by identity')
  t.ok(paths.agrees(new RoleSearchPaths(new Map([['app', { roles: new Map([['alice', 'ledger,"$user"']]), database: null, server: null }]])), 'app', 'alice'))
  t.notOk(paths.agrees(new RoleSearchPaths(), 'app', 'alice'))
})

t.test('search_path settings as pgshard keeps them, read back as schema names', async (t) => {
  await initSqlParser()
  t.same(searchPathOf('SET search_path = ledger, "My Schema", public'), ['ledger', 'My Schema', 'public'])
  t.same(searchPathOf(`SELECT pg_catalog.set_config('search_path', 'ledger, "$user"', false)`), ['ledger', '$user'])
  t.equal(searchPathOf('SET search_path TO DEFAULT'), null)
  t.same(splitSearchPath(' A ,"b ""c""",, public '), ['a', 'b "c"', 'public'])
})

const SHARDING = { tables: [{ name: 'ledger.entries', key: 'id', type: 'bigint' }] }
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
for (const shard of fx.topo.shards) {
  await fx.topo.query(shard.primary, 'CREATE SCHEMA ledger AUTHORIZATION app; SET ROLE app; CREATE TABLE ledger.entries (id bigint PRIMARY KEY, note text)', 'app')
}

t.test('unqualified names of a sharded table in another schema go to the shard of their key', async (t) => {
  const viaStartup = new pg.Client({ ...fx.pgOptions, options: '-c search_path=ledger' })
  const viaSet = new pg.Client(fx.pgOptions)
  await Promise.all([viaStartup.connect(), viaSet.connect()])
  t.teardown(() => Promise.all([viaStartup.end(), viaSet.end()]))
  for (let id = 1; id <= 20; id++) await viaStartup.query(`INSERT INTO entries (id, note) VALUES (${id}, 'n${id}')`)
  t.equal(await misplacedRows(1, 20), 0, 'a search_path given at start-up: every row on the shard of its key')
  await viaSet.query('SET search_path = ledger, public')
  const notes: string[] = []
  for (let id = 1; id <= 20; id++) notes.push((await viaSet.query(`SELECT note FROM entries WHERE id = ${id}`)).rows[0]?.note)
  t.same(notes, Array.from({ length: 20 }, (_, i) => `n${i + 1}`), 'SET search_path: each read finds its row')
  t.equal((await viaSet.query('SELECT count(*)::int AS n FROM entries')).rows[0].n, 20, 'an unpinned read merges every shard')
})

/** Rows with ids from `first` to `last` that sit on a shard other than their key's, read on each primary. */
async function misplacedRows(first: number, last: number): Promise<number> {
  let misplaced = 0
  for (const [index, shard] of fx.topo.shards.entries()) {
    const rows = await fx.topo.query(shard.primary, `SELECT id::text AS id FROM ledger.entries WHERE id BETWEEN ${first} AND ${last}`, 'app')
    misplaced += rows.filter((r) => map.ring.shardFor(canonicalKey('bigint', String(r.id), 0, 0)) !== index).length
  }
  return misplaced
}

/** What each of `n` transactions held open at once sees on its server connection (so `n` connections serve them). */
async function serverSessions(n: number): Promise<{ searchPath: string; pid: number }[]> {
  const clients = Array.from({ length: n }, () => new pg.Client(fx.pgOptions))
  await Promise.all(clients.map((c) => c.connect()))
  try {
    await Promise.all(clients.map((c) => c.query('BEGIN')))
    const rows = await Promise.all(clients.map(async (c) => (await c.query(`SELECT current_setting('search_path') AS sp, pg_backend_pid() AS pid`)).rows[0]))
    await Promise.all(clients.map((c) => c.query('COMMIT')))
    return rows.map((r) => ({ searchPath: r.sp as string, pid: r.pid as number }))
  } finally {
    await Promise.all(clients.map((c) => c.end()))
  }
}

t.test('a search_path from ALTER ROLE … SET routes clients that set none, once pgshard has read it', async (t) => {
  const before = await serverSessions(4)
  t.ok(before.every((s) => s.searchPath === '"$user", public'), 'server connections opened before ALTER ROLE start with the default')
  // The role's setting in this database beats its setting everywhere, which beats the database's.
  for (const shard of fx.topo.shards) {
    await fx.topo.query(shard.primary, 'ALTER ROLE app SET search_path = nowhere; ALTER DATABASE app SET search_path = elsewhere')
    await fx.topo.query(shard.primary, 'ALTER ROLE app IN DATABASE app SET search_path = ledger, public')
  }
  // What RELOAD does after reading the file.
  await fx.app.health.refreshCatalogs()

  const after = await serverSessions(4)
  t.same(after.map((s) => s.searchPath), Array(4).fill('ledger, public'), 'every server connection now starts with the role\u2019s search_path')
  t.equal(after.filter((s) => before.some((b) => b.pid === s.pid)).length, 0, 'none of the connections opened before ALTER ROLE is lent again')

  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  t.teardown(() => c.end())
  for (let id = 101; id <= 120; id++) await c.query(`INSERT INTO entries (id, note) VALUES (${id}, 'r${id}')`)
  t.equal(await misplacedRows(101, 120), 0, 'no search_path from the client: every row on the shard of its key')
  const notes: string[] = []
  for (let id = 101; id <= 120; id++) notes.push((await c.query(`SELECT note FROM entries WHERE id = ${id}`)).rows[0]?.note)
  t.same(notes, Array.from({ length: 20 }, (_, i) => `r${i + 101}`), 'each read finds its row')
  await c.query('SET search_path = public')
  await c.query('RESET search_path')
  t.equal((await c.query('SELECT count(*)::int AS n FROM entries WHERE id > 100')).rows[0].n, 20, 'after RESET the role\u2019s search_path routes again')
})

t.test('RECONNECT replaces the server connections as they come back, without failing a client', async (t) => {
  const before = await serverSessions(3)
  const admin = new pg.Client({ ...fx.pgOptions, user: ADMIN_USER, password: ADMIN_PASSWORD, database: 'pgshard' })
  await admin.connect()
  t.teardown(() => admin.end())
  const busy = new pg.Client(fx.pgOptions)
  await busy.connect()
  t.teardown(() => busy.end())
  await busy.query('BEGIN')
  const busyPid = (await busy.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
  const notices: string[] = []
  admin.on('notice', (n) => notices.push(n.message ?? ''))
  const r = await admin.query('RECONNECT app')
  t.equal(r.command, 'RECONNECT')
  t.match(notices.join('\n'), /\d+ server connection\(s\) to be replaced/)
  t.equal((await busy.query('SELECT pg_backend_pid() AS pid')).rows[0].pid, busyPid, 'a transaction in flight keeps its connection')
  await busy.query('COMMIT')
  const after = await serverSessions(3)
  t.equal(after.filter((s) => s.pid === busyPid || before.some((b) => b.pid === s.pid)).length, 0, 'no connection from before RECONNECT serves a new transaction')
  const err = await admin.query('RECONNECT nosuchdb').catch((e: { code?: string }) => e)
  t.equal((err as { code?: string }).code, '3D000', 'an unknown database is refused')
})
