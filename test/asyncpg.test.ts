// asyncpg from Debian (python3-asyncpg) through the proxy over two shards in transaction pooling: its prepare
// (Parse, Describe, Flush, no Sync) followed by a query for another shard, fetchval/fetchrow (an Execute row
// limit) of reads across shards, binary COPY split by key, savepoints across shards, cursors, a pool.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { assertDriverChecks } from './harness/driverChecks.js'
import { APP_PASSWORD, proxyConfig, startProxy } from './harness/startProxy.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'python', 'asyncpg_client.py')
const SHARDING = { tables: [{ name: 'apg_items', key: 'id', type: 'integer' }], cross_shard_transactions: 'two_phase' }

t.test('asyncpg over two shards in transaction pooling', async (t) => {
  const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING, pool: { mode: 'transaction', size: 4 } } })
  const dsn = `postgresql://app:${APP_PASSWORD}@127.0.0.1:${fx.port}/app`
  await assertDriverChecks(t, '/usr/bin/python3', [script, dsn], [
    'fetchval and fetchrow across shards',
    'prepare then a query for another shard',
    'binary COPY split by key',
    'binary COPY with a NULL key is refused',
    'savepoint rolled back across shards',
    'cursor across shards',
    'pool of 20 clients',
  ], 120_000)

  const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
  const misplaced: string[] = []
  let total = 0
  for (const [i, shard] of fx.topo.shards.entries()) {
    const rows = await fx.topo.query(shard.primary, 'SELECT id FROM apg_items WHERE id >= 1000', 'app')
    total += rows.length
    for (const { id } of rows) if (map.ring.shardFor(canonicalKey('integer', String(id), 0, 0)) !== i) misplaced.push(`${String(id)} on s${i}`)
    t.ok(rows.length > 150, `shard s${i} holds ${rows.length} of the copied rows`)
  }
  t.equal(total, 500, 'every copied row is stored once')
  t.same(misplaced, [], 'each on the shard of its key')
})
