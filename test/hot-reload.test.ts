// Hot reload under a continuous pgbench load: a replica added, a replica removed, a pool size changed, a broken
// file and a key-moving file refused. pgbench must finish with 0 failed transactions and no aborted client.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Config } from '../src/config/ConfigSchema.js'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { runCommand } from './harness/runCommand.js'
import { APP_PASSWORD, APP_USER, proxyConfig } from './harness/startProxy.js'
import { startTopology } from './harness/startTopology.js'
import { waitFor } from '../src/topology/ProcessScan.js'

const LOAD_SECONDS = 14
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('reload under pgbench load: 0 failed transactions; invalid files change nothing and say why', async (t) => {
  const topo = await startTopology(t, { shards: 1, replicas: 2, users: [{ name: APP_USER, password: APP_PASSWORD }], databases: ['app'] })
  const env = { ...process.env, PGPASSWORD: APP_PASSWORD, PGCONNECT_TIMEOUT: '10' }
  const primary = topo.shards[0].primary
  const init = await runCommand('pgbench', ['-i', '-s', '1', '-q', `host=127.0.0.1 port=${primary.port} user=${APP_USER} dbname=app`], { env, timeoutMs: 120_000 })
  t.equal(init.code, 0, init.code === 0 ? 'pgbench -i' : init.stderr)
  for (const r of topo.shards[0].replicas) await topo.waitForReplay(r)

  const dir = await mkdtemp(join(tmpdir(), 'pgshard-reload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pgshard.json')
  const [shard] = topo.shardsConfig()
  // Named, so that the second replica keeps its name when it becomes the only one.
  const [replica1, replica2] = shard.replicas.map((r, i) => ({ ...r, name: `s0-replica${i + 1}` }))
  const config = (replicas: { host: string; port: number }[], extra: Record<string, unknown> = {}): Config =>
    proxyConfig(topo, { shards: [{ ...shard, replicas }], health: { interval: 200 }, pool: { size: 4, checkout_timeout: 10_000 }, ...extra })
  const first = config([replica1])
  await writeFile(file, JSON.stringify(first))
  const app = await ProxyApp.start(first, { configFile: file, log: createLogger({ level: 'warn' }) })
  t.teardown(() => app.stop(1000))
  const port = app.address.port
  const reloadWith = async (c: Config | Record<string, unknown>) => {
    await writeFile(file, JSON.stringify(c))
    return app.reload()
  }
  const nodeNames = () => app.proxy.topology.nodes().map((n) => n.name).sort()
  const poolNodes = () => new Set(app.proxy.pools.all().map((e) => e.node.name))

  // Reads (select-only, autocommit) go to the replicas; tpcb-like transactions write on the primary.
  const load = runCommand(
    'pgbench',
    ['-n', '-c', '8', '-j', '2', '-T', String(LOAD_SECONDS), '-b', 'select-only@4', '-b', 'tpcb-like@1', `host=127.0.0.1 port=${port} user=${APP_USER} dbname=app`],
    { env, timeoutMs: (LOAD_SECONDS + 60) * 1000 },
  )
  await sleep(1500)
  t.same(nodeNames(), ['s0-primary', 's0-replica1'])

  const added = await reloadWith(config([replica1, replica2]))
  t.match(added, /nodes added: s0-replica2/)
  t.same(nodeNames(), ['s0-primary', 's0-replica1', 's0-replica2'])
  await sleep(1500)
  const assigned = app.proxy.pools.all().filter((e) => e.node.name === 's0-replica2').reduce((n, e) => n + e.pool.stats.acquired, 0)
  t.ok(assigned > 0, `reads reach the added replica (${assigned} server assignments)`)

  const keptPools = app.proxy.pools.all().filter((e) => e.node.name !== 's0-replica1').map((e) => e.pool)
  const removed = await reloadWith(config([replica2]))
  t.match(removed, /nodes removed \(drained\): s0-replica1/)
  t.same(nodeNames(), ['s0-primary', 's0-replica2'])
  t.notOk(poolNodes().has('s0-replica1'), 'the removed replica\u2019s pools are gone')
  t.ok(keptPools.every((p) => app.proxy.pools.all().some((e) => e.pool === p)), 'the other pools are the same objects (connections kept)')
  await sleep(1500)

  const resized = await reloadWith(config([replica2], { pool: { size: 2, checkout_timeout: 10_000 } }))
  t.match(resized, /pool\.size 4 \u2192 2/)
  t.ok(app.proxy.pools.all().every((e) => e.pool.size === 2), 'every pool has the new size')
  await sleep(1000)

  const before = app.config
  const broken = await reloadWith({ ...before, pool: { ...before.pool, size: 'eight' }, shards: [{ ...shard, replicas: [] }] }).catch((e: Error & { code?: string }) => e)
  t.type(broken, Error)
  t.equal((broken as { code?: string }).code, 'F0000')
  t.match((broken as Error).message, /pool\.size: expected an integer/)
  t.equal(app.config, before, 'the running config is the same object')
  t.same(nodeNames(), ['s0-primary', 's0-replica2'], 'the broken file removed no replica')

  const moving = await reloadWith({ ...config([replica2]), sharding: { ring: { seed: 'another' } } }).catch((e: Error & { code?: string }) => e)
  t.equal((moving as { code?: string }).code, 'F0000')
  t.match((moving as Error).message, /moves keys between shards[^]*sharding\.ring\.seed changed/)
  t.match((moving as { options?: { hint?: string } }).options?.hint, /pgshard plan/)
  t.equal(app.config, before, 'a key-moving map is refused unless allowed')
  await sleep(1000)

  const r = await load
  t.equal(r.code, 0, `pgbench exit code (stderr: ${r.stderr.slice(-2000)})`)
  t.notMatch(r.stdout + r.stderr, /aborted/, 'no pgbench client aborted')
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1])
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1])
  t.ok(processed > 100, `pgbench processed ${processed} transactions`)
  t.equal(failed, 0, 'number of failed transactions')
  t.comment(`pgbench during 3 reloads and 2 refused files: ${processed} transactions, ${failed} failed, ${/tps = ([\d.]+)/.exec(r.stdout)?.[1]} tps`)

  const metrics = await app.registry.getSingleMetricAsString('pgshard_config_reloads_total')
  t.match(metrics, /pgshard_config_reloads_total\{result="ok"\} 3/)
  t.match(metrics, /pgshard_config_reloads_total\{result="failed"\} 2/)
  t.match(await app.registry.getSingleMetricAsString('pgshard_config_info'), /map_version="1"\} 1/)
})

t.test('a reload that allows key movement applies, and says what moves', async (t) => {
  const topo = await startTopology(t, { shards: 2, replicas: 0, users: [{ name: APP_USER, password: APP_PASSWORD }], databases: ['app'] })
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-reload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pgshard.json')
  const [s0, s1] = topo.shardsConfig()
  const one = proxyConfig(topo, { shards: [s0], map_version: 'one-shard' })
  await writeFile(file, JSON.stringify(one))
  const app = await ProxyApp.start(one, { configFile: file, log: createLogger({ level: 'silent' }) })
  t.teardown(() => app.stop(500))
  const two = { ...proxyConfig(topo, { shards: [s0, s1], map_version: 'two-shards' }) }
  await writeFile(file, JSON.stringify(two))
  const refused = await app.reload().catch((e: Error) => e)
  t.match((refused as Error).message, /\d\d\.\d+% of the keys change shard\n {2}\d\d\.\d+% from s0 to s1/)
  t.equal(app.config.map_version, 'one-shard')
  await writeFile(file, JSON.stringify({ ...two, sharding: { ...two.sharding, allow_key_movement: true } }))
  const applied = await app.reload()
  t.match(applied, /reloaded shard map version two-shards\nkeys move \(allowed by sharding\.allow_key_movement\)/)
  t.equal(app.proxy.topology.shards.length, 2)
  t.match(await app.registry.getSingleMetricAsString('pgshard_config_info'), /map_version="two-shards"\} 1/)
})

t.test('a reload with a new control password: the health checks log in with it from then on', async (t) => {
  const topo = await startTopology(t, { shards: 1, replicas: 0, users: [{ name: APP_USER, password: APP_PASSWORD }], databases: ['app'] })
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-reload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pgshard.json')
  const first = proxyConfig(topo, { health: { interval: 100 } })
  await writeFile(file, JSON.stringify(first))
  const app = await ProxyApp.start(first, { configFile: file, log: createLogger({ level: 'silent' }) })
  t.teardown(() => app.stop(500))
  const outcomes: { probe: boolean; at: number }[] = []
  app.health.onOutcome((o) => outcomes.push({ probe: o.probe !== null, at: Date.now() }))
  const probedSince = (at: number) => waitFor(() => outcomes.some((o) => o.at > at && o.probe), 5000)
  t.ok(await probedSince(0), 'the checks read the node with the first password')

  // The DBA rotates the control role's password; the proxy's kept-open connection is cut.
  const primary = topo.shards[0].primary
  await topo.query(primary, "ALTER ROLE postgres PASSWORD 'rotated-secret'")
  await topo.query(primary, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgshard-control'")
  const cut = Date.now()
  t.ok(await waitFor(() => outcomes.some((o) => o.at > cut && !o.probe), 5000), 'with the old password the checks are refused (alive, but nothing read)')

  await writeFile(file, JSON.stringify({ ...first, control: { ...first.control, password: 'rotated-secret' } }))
  await app.reload()
  const reloaded = Date.now()
  t.ok(await probedSince(reloaded), 'after the reload the checks read the node again')
  t.equal(app.proxy.topology.node('s0-primary')?.up, true)
})
