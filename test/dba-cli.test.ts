// The DBA commands as a DBA runs them: the built CLI (node bin/pgshard.js) on the example maps in config/examples.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadConfig } from '../src/config/ConfigLoader.js'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { runCommand } from './harness/runCommand.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const FOUR = 'config/examples/four-shards.yaml'
const FIVE = 'config/examples/five-shards.yaml'
const pgshard = (...args: string[]) => runCommand('node', ['bin/pgshard.js', ...args], { cwd: ROOT, timeoutMs: 60_000 })

t.before(async () => {
  // The test runner builds dist/ first; a file run alone may find it stale.
  const build = await runCommand('sh', ['scripts/ensure-deps.sh'], { cwd: ROOT, timeoutMs: 300_000 })
  if (build.code !== 0) throw new Error(`could not build dist/: ${build.stdout}${build.stderr}`)
})

t.test('pgshard route: a pinned key, a parameter, a scatter, a split, refusals', async (t) => {
  const map = new ShardMap(await loadConfig(join(ROOT, FOUR)))
  const owner = (type: 'bigint' | 'text', key: string) => map.shardName(map.ring.shardFor(canonicalKey(type, key, 0, 0)))

  const pinned = await pgshard('route', '-c', FOUR, 'SELECT * FROM accounts WHERE id = 42')
  t.equal(pinned.code, 0, pinned.stderr)
  t.match(pinned.stdout, new RegExp(`^shard ${owner('bigint', '42')} \\(replica\\)\\nwhy: accounts\\.id pinned`))
  const param = await pgshard('route', '-c', FOUR, 'UPDATE events SET n = n + 1 WHERE tenant = $1', 'acme')
  t.equal(param.code, 0, param.stderr)
  t.match(param.stdout, new RegExp(`^shard ${owner('text', 'acme')} \\(primary\\)`), 'a text key given as a parameter, a write on the primary')

  const scatter = await pgshard('route', '-c', FOUR, 'SELECT * FROM accounts ORDER BY id LIMIT 10')
  t.equal(scatter.code, 0, scatter.stderr)
  t.match(scatter.stdout, /^all shards, merged \(replica\)\nwhy: .*scatter to 4 shards\neach shard runs: SELECT \*, id FROM accounts ORDER BY id LIMIT 10\n$/)

  const keys = ['1', '2', '3', '4', '5', '6', '7', '8']
  const split = await pgshard('route', '-c', FOUR, `INSERT INTO accounts (id, created) VALUES ${keys.map((k) => `(${k}, now())`).join(', ')}`)
  t.equal(split.code, 0, split.stderr)
  const parts = [...split.stdout.matchAll(/^ {2}(shard\d): (\d+) row\(s\): INSERT INTO accounts \(id, created\) VALUES (.*)$/gm)]
  t.ok(parts.length >= 2, `split into ${parts.length} statements`)
  for (const [, shard, rows, values] of parts) {
    const ids = [...values!.matchAll(/\((\d+), now\(\)\)/g)].map((m) => m[1]!)
    t.equal(ids.length, Number(rows), `${shard}: row count`)
    t.ok(ids.every((id) => owner('bigint', id) === shard), `${shard} gets only its own keys (${ids.join(', ')})`)
  }

  const located = await pgshard('route', '-c', FOUR, "UPDATE accounts SET balance = 0 WHERE owner = 'x'")
  t.equal(located.code, 0)
  t.match(located.stdout, /^each shard asked first which holds its rows, then that shard \(primary\); rows on several are refused\nwhy: .*\neach shard is asked: SELECT 1 FROM accounts WHERE owner = 'x'\nLIMIT 1/, 'a write without its key: the query that finds its rows')
  const refused = await pgshard('route', '-c', FOUR, 'UPDATE accounts SET balance = 0 FROM events e WHERE e.tenant = accounts.owner')
  t.equal(refused.code, 1, 'a refused statement exits 1')
  t.match(refused.stdout, /^refused: 0A000 UPDATE on accounts, events has no condition on the sharding key accounts\.id, events\.tenant: a write must stay on one shard\nhint: /)
  const keyMove = await pgshard('route', '-c', FOUR, 'UPDATE accounts SET id = id + 1 WHERE id = 42')
  t.equal(keyMove.code, 1)
  t.match(keyMove.stdout, /^refused: 0A000 UPDATE sets sharding key accounts\.id to an expression/)

  const usage = await pgshard('route', '-c', FOUR)
  t.equal(usage.code, 2, 'no statement: usage')
})

t.test('pgshard plan: four shards to five', async (t) => {
  const r = await pgshard('plan', FOUR, FIVE)
  t.equal(r.code, 3, `rows must move: exit 3 ${r.stderr}`)
  const moved = Number(/^keys that change shard: ([\d.]+)% of the key space$/m.exec(r.stdout)?.[1])
  t.ok(moved >= 17 && moved <= 22, `about a fifth of the key space moves (${moved}%)`)
  const moves = [...r.stdout.matchAll(/^ {2}(shard\d) \u2192 (shard\d) {2}([\d.]+)%$/gm)]
  t.same(moves.map((m) => m[1]).sort(), ['shard1', 'shard2', 'shard3', 'shard4'], 'from each old shard')
  t.ok(moves.every((m) => m[2] === 'shard5'), 'only to the new shard')
  t.ok(Math.abs(moves.reduce((a, m) => a + Number(m[3]), 0) - moved) < 0.05, 'the moves add up to the moved share')
  const after = [...r.stdout.matchAll(/^ {2}(shard\d) {2}([\d.]+)%$/gm)].map((m) => Number(m[2]))
  t.equal(after.length, 5)
  t.ok(after.every((share) => share > 18 && share < 22), `balanced after the change: ${after.join(', ')}`)
  t.match(r.stdout, /^WARNING: rows must be moved\..*\n {2}- rows of public\.accounts, public\.events, public\.sessions whose key is in the moving share/m)
  t.match(r.stdout, /RESHARD in the admin console does it/, 'only keys move: RESHARD can do it')

  const same = await pgshard('plan', FOUR, FOUR)
  t.equal(same.code, 0, 'the same map: exit 0')
  t.match(same.stdout, /keys that change shard: 0\.00% of the key space\n/)
  t.match(same.stdout, /no row moves: every key stays on its shard/)
  t.notMatch(same.stdout, /WARNING/)

  const back = await pgshard('plan', FIVE, FOUR)
  t.equal(back.code, 3)
  t.ok([...back.stdout.matchAll(/^ {2}(shard\d) \u2192 (shard\d) /gm)].every((m) => m[1] === 'shard5'), 'removing shard5 moves only its keys')
  t.match(back.stdout, /shard "shard5" is removed/)

  t.equal((await pgshard('plan', FOUR)).code, 2, 'one file: usage')
})

t.test('pgshard plan: tables, keys and the default shard', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-dba-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const four = await readFile(join(ROOT, FOUR), 'utf8')
  const changed = four
    .replace('{ name: events, key: tenant, type: text }', '{ name: events, key: tenant_id, type: bigint }')
    .replace('    - countries', '    - countries\n    - currencies\n  default_shard: shard2')
  t.not(changed, four)
  const file = join(dir, 'changed.yaml')
  await writeFile(file, changed)
  const r = await pgshard('plan', FOUR, file)
  t.equal(r.code, 3, r.stderr)
  t.match(r.stdout, /keys that change shard: 0\.00%/, 'the ring itself is unchanged')
  t.match(r.stdout, /public\.events: tenant \(text\) \u2192 tenant_id \(bigint\): every row may belong elsewhere/)
  t.match(r.stdout, /public\.currencies: unsharded \u2192 reference/)
  t.match(r.stdout, /unsharded tables: shard1 \u2192 shard2/)
  t.match(r.stdout, / {2}- every row of public\.events \(new sharding key tenant_id\)/)
  t.match(r.stdout, /Copy those rows to their new shards.*sharding\.allow_key_movement: true/, 'more than keys move: the DBA moves the rows')
})

t.test('pgshard check: the summary, a ring warning, an invalid file', async (t) => {
  const r = await pgshard('check', '-c', FOUR)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^config\/examples\/four-shards\.yaml: valid \(shard map version four-shards\)\n/)
  t.equal([...r.stdout.matchAll(/^ {2}shard\d {2}[\d.]+% of the keyspace/gm)].length, 4, 'four shards with their share')
  t.match(r.stdout, / {4}primary {2}127\.0\.0\.1:5410\n {4}replica {2}127\.0\.0\.1:5411 {2}weight 1/)
  const balance = Number(/max\/mean share ([\d.]+)/.exec(r.stdout)?.[1])
  t.ok(balance >= 1 && balance <= 1.05, `ring balance ${balance}`)
  t.notMatch(r.stdout, /warning/)
  t.match(r.stdout, /sharded tables:\n {2}public\.accounts by id \(bigint\), keys from sequence accounts_id_seq\n {2}public\.events by tenant \(text\)\n {2}public\.sessions by id \(uuid\), random UUID keys\n/)
  t.match(r.stdout, /reference tables: public\.countries\n {2}countries\.id: values from sequence countries_id_seq when an INSERT leaves it out\neverything else lives on shard1/)

  const dir = await mkdtemp(join(tmpdir(), 'pgshard-dba-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const sparse = join(dir, 'sparse.yaml')
  await writeFile(sparse, (await readFile(join(ROOT, FOUR), 'utf8')).replace('  reference_tables:', '  ring: { points_per_shard: 16 }\n  reference_tables:'))
  const warned = await pgshard('check', '-c', sparse)
  t.equal(warned.code, 0, 'an unbalanced ring is valid: exit 0')
  t.match(warned.stdout, /max\/mean share 1\.\d+\nwarning: the ring is unbalanced: shard shard\d owns 1\.\d+× the mean share \(above 1\.05\)/)
  t.match(warned.stdout, /sharding\.ring\.points_per_shard: \d+ balances it/)

  const invalid = join(dir, 'invalid.yaml')
  await writeFile(invalid, 'version: 1\nusers: [{ name: app, password: pw }]\ndatabases: [{ name: app }]\nshards:\n  - name: a\n    primary: { host: 127.0.0.1, port: "x" }\nsharding:\n  tables:\n    - { name: t, key: id, type: float }\n')
  const bad = await pgshard('check', '-c', invalid)
  t.equal(bad.code, 1, 'an invalid file exits 1')
  t.match(bad.stderr, `${invalid} is not valid:`)
  t.match(bad.stderr, /shards\[0\]\.primary\.port: expected an integer \(line 6\)/)
  t.match(bad.stderr, /sharding\.tables\[0\]\.type: expected one of bigint, integer, text, uuid \(line 9\)/)
  const badPlan = await pgshard('plan', FOUR, invalid)
  t.equal(badPlan.code, 1)
  t.match(badPlan.stderr, `${invalid} is not valid:`)
  const missing = await pgshard('check', '-c', join(dir, 'missing.yaml'))
  t.equal(missing.code, 1)
  t.match(missing.stderr, /missing\.yaml is not valid:\n\(file\): cannot read .*missing\.yaml \(ENOENT\)/)
})
