// A sharded table outside `public`, named without its schema by clients whose search_path finds it: pgshard
// must read the client's search_path to know which table the name is, or it sends the rows to the default shard.
import pg from 'pg'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { searchPathOf, splitSearchPath } from '../src/router/SearchPath.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { initSqlParser } from '../src/router/SqlParser.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

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
  let misplaced = 0
  for (const [index, shard] of fx.topo.shards.entries()) {
    const rows = await fx.topo.query(shard.primary, 'SELECT id::text AS id FROM ledger.entries', 'app')
    misplaced += rows.filter((r) => map.ring.shardFor(canonicalKey('bigint', String(r.id), 0, 0)) !== index).length
  }
  t.equal(misplaced, 0, 'a search_path given at start-up: every row on the shard of its key')
  await viaSet.query('SET search_path = ledger, public')
  const notes: string[] = []
  for (let id = 1; id <= 20; id++) notes.push((await viaSet.query(`SELECT note FROM entries WHERE id = ${id}`)).rows[0]?.note)
  t.same(notes, Array.from({ length: 20 }, (_, i) => `n${i + 1}`), 'SET search_path: each read finds its row')
  t.equal((await viaSet.query('SELECT count(*)::int AS n FROM entries')).rows[0].n, 20, 'an unpinned read merges every shard')
})
