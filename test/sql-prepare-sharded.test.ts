// SQL PREPARE / EXECUTE on a sharded table: EXECUTE runs where the prepared query's key (EXECUTE's argument)
// lives, and a prepared query that would need several shards is refused instead of answering from one.
import pg from 'pg'
import t from 'tap'
import { ShardMap } from '../src/router/ShardMap.js'
import { startProxy } from './harness/startProxy.js'

t.test('EXECUTE routes by its arguments', async (t) => {
  const fx = await startProxy(t, {
    topology: { shards: 2 },
    config: { sharding: { tables: [{ name: 'accounts', key: 'id', type: 'bigint' }] } },
  })
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  t.teardown(() => c.end())
  await c.query('CREATE TABLE accounts (id bigint PRIMARY KEY, owner text)')
  const map = new ShardMap(fx.app.config)
  const keys = Array.from({ length: 20 }, (_, i) => i + 1)
  t.ok(new Set(keys.map((k) => map.ring.shardFor(String(k)))).size === 2, 'the keys live on both shards')
  await c.query(`INSERT INTO accounts (id, owner) VALUES ${keys.map((k) => `(${k}, 'owner ${k}')`).join(', ')}`)
  await c.query('PREPARE by_id(bigint) AS SELECT owner FROM accounts WHERE id = $1')
  for (const k of keys) {
    const r = await c.query(`EXECUTE by_id(${k})`)
    t.equal(r.rows[0]?.owner, `owner ${k}`, `EXECUTE by_id(${k}) finds the row on its shard`)
  }
  await c.query('PREPARE everything AS SELECT count(*) FROM accounts')
  const err = await c.query('EXECUTE everything').then(() => null, (e: { code?: string; message: string }) => e)
  t.equal(err?.code, '0A000', `a prepared query over every shard is refused: ${err?.message}`)
})
