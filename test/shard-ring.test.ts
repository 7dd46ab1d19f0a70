import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { BALANCE_LIMIT, balanceOf, pointsForBalance } from '../src/router/RingBalance.js'
import { ShardRing } from '../src/router/ShardRing.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TS_LOADER = join(ROOT, 'node_modules/@tapjs/typescript/dist/esm/import.mjs')
const RING = { version: 1 as const, pointsPerShard: 1024, seed: 'pgshard' }
const FOUR = ['s0', 's1', 's2', 's3']

// The mapping of 1M keys (500k integers, 500k uuids from a fixed generator) on a 5-shard ring, as a digest.
// The same module runs here and in two child processes, so all three compute with the same code.
const DIGEST_MODULE = `
import { createHash } from 'node:crypto'
import { canonicalKey } from ${JSON.stringify(join(ROOT, 'src/router/KeyEncoding.js'))}
import { ShardRing } from ${JSON.stringify(join(ROOT, 'src/router/ShardRing.js'))}

export function mappingDigest(): string {
  const ring = new ShardRing(['alpha', 'beta', 'gamma', 'delta', 'epsilon'], { version: 1, pointsPerShard: 1024, seed: 'pgshard' })
  const shards = new Uint8Array(1_000_000)
  for (let i = 0; i < 500_000; i++) shards[i] = ring.shardFor(canonicalKey('bigint', String(i * 7919 - 1_000_000), 0, 0))
  let x = 0x9e3779b9
  const next = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0).toString(16).padStart(8, '0') }
  for (let i = 0; i < 500_000; i++) {
    const h = next() + next() + next() + next()
    const uuid = h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20)
    shards[500_000 + i] = ring.shardFor(canonicalKey('uuid', i % 2 ? uuid.toUpperCase() : uuid, 0, 0))
  }
  return createHash('sha256').update(shards).digest('hex')
}

if (process.argv[2] === 'print') console.log(mappingDigest())
`
// Version 1 of the ring is an on-disk contract: if this changes, every deployed map would move keys.
const GOLDEN_DIGEST = '683b0ae63f78a2450778a9549b188156a5fcbee761503fd6da75c88d2d58410a'

function runChild(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TS_LOADER, script, 'print'], { cwd: ROOT })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', (code, signal) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${code ?? signal}: ${err}`))))
  })
}

t.test('two separate processes and this one map 1M keys identically', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgshard-ring-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const script = join(dir, 'ring-digest.mts')
  writeFileSync(script, DIGEST_MODULE)
  const children = Promise.all([runChild(script), runChild(script)])
  const { mappingDigest } = (await import(script)) as { mappingDigest: () => string }
  const here = mappingDigest()
  const [first, second] = await children
  t.match(here, /^[0-9a-f]{64}$/, 'a digest')
  t.equal(first, here, 'first child process agrees with this process')
  t.equal(second, here, 'second child process agrees with this process')
  t.equal(here, GOLDEN_DIGEST, 'and with the mapping recorded for ring version 1')
  t.comment(`mapping digest ${here}`)
})

t.test('known keys stay on their recorded shards (ring version 1)', async (t) => {
  const ring = new ShardRing(FOUR, RING)
  const placed = ['1', '42', '-7', '9223372036854775807', 'a0eebc999c0b4ef8bb6d6bb9bd380a11', 'alice'].map(
    (k) => ring.shardNames[ring.shardFor(k)],
  )
  t.same(placed, ['s2', 's3', 's0', 's2', 's3', 's1'])
})

t.test('balance at 4 shards and movement to a 5th, 1M sequential integers and 1M random uuids', async (t) => {
  const four = new ShardRing(FOUR, RING)
  const five = new ShardRing([...FOUR, 's4'], RING)
  const keySets: [string, (i: number) => string][] = [
    ['sequential integers', (i) => canonicalKey('bigint', String(i + 1), 0, 0)],
    ['random uuids', () => canonicalKey('uuid', randomUUID(), 0, 0)],
  ]
  for (const [name, key] of keySets) {
    const counts = [0, 0, 0, 0]
    let moved = 0
    let movedElsewhere = 0
    const n = 1_000_000
    for (let i = 0; i < n; i++) {
      const k = key(i)
      const before = four.shardFor(k)
      const after = five.shardFor(k)
      counts[before]++
      if (before !== after) {
        moved++
        if (after !== 4) movedElsewhere++
      }
    }
    const mean = n / 4
    const maxOverMean = Math.max(...counts) / mean
    const minOverMean = Math.min(...counts) / mean
    t.ok(maxOverMean <= 1.05, `${name}: max/mean ${maxOverMean.toFixed(4)} ≤ 1.05`)
    t.ok(moved / n <= 0.22, `${name}: ${((100 * moved) / n).toFixed(2)}% moved 4→5 (≤ 22%)`)
    t.ok(moved / n >= 0.15, `${name}: the new shard takes a real share`)
    t.equal(movedElsewhere, 0, `${name}: every moved key went to the new shard`)
    t.comment(`${name}: 4 shards max/mean ${maxOverMean.toFixed(4)} min/mean ${minOverMean.toFixed(4)}; moved 4→5 ${((100 * moved) / n).toFixed(2)}%`)
  }
})

t.test('the ring depends on the shard names, not their order in the file', async (t) => {
  const a = new ShardRing(['s0', 's1', 's2'], RING)
  const b = new ShardRing(['s2', 's0', 's1'], RING)
  let differ = 0
  for (let i = 0; i < 100_000; i++) {
    const k = String(i)
    if (a.shardNames[a.shardFor(k)] !== b.shardNames[b.shardFor(k)]) differ++
  }
  t.equal(differ, 0, 'same shard name for every key')
  t.equal(b.shardNames[b.shardFor('42')], a.shardNames[a.shardFor('42')])
  t.same(b.shardNames, ['s2', 's0', 's1'], 'indexes follow the given order')
})

t.test('the seed and the points per shard are part of the placement', async (t) => {
  const base = new ShardRing(FOUR, RING)
  const reseeded = new ShardRing(FOUR, { ...RING, seed: 'other' })
  const fewer = new ShardRing(FOUR, { ...RING, pointsPerShard: 256 })
  let seedMoves = 0
  let pointMoves = 0
  for (let i = 0; i < 20_000; i++) {
    const k = String(i)
    if (base.shardFor(k) !== reseeded.shardFor(k)) seedMoves++
    if (base.shardFor(k) !== fewer.shardFor(k)) pointMoves++
  }
  t.ok(seedMoves > 10_000, `another seed re-places most keys (${seedMoves} of 20000)`)
  t.ok(pointMoves > 5_000, `other points per shard re-place many keys (${pointMoves} of 20000)`)
})

t.test('exact shares of the key space agree with the measured distribution', async (t) => {
  const ring = new ShardRing(FOUR, RING)
  const shares = ring.shares()
  t.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9, 'shares sum to 1')
  const counts = [0, 0, 0, 0]
  const n = 400_000
  for (let i = 0; i < n; i++) counts[ring.shardFor(canonicalKey('uuid', randomUUID(), 0, 0))]++
  for (let s = 0; s < 4; s++) {
    t.ok(Math.abs(counts[s] / n - shares[s]) < 0.005, `shard ${s}: share ${shares[s].toFixed(4)}, measured ${(counts[s] / n).toFixed(4)}`)
  }
})

t.test('balance: max/mean share, and the points that bring it within 1.05', async (t) => {
  const good = new ShardRing(FOUR, RING)
  t.equal(balanceOf(good), Math.max(...good.shares()) * 4)
  t.ok(balanceOf(good) <= BALANCE_LIMIT, `1024 points: ${balanceOf(good).toFixed(3)}`)
  t.equal(pointsForBalance(good), 2048, 'the next doubling is offered even when not needed')
  const sparse = new ShardRing(FOUR, { ...RING, pointsPerShard: 16 })
  t.ok(balanceOf(sparse) > BALANCE_LIMIT, `16 points: ${balanceOf(sparse).toFixed(3)}`)
  const points = pointsForBalance(sparse)!
  t.ok(points > 16 && balanceOf(new ShardRing(FOUR, { ...RING, pointsPerShard: points })) <= BALANCE_LIMIT, `${points} points balance it`)
  t.ok(points === 32 || balanceOf(new ShardRing(FOUR, { ...RING, pointsPerShard: points / 2 })) > BALANCE_LIMIT, 'the smallest doubling that does')
  t.equal(pointsForBalance(new ShardRing(FOUR, { ...RING, pointsPerShard: 4096 })), undefined, 'nothing above 4096')
})

t.test('invalid rings are refused', async (t) => {
  t.throws(() => new ShardRing([], RING), /at least one shard/)
  t.throws(() => new ShardRing(['a', 'a'], RING), /duplicate shard name "a"/)
  t.throws(() => new ShardRing(['a'], { ...RING, version: 2 as 1 }), /unsupported ring version 2/)
  t.throws(() => new ShardRing(['a'], { ...RING, pointsPerShard: 0 }), /positive integer/)
  const one = new ShardRing(['only'], RING)
  t.equal(one.shardFor('anything'), 0, 'a single shard owns every key')
})
