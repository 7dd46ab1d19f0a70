// Reads across shards asked for part of their rows (an Execute with a row limit: asyncpg's fetchval and fetchrow,
// pgjdbc's setMaxRows) and extended-protocol groups around them, message by message with a raw client. A server
// answers a limit reached with PortalSuspended, even when no row was left; pgshard does the same for the merged
// result, and refuses clearly to go on with such a portal.
import t from 'tap'
import { FLUSH, SYNC, encodeBind, encodeExecute, encodeParse, encodeQuery, encodeTarget, encodeUnnamedRun } from '../src/protocol/FrontendMessages.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { RawClient, errorFields, type ServerMessage } from './harness/RawClient.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'items', key: 'id', type: 'bigint' }] }
const fx = await startProxy(t, { topology: { shards: 2, auth: 'trust' }, config: { sharding: SHARDING, users: [{ name: 'app', auth: 'trust' }] } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const raw = await RawClient.login(fx.port, 'app')
t.teardown(() => raw.end())
raw.send(encodeQuery('CREATE TABLE items (id bigint PRIMARY KEY, qty int)'))
await raw.until('Z')
raw.send(encodeQuery(`INSERT INTO items (id, qty) VALUES ${Array.from({ length: 10 }, (_, i) => `(${i + 1}, ${i})`).join(', ')}`))
await raw.until('Z')
const spread = await Promise.all(fx.topo.shards.map(async (s) => (await fx.topo.query(s.primary, 'SELECT count(*)::int AS n FROM items', 'app'))[0]!.n))
t.ok(spread.every((n) => (n as number) > 0), `rows on both shards: ${spread.join(', ')}`)

const types = (msgs: ServerMessage[]) => msgs.map((m) => (m.type === 'Z' ? `Z${m.body.toString('latin1')}` : m.type)).join(' ')
const ids = (msgs: ServerMessage[]) => msgs.filter((m) => m.type === 'D').map((m) => Number(m.body.toString('latin1', 6)))
const tag = (msgs: ServerMessage[]) => msgs.find((m) => m.type === 'C')?.body.toString('latin1').replace(/\0$/, '')
const ORDERED = 'SELECT id FROM items ORDER BY id'

t.test('an Execute row limit: the first rows of the merged result, then PortalSuspended', async (t) => {
  raw.send(Buffer.concat([encodeUnnamedRun(ORDERED, 3), SYNC]))
  const three = await raw.until('Z')
  t.equal(types(three), '1 2 D D D s ZI')
  t.same(ids(three), [1, 2, 3], 'the first three in order, from both shards')
  raw.send(Buffer.concat([encodeUnnamedRun(ORDERED, 20), SYNC]))
  const all = await raw.until('Z')
  t.same([ids(all), tag(all)], [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'SELECT 10'], 'a limit above the row count: every row and CommandComplete')
  raw.send(Buffer.concat([encodeUnnamedRun(ORDERED, 10), SYNC]))
  t.equal(types(await raw.until('Z')), `1 2 ${'D '.repeat(10)}s ZI`, 'exactly the row count: PortalSuspended, as a server answers')
  raw.send(Buffer.concat([encodeUnnamedRun('SELECT count(*) FROM items', 1), SYNC]))
  const count = await raw.until('Z')
  t.same([types(count), count.find((m) => m.type === 'D')!.body.toString('latin1', 6)], ['1 2 D s ZI', '10'], 'an aggregate (asyncpg fetchval)')
})

t.test('Close of the executed portal before Sync is answered after its rows', async (t) => {
  raw.send(Buffer.concat([encodeUnnamedRun(ORDERED, 2), encodeTarget('Close', 'P', ''), SYNC]))
  t.equal(types(await raw.until('Z')), '1 2 D D s 3 ZI', 'limited')
  raw.send(Buffer.concat([encodeUnnamedRun(ORDERED), encodeTarget('Close', 'P', ''), SYNC]))
  const whole = await raw.until('Z')
  t.equal(types(whole), `1 2 ${'D '.repeat(10)}C 3 ZI`, 'whole: the rows were run, not dropped with the portal')
  raw.send(Buffer.concat([encodeUnnamedRun('SELECT id FROM items WHERE id / 0 = 1'), encodeTarget('Close', 'P', ''), SYNC]))
  const failed = await raw.until('Z')
  t.equal(types(failed), '1 2 E ZI', 'after an error the Close is skipped, as a server skips it')
  t.match(errorFields(failed.find((m) => m.type === 'E')!.body), { code: '22012' })
})

t.test('in a transaction a portal is read in parts across Syncs, with other statements in between (asyncpg cursors, pgjdbc fetch size)', async (t) => {
  raw.send(encodeQuery('BEGIN READ ONLY'))
  await raw.until('Z')
  raw.send(Buffer.concat([encodeParse('', ORDERED, []), encodeBind('p1', '', [], [], []), encodeExecute('p1', 4), SYNC]))
  const first = await raw.until('Z')
  t.same([types(first), ids(first)], ['1 2 D D D D s ZT', [1, 2, 3, 4]])
  raw.send(encodeQuery('SELECT count(*) FROM items'))
  const between = await raw.until('Z')
  t.same([types(between), between.find((m) => m.type === 'D')!.body.toString('latin1', 6)], ['T D C ZT', '10'], 'another read of every shard in between')
  raw.send(Buffer.concat([encodeExecute('p1', 3), SYNC]))
  const second = await raw.until('Z')
  t.same([types(second), ids(second)], ['D D D s ZT', [5, 6, 7]], 'the portal goes on where it stopped')
  raw.send(Buffer.concat([encodeExecute('p1', 0), SYNC]))
  const rest = await raw.until('Z')
  t.same([types(rest), ids(rest), tag(rest)], ['D D D C ZT', [8, 9, 10], 'SELECT 3'], 'no limit: the rest')
  raw.send(Buffer.concat([encodeExecute('p1', 2), SYNC]))
  const after = await raw.until('Z')
  t.same([types(after), tag(after)], ['C ZT', 'SELECT 0'], 'run to its end, it answers a further Execute with no rows, as a server does')
  raw.send(Buffer.concat([encodeParse('', ORDERED, []), encodeBind('p2', '', [], [], []), encodeExecute('p2', 2), encodeTarget('Close', 'P', 'p2'), SYNC]))
  const closed = await raw.until('Z')
  t.same([types(closed), ids(closed)], ['1 2 D D s 3 ZT', [1, 2]], 'closed part way')
  raw.send(Buffer.concat([encodeExecute('p2', 2), SYNC]))
  const gone = await raw.until('Z')
  t.equal(types(gone), 'E ZE', 'a closed portal is gone')
  raw.send(encodeQuery('ROLLBACK'))
  t.equal(types(await raw.until('Z')), 'C ZI')
  const cursors = await Promise.all(fx.topo.shards.map((s) => fx.topo.query(s.primary, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'app' AND state <> 'idle' AND pid <> pg_backend_pid()", 'app')))
  t.same(cursors.map((r) => r[0]!.n), [0, 0], 'nothing is left running on the shards')
})

t.test('a group that ran nothing (Parse, Describe, Flush: asyncpg\u2019s prepare) then a Query for any shard', async (t) => {
  const onOther = (shard: number) => {
    for (let k = 100; ; k++) if (map.ring.shardFor(String(k)) === shard) return k
  }
  for (const shard of [0, 1]) {
    raw.send(Buffer.concat([encodeParse(`s${shard}`, 'SELECT qty FROM items WHERE id = $1', [20]), encodeTarget('Describe', 'S', `s${shard}`), FLUSH]))
    t.equal(types(await raw.until('T')), '1 t T', 'described at the Flush')
    raw.send(encodeQuery(`INSERT INTO items (id, qty) VALUES (${onOther(shard)}, 1)`))
    t.equal(types(await raw.until('Z')), 'C ZI', `the INSERT for shard s${shard} runs`)
  }
  raw.send(encodeQuery('SELECT count(*) FROM items WHERE id >= 100'))
  t.equal((await raw.until('Z')).find((m) => m.type === 'D')!.body.toString('latin1', 6), '2')
})

t.test('outside a transaction, Execute after Execute (Flush, no Sync: pg-cursor) goes on where the last stopped', async (t) => {
  const FIRST_TEN = 'SELECT id FROM items WHERE id <= 10 ORDER BY id'
  const lent = () => fx.app.proxy.pools.all().reduce((n, e) => n + e.pool.counts.active, 0)
  raw.send(Buffer.concat([encodeParse('', FIRST_TEN, []), encodeBind('c1', '', [], [], []), encodeExecute('c1', 4), FLUSH]))
  const first = await raw.until('s')
  t.same([types(first), ids(first)], ['1 2 D D D D s', [1, 2, 3, 4]])
  raw.send(Buffer.concat([encodeExecute('c1', 4), FLUSH]))
  const second = await raw.until('s')
  t.same([types(second), ids(second)], ['D D D D s', [5, 6, 7, 8]], 'the next four, in order across both shards')
  raw.send(Buffer.concat([encodeExecute('c1', 4), FLUSH]))
  const last = await raw.until('C')
  t.same([types(last), ids(last), tag(last)], ['D D C', [9, 10], 'SELECT 2'], 'the rest, and CommandComplete with that Execute’s count')
  raw.send(Buffer.concat([encodeExecute('c1', 4), FLUSH]))
  const again = await raw.until('C')
  t.same([types(again), tag(again)], ['C', 'SELECT 0'], 'a further Execute: no rows')
  raw.send(SYNC)
  t.equal(types(await raw.until('Z')), 'ZI')
  t.equal(lent(), 0, 'the shards’ connections are back in their pools')

  raw.send(Buffer.concat([encodeParse('', FIRST_TEN, []), encodeBind('c2', '', [], [], []), encodeExecute('c2', 3), FLUSH]))
  t.same(ids(await raw.until('s')), [1, 2, 3])
  raw.send(Buffer.concat([encodeTarget('Close', 'P', 'c2'), SYNC]))
  t.equal(types(await raw.until('Z')), '3 ZI', 'closed part way: CloseComplete, and the rest is dropped')
  raw.send(Buffer.concat([encodeParse('', FIRST_TEN, []), encodeBind('c3', '', [], [], []), encodeExecute('c3', 3), FLUSH]))
  t.same(ids(await raw.until('s')), [1, 2, 3])
  raw.send(SYNC)
  t.equal(types(await raw.until('Z')), 'ZI', 'a Sync ends the portal')
  raw.send(Buffer.concat([encodeExecute('c3', 3), SYNC]))
  t.equal(types(await raw.until('Z')), 'E ZI', 'which is gone after it, as on one server')
  t.equal(lent(), 0, 'the connections are back')

  const other = await RawClient.login(fx.port, 'app')
  other.send(Buffer.concat([encodeParse('', FIRST_TEN, []), encodeBind('c4', '', [], [], []), encodeExecute('c4', 2), FLUSH]))
  t.same(ids(await other.until('s')), [1, 2])
  t.equal(lent(), 2, 'a client part way through holds a connection to each shard')
  other.end()
  const settle = async () => {
    for (let i = 0; i < 100 && lent() !== 0; i++) await new Promise((r) => setTimeout(r, 20))
    return lent()
  }
  t.equal(await settle(), 0, 'one that leaves part way gives them back')
})

t.test('a client that leaves in a transaction with a portal part way read: its connections come back clean', async (t) => {
  const lent = () => fx.app.proxy.pools.all().reduce((n, e) => n + e.pool.counts.active, 0)
  const leaving = await RawClient.login(fx.port, 'app')
  leaving.send(encodeQuery('BEGIN READ ONLY'))
  await leaving.until('Z')
  leaving.send(Buffer.concat([encodeParse('', ORDERED, []), encodeBind('p9', '', [], [], []), encodeExecute('p9', 2), SYNC]))
  t.equal(types(await leaving.until('Z')), '1 2 D D s ZT')
  t.equal(lent(), 2, 'the transaction holds a connection on each shard')
  leaving.end()
  for (let i = 0; i < 100 && lent() !== 0; i++) await new Promise((r) => setTimeout(r, 20))
  t.equal(lent(), 0, 'both come back when it leaves')
  const next = await RawClient.login(fx.port, 'app')
  t.teardown(() => next.end())
  next.send(encodeQuery('SELECT count(*) FROM items'))
  const r = await next.until('Z')
  t.same([types(r), r.find((m) => m.type === 'D')!.body.toString('latin1', 6)], ['T D C ZI', '12'], 'the next client is served on them')
  const busy = await Promise.all(fx.topo.shards.map((s) => fx.topo.query(s.primary, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'app' AND state LIKE 'idle in transaction%'", 'app')))
  t.same(busy.map((x) => x[0]!.n), [0, 0], 'no server session is left in a transaction')
})

t.test('a transaction whose first statement is described before it runs reads in parts inside it', async (t) => {
  raw.send(encodeQuery('BEGIN READ ONLY'))
  await raw.until('Z')
  // The Describe sends the held-back BEGIN to a server in the same group: its ReadyForQuery is still to come.
  raw.send(Buffer.concat([encodeParse('', ORDERED, []), encodeTarget('Describe', 'S', ''), encodeBind('', '', [], [], []), encodeExecute('', 3), SYNC]))
  const first = await raw.until('Z')
  t.same([types(first), ids(first)], ['1 t T 2 D D D s ZT', [1, 2, 3]])
  raw.send(Buffer.concat([encodeExecute('', 3), SYNC]))
  t.same(ids(await raw.until('Z')), [4, 5, 6], 'the portal goes on')
  raw.send(encodeQuery('COMMIT'))
  t.equal(types(await raw.until('Z')), 'C ZI', 'COMMIT finds the transaction the read ran in (no "there is no transaction in progress" notice)')
})
