// The shard map last applied is recorded on the servers, so that a restart with an edited file cannot route by
// a map the rows do not follow: such a start is refused with what to do; a file that only relabels the map, a
// first start, or a DBA's allow_key_movement start normally (and the last is recorded).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Config } from '../src/config/ConfigSchema.js'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { APP_PASSWORD, APP_USER, proxyConfig } from './harness/startProxy.js'
import { startTopology } from './harness/startTopology.js'

const topo = await startTopology(t, { shards: 2, replicas: 0, users: [{ name: APP_USER, password: APP_PASSWORD }], databases: ['app'] })
const log = createLogger({ level: 'silent' })
const config = (extra: Record<string, unknown> = {}, sharding: Record<string, unknown> = {}): Config =>
  proxyConfig(topo, { sharding: { tables: [{ name: 'accounts', key: 'id', type: 'bigint' }], ...sharding }, ...extra })
const startAndStop = async (c: Config) => {
  const app = await ProxyApp.start(c, { log })
  await app.stop(200)
}
const refusal = (c: Config) => ProxyApp.start(c, { log }).then(async (app) => {
  await app.stop(200)
  return null
}, (err: Error & { code?: string }) => err)
const recorded = async () => (await topo.query(topo.shards[0].primary, 'SELECT placement, map_version FROM pgshard.applied_map'))[0] as { placement: { shards: string[]; ring: { seed: string } }; map_version: string }

t.test('the first start records the map; a relabelled map starts; an edited one does not', async (t) => {
  await startAndStop(config({ map_version: 'v1' }))
  t.match(await recorded(), { placement: { shards: ['s0', 's1'], ring: { seed: 'pgshard' } }, map_version: 'v1' }, 'recorded on the default shard\u2019s primary')
  await startAndStop(config({ map_version: 'v1 relabelled' }))
  t.equal((await recorded()).map_version, 'v1', 'the same placement under another map_version starts, and the record stays')

  const reseeded = config({ map_version: 'v2' }, { ring: { seed: 'elsewhere' } })
  const err = await refusal(reseeded)
  t.equal(err?.code, 'F0000')
  t.match(err?.message, /places rows differently from the one last applied to these servers \(map_version v1, applied .*shards s0, s1\)/)
  t.match(err?.message, /run RESHARD/)
  t.equal((await recorded()).map_version, 'v1', 'the record is unchanged')

  const oneShard = config({ map_version: 'v3', shards: topo.shardsConfig().slice(0, 1) })
  t.match((await refusal(oneShard))?.message, /places rows differently/, 'a shard dropped from the file is refused too')
  const otherKey = config({ map_version: 'v3' }, { tables: [{ name: 'accounts', key: 'owner', type: 'text' }] })
  t.match((await refusal(otherKey))?.message, /places rows differently/, 'and another sharding key')
})

t.test('allow_key_movement: the DBA moved the rows; the new map is recorded and the old one refused', async (t) => {
  const moved = config({ map_version: 'v2' }, { ring: { seed: 'elsewhere' }, allow_key_movement: true })
  await startAndStop(moved)
  t.match(await recorded(), { placement: { ring: { seed: 'elsewhere' } }, map_version: 'v2' })
  await startAndStop(config({ map_version: 'v2 again' }, { ring: { seed: 'elsewhere' } }))
  t.equal((await recorded()).map_version, 'v2', 'the recorded map starts without the flag')
  t.match((await refusal(config({ map_version: 'v1' })))?.message, /map_version v2/, 'the first file is now the stale one')
})

t.test('a RELOAD that moves keys (allowed) records the new map; one that moves none leaves the record', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-applied-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pgshard.json')
  const current = config({ map_version: 'v2' }, { ring: { seed: 'elsewhere' } })
  await writeFile(file, JSON.stringify(current))
  const app = await ProxyApp.start(current, { log, configFile: file })
  t.teardown(() => app.stop(200))
  await writeFile(file, JSON.stringify(config({ map_version: 'v2 relabelled' }, { ring: { seed: 'elsewhere' } })))
  await app.reload()
  t.equal((await recorded()).map_version, 'v2', 'nothing moved: the record stays')
  await writeFile(file, JSON.stringify(config({ map_version: 'v4' }, { ring: { seed: 'third' }, allow_key_movement: true })))
  await app.reload()
  t.match(await recorded(), { placement: { ring: { seed: 'third' } }, map_version: 'v4' }, 'the reloaded map is the applied one')
})
