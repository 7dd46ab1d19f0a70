import { randomUUID } from 'node:crypto'
import t from 'tap'
import { ConfigSchema, type ConfigInput } from '../src/config/ConfigSchema.js'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { diffRings } from '../src/router/RingDiff.js'
import { ShardMap } from '../src/router/ShardMap.js'

type Sharding = NonNullable<ConfigInput['sharding']>

function mapOf(shards: string[], sharding: Sharding = {}, ports: Record<string, number> = {}): ShardMap {
  return new ShardMap(
    ConfigSchema.parse({
      users: [{ name: 'app', password: 'pw' }],
      databases: [{ name: 'app' }],
      shards: shards.map((name, i) => ({ name, primary: { host: '127.0.0.1', port: ports[name] ?? 6000 + i } })),
      sharding: { tables: [{ name: 'accounts', key: 'id', type: 'bigint' }], ...sharding },
    }),
  )
}

const FOUR = ['s0', 's1', 's2', 's3']

t.test('the same map moves nothing', async (t) => {
  const d = diffRings(mapOf(FOUR, { default_shard: 's0' }), mapOf([...FOUR].reverse(), { default_shard: 's0' }))
  t.equal(d.movedShare, 0, 'reordering shards in the file moves no key')
  t.same(d.moves, [])
  t.same(d.ringChanges, [])
  t.same(d.keyTypeChanges, [])
  t.same(d.tableChanges, [])
  t.equal(d.defaultShard, undefined)
  const implicit = diffRings(mapOf(FOUR), mapOf([...FOUR].reverse()))
  t.same(implicit.defaultShard, { from: 's0', to: 's3' }, 'without default_shard, the first shard in the file holds unsharded tables')
})

t.test('adding a 5th shard: about a fifth moves, all of it to the new shard, exactly as keys do', async (t) => {
  const before = mapOf(FOUR)
  const after = mapOf([...FOUR, 's4'])
  const d = diffRings(before, after)
  t.ok(d.movedShare > 0.17 && d.movedShare < 0.23, `moved share ${(100 * d.movedShare).toFixed(2)}%`)
  t.ok(d.moves.every((m) => m.to === 's4'), 'every move goes to s4')
  t.equal(d.moves.length, 4, 'from each of the four old shards')
  t.ok(Math.abs(d.moves.reduce((sum, m) => sum + m.share, 0) - d.movedShare) < 1e-12, 'moves add up to the moved share')
  t.ok(Math.abs(d.movedShare - after.ring.shares()[4]) < 1e-12, 'the moved share is the new shard\u2019s share')
  // The exact walk must agree with what real keys do.
  const n = 500_000
  let moved = 0
  for (let i = 0; i < n; i++) {
    const k = i % 2 ? canonicalKey('uuid', randomUUID(), 0, 0) : String(i * 31 + 7)
    if (before.ring.shardFor(k) !== after.ring.shardFor(k)) moved++
  }
  t.ok(Math.abs(moved / n - d.movedShare) < 0.005, `sampled ${((100 * moved) / n).toFixed(2)}% vs exact ${(100 * d.movedShare).toFixed(2)}%`)
  t.same(d.ringChanges, [], 'adding a shard is not a change of the ring\u2019s parameters')
})

t.test('removing a shard moves only its keys', async (t) => {
  const d = diffRings(mapOf([...FOUR, 's4']), mapOf(FOUR))
  t.ok(d.moves.every((m) => m.from === 's4'), 'only from s4')
  t.match(d.ringChanges, [/shard "s4" is removed/])
})

t.test('seed, points per shard and renames re-place keys and say so', async (t) => {
  const seed = diffRings(mapOf(FOUR), mapOf(FOUR, { ring: { seed: 'other' } }))
  t.ok(seed.movedShare > 0.6, `a new seed moves ${(100 * seed.movedShare).toFixed(1)}% of keys`)
  t.match(seed.ringChanges, [/sharding\.ring\.seed changed \("pgshard" \u2192 "other"\): every key is placed anew/])
  const points = diffRings(mapOf(FOUR), mapOf(FOUR, { ring: { points_per_shard: 4096 } }))
  t.ok(points.movedShare > 0.5, `more points move ${(100 * points.movedShare).toFixed(1)}% of keys`)
  t.match(points.ringChanges, [/points_per_shard changed \(1024 \u2192 4096\)/])
  const renamed = diffRings(mapOf(FOUR), mapOf(['s0', 's1', 's2', 'shard3'], {}, { shard3: 6003 }))
  t.match(renamed.ringChanges, [/shard "s3" is renamed "shard3" \(same primary 127\.0\.0\.1:6003\)/])
  t.ok(renamed.movedShare > 0.1, `renaming moves ${(100 * renamed.movedShare).toFixed(1)}% of keys`)
  t.ok(renamed.moves.some((m) => m.from === 's3' && m.to === 'shard3'), 'moves are named by shard')
})

t.test('table and default-shard changes are listed', async (t) => {
  const before = mapOf(FOUR, {
    default_shard: 's0',
    tables: [
      { name: 'accounts', key: 'id', type: 'bigint' },
      { name: 'events', key: 'tenant', type: 'text' },
      { name: 'app.orders', key: 'account_id', type: 'bigint' },
    ],
    reference_tables: ['countries'],
  })
  const after = mapOf(FOUR, {
    default_shard: 's2',
    tables: [
      { name: 'accounts', key: 'id', type: 'text' },
      { name: 'public.events', key: 'tenant', type: 'text' },
      { name: 'app.orders', key: 'order_id', type: 'bigint' },
      { name: 'countries', key: 'code', type: 'text' },
    ],
    reference_tables: ['currencies'],
  })
  const d = diffRings(before, after)
  t.equal(d.movedShare, 0, 'the ring itself is unchanged')
  t.same(d.keyTypeChanges, [
    { table: 'public.accounts', from: { key: 'id', type: 'bigint' }, to: { key: 'id', type: 'text' } },
    { table: 'app.orders', from: { key: 'account_id', type: 'bigint' }, to: { key: 'order_id', type: 'bigint' } },
  ])
  t.same(d.tableChanges, [
    { table: 'public.countries', from: 'reference', to: 'sharded' },
    { table: 'public.currencies', from: 'unsharded', to: 'reference' },
  ])
  t.same(d.defaultShard, { from: 's0', to: 's2' })
})
