// Random UUID keys (sharding.tables[].key_uuid): version 4, all different, only those a shard accepts when asked,
// and a bounded search.
import t from 'tap'
import { randomUuids } from '../src/proxy/RandomKeys.js'

t.test('random version-4 UUIDs, each different', async (t) => {
  const keys = randomUuids(50, null, 2)
  t.equal(keys.length, 50)
  t.equal(new Set(keys).size, 50)
  t.ok(keys.every((k) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(k)), 'the version and variant bits of version 4')
})

t.test('only keys that fit, when asked; a bounded search when none do', async (t) => {
  const fits = (k: string) => k.startsWith('0') || k.startsWith('1')
  t.ok(randomUuids(20, fits, 8).every(fits), 'every key fits')
  t.throws(() => randomUuids(1, () => false, 2), { code: '0A000', message: /found no random UUID for the transaction's shard in 128 tries/ })
})
