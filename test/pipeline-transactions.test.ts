// A pipeline outside a transaction (extended-protocol messages up to one Sync) that reaches two shards, with
// sharding.cross_shard_transactions: two_phase. One server runs a pipeline as one implicit transaction, all or
// nothing at its Sync; pgshard does the same across shards. Raw protocol messages, so the replies are checked
// message by message; rows are read directly on each shard's primary.
import t, { type Test } from 'tap'
import { SYNC, encodeQuery, encodeUnnamedRun } from '../src/protocol/FrontendMessages.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { RawClient, errorFields, type ServerMessage } from './harness/RawClient.js'
import { sessionsInTransaction } from './harness/serverSessions.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'items', key: 'id', type: 'bigint' }], cross_shard_transactions: 'two_phase' }
const fx = await startProxy(t, { topology: { shards: 2, auth: 'trust' }, config: { sharding: SHARDING, users: [{ name: 'app', auth: 'trust' }] } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const keyOn = (shard: number, from = 1): number => {
  for (let k = from; ; k++) if (map.ring.shardFor(String(k)) === shard) return k
}
const [k0, k1] = [keyOn(0), keyOn(1)]
const raw = await RawClient.login(fx.port, 'app')
t.teardown(() => raw.end())
raw.send(encodeQuery('CREATE TABLE items (id bigint PRIMARY KEY, qty int NOT NULL)'))
await raw.until('Z')

const set = (id: number, qty: string) => encodeUnnamedRun(`INSERT INTO items (id, qty) VALUES (${id}, ${qty}) ON CONFLICT (id) DO UPDATE SET qty = EXCLUDED.qty`)
const types = (msgs: ServerMessage[]) => msgs.map((m) => (m.type === 'Z' ? `Z${m.body.toString('latin1')}` : m.type)).join(' ')
/** Each shard's rows, read on its primary. */
const onShards = async () => Promise.all(fx.topo.shards.map(async (s) => (await fx.topo.query(s.primary, 'SELECT id, qty FROM items ORDER BY id', 'app')).map((r) => `${r.id}:${r.qty}`)))
const settled = async (t: Test) => {
  t.equal(await sessionsInTransaction(fx.topo), 0, 'no server session is left in a transaction')
  const prepared = await Promise.all(fx.topo.shards.map((s) => fx.topo.query(s.primary, 'SELECT gid FROM pg_prepared_xacts')))
  t.same(prepared.flat(), [], 'nothing is left prepared')
}

t.test('a pipeline across two shards commits both at its Sync', async (t) => {
  raw.send(Buffer.concat([set(k0, '1'), set(k1, '1'), SYNC]))
  t.equal(types(await raw.until('Z')), '1 2 C 1 2 C ZI', 'both statements answered, then ReadyForQuery outside a transaction')
  t.same(await onShards(), [[`${k0}:1`], [`${k1}:1`]])
  await settled(t)
})

t.test('a failure on the second shard leaves nothing, nor does one on the first before it reaches the second', async (t) => {
  raw.send(Buffer.concat([set(k0, '2'), set(k1, '1 / 0'), set(k0, '3'), SYNC]))
  const second = await raw.until('Z')
  t.equal(types(second), '1 2 C 1 E ZI', 'the error (at Bind: the server plans the division there), the rest skipped')
  t.match(errorFields(second.find((m) => m.type === 'E')!.body), { code: '22012' })
  raw.send(Buffer.concat([set(k0, '1 / 0'), set(k1, '2'), SYNC]))
  t.equal(types(await raw.until('Z')), '1 E ZI')
  t.same(await onShards(), [[`${k0}:1`], [`${k1}:1`]], 'both shards as before')
  await settled(t)
})

t.test('a simple Query in the pipeline ends its transaction first, as on one server', async (t) => {
  raw.send(Buffer.concat([set(k0, '4'), set(k1, '4'), encodeQuery('SELECT 1')]))
  t.equal(types(await raw.until('Z')), '1 2 C 1 2 C T D C ZI', 'the pipeline, then the Query')
  t.same(await onShards(), [[`${k0}:4`], [`${k1}:4`]], 'committed before the Query ran')
  raw.send(SYNC)
  t.equal(types(await raw.until('Z')), 'ZI', 'the Sync after it finds nothing left')
  await settled(t)
})

t.test('a transaction statement inside such a pipeline is refused and nothing stays', async (t) => {
  raw.send(Buffer.concat([set(k0, '5'), set(k1, '5'), encodeUnnamedRun('SAVEPOINT inside'), SYNC]))
  const reply = await raw.until('Z')
  t.equal(types(reply), '1 2 C 1 2 C 1 E ZI')
  t.match(errorFields(reply.find((m) => m.type === 'E')!.body), { code: '0A000', message: /SAVEPOINT inside a pipeline that runs on several shards/ })
  t.same(await onShards(), [[`${k0}:4`], [`${k1}:4`]])
  await settled(t)
})

t.test('a simple Query for the other shard right after a statement without its Sync: refused, and the statement rolled back', async (t) => {
  raw.send(Buffer.concat([set(k0, '6'), encodeQuery(`SELECT qty FROM items WHERE id = ${k1}`)]))
  const reply = await raw.until('Z')
  t.equal(types(reply), '1 2 C E ZI', 'the statement, then the refusal and ReadyForQuery, as for a failing Query')
  t.match(errorFields(reply.find((m) => m.type === 'E')!.body), { code: '0A000', message: /another shard right after extended-protocol messages/ })
  t.same(await onShards(), [[`${k0}:4`], [`${k1}:4`]], 'the statement before it did not stay, as when a Query fails inside a pipeline on one server')
  raw.send(encodeQuery(`SELECT qty FROM items WHERE id = ${k1}`))
  t.equal(types(await raw.until('Z')), 'T D C ZI', 'the client goes on')
  await settled(t)
})
