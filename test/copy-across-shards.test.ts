// COPY across shards, with real clients (psql's \copy, pg-copy-streams) against real servers read directly:
// FROM STDIN into a sharded table sends each row to the shard of its key, into a reference table to every
// shard, all or nothing; TO STDOUT of a table or a filtering query gives every shard's rows.
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import t from 'tap'
import { COPY_DONE, encodeCopyData, encodeQuery } from '../src/protocol/FrontendMessages.js'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { RawClient } from './harness/RawClient.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { runCommand } from './harness/runCommand.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = {
  tables: [
    { name: 'items', key: 'id', type: 'bigint' },
    { name: 'notes', key: 'tenant', type: 'text' },
    { name: 'bulk', key: 'id', type: 'bigint' },
  ],
  reference_tables: ['regions'],
}

const fx = await startProxy(t, { topology: { shards: 2, auth: 'trust' }, config: { sharding: SHARDING, users: [{ name: 'app', auth: 'trust' }] } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
await client.query('CREATE TABLE items (id bigint PRIMARY KEY, label text, qty int)')
await client.query('CREATE TABLE notes (tenant text, body text)')
await client.query('CREATE TABLE regions (code text PRIMARY KEY, name text)')
await client.query('CREATE TABLE bulk (id bigint, pad text)')

/** Each shard's rows of `sql`, read directly from its primary as the superuser. */
async function onShards(sql: string): Promise<string[][][]> {
  const out: string[][][] = []
  for (const shard of fx.topo.shards) {
    const direct = new pg.Client({ host: '127.0.0.1', port: shard.primary.port, user: 'postgres', password: fx.topo.superuser.password, database: 'app' })
    await direct.connect()
    try {
      out.push((await direct.query({ text: sql, rowMode: 'array' })).rows)
    } finally {
      await direct.end()
    }
  }
  return out
}

/** Rows whose key the ring places on another shard than the one holding them. */
function misplaced(perShard: string[][][], keyType: 'bigint' | 'text'): number {
  return perShard.reduce((n, rows, shard) => n + rows.filter((r) => map.ring.shardFor(canonicalKey(keyType, r[0], 0, 0)) !== shard).length, 0)
}

t.test('psql \\copy of 3,000 rows into a sharded table: each row on the shard of its key', async (t) => {
  const lines = Array.from({ length: 3000 }, (_, i) => `${i + 1}\tlabel\\t${i + 1}\t${i % 10}\n`).join('')
  const r = await runCommand('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', fx.dsn, '-c', '\\copy items (id, label, qty) FROM STDIN'], { env: fx.env, input: lines })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /COPY 3000/)
  const perShard = await onShards('SELECT id::text, label FROM items')
  t.equal(misplaced(perShard, 'bigint'), 0, `0 rows misplaced (per shard: ${perShard.map((s) => s.length).join(', ')})`)
  t.ok(perShard.every((s) => s.length > 1000), 'both shards got a share')
  t.equal((await client.query('SELECT label FROM items WHERE id = 42')).rows[0].label, 'label\t42', 'a row reads back through pgshard, escapes decoded by the server')
})

t.test('pg-copy-streams CSV with a header, quoted commas and line ends, in odd-sized chunks; no column list', async (t) => {
  const rows = Array.from({ length: 500 }, (_, i) => [`tenant-${i % 37}`, `note ${i}, "quoted"\nsecond line`])
  const csv = 'tenant,body\n' + rows.map(([a, b]) => `${a},"${b.replaceAll('"', '""')}"\n`).join('')
  const bytes = Buffer.from(csv)
  const chunks = Array.from({ length: Math.ceil(bytes.length / 333) }, (_, i) => bytes.subarray(i * 333, (i + 1) * 333))
  const stream = client.query(copyFrom('COPY notes FROM STDIN (FORMAT csv, HEADER true)'))
  await pipeline(Readable.from(chunks), stream)
  t.equal(stream.rowCount, 500, 'the client is told the total')
  const perShard = await onShards('SELECT tenant, body FROM notes')
  t.equal(misplaced(perShard, 'text'), 0)
  t.same(perShard.flat().map((r) => r.join('|')).sort(), rows.map((r) => r.join('|')).sort(), 'every row arrived intact, none twice')
})

t.test('into a reference table: every row on every shard', async (t) => {
  const stream = client.query(copyFrom('COPY regions FROM STDIN'))
  await pipeline(Readable.from(['eu\tEurope\nas\tAsia\n', 'am\tAmericas\n']), stream)
  t.equal(stream.rowCount, 3, 'counted once, as the table has them once')
  t.same((await onShards('SELECT code FROM regions ORDER BY code')).map((s) => s.map((r) => r[0])), [['am', 'as', 'eu'], ['am', 'as', 'eu']])
})

t.test('all or nothing: a row a shard refuses, a key pgshard cannot read, the client’s CopyFail', async (t) => {
  const before = await onShards('SELECT count(*)::text FROM items')
  const copy = async (data: string) => {
    const stream = client.query(copyFrom('COPY items (id, label) FROM STDIN'))
    await pipeline(Readable.from([data]), stream)
  }
  // Rows 5001… are new; id 42 exists on one shard only: that shard refuses, every shard rolls back.
  const fresh = Array.from({ length: 200 }, (_, i) => `${5001 + i}\tnew\n`).join('')
  await t.rejects(copy(fresh + '42\tdup\n'), { code: '23505' })
  await t.rejects(copy(fresh + 'forty-two\tbad\n'), { code: '22P02', message: /invalid input syntax for sharding key of type bigint: "forty-two" \(COPY row 201, column "id"\)/ })
  await t.rejects(copy(fresh + '\\N\tnull key\n'), { code: '23502' })
  const failing = client.query(copyFrom('COPY items (id, label) FROM STDIN'))
  failing.write(Buffer.from(fresh))
  await t.rejects(
    new Promise((resolve, reject) => {
      failing.on('error', reject)
      failing.on('finish', resolve)
      failing.destroy(new Error('changed my mind'))
    }),
    /changed my mind/,
  )
  t.same(await onShards('SELECT count(*)::text FROM items'), before, 'no shard kept a row of any of them')
  t.equal((await client.query('SELECT count(*)::int AS n FROM items WHERE id = 42')).rows[0].n, 1, 'the session goes on')
})

t.test('refused where it cannot be all or nothing: inside a transaction; a COPY without the key column', async (t) => {
  const inTx = await runCommand('psql', ['-X', '-At', fx.dsn, '-c', 'BEGIN', '-c', '\\copy items (id, label) FROM STDIN'], { env: fx.env, input: '7001\tx\n' })
  t.match(inTx.stderr, /only for a COPY outside a transaction block/, 'psql is told why')
  const noKey = await runCommand('psql', ['-X', '-At', fx.dsn, '-c', '\\copy items (label) FROM STDIN'], { env: fx.env, input: 'x\n' })
  t.match(noKey.stderr, /must include its sharding key column id/)
  t.equal((await client.query('SELECT count(*)::int AS n FROM items WHERE id = 7001')).rows[0].n, 0)
})

t.test('a split COPY waits for a frozen shard: the client is held back, not buffered in the proxy', async (t) => {
  const MB = 1024 * 1024
  const writer = await RawClient.login(fx.port, 'app')
  t.teardown(() => writer.end())
  writer.send(encodeQuery('COPY bulk (id, pad) FROM STDIN'))
  await writer.until('G')
  const pad = 'y'.repeat(1000)
  let rows = 0
  let written = 0
  const writing = (async () => {
    while (written < 120 * MB) {
      const chunk = encodeCopyData(Array.from({ length: 64 }, () => Buffer.from(`${++rows}\t${pad}\n`)))
      await writer.write(chunk)
      written += chunk.length
    }
    writer.send(COPY_DONE)
    return writer.until('Z', 60_000)
  })()
  t.ok(await waitFor(() => written >= 10 * MB, 20_000), `the COPY is flowing (${(written / MB).toFixed(0)} MB written)`)
  const frozen = fx.topo.shards[1].primary
  await fx.topo.kill(frozen, 'SIGSTOP', 'all')
  const atFreeze = written
  await new Promise((r) => setTimeout(r, 2500))
  const whileFrozen = written - atFreeze
  await fx.topo.kill(frozen, 'SIGCONT', 'all')
  const reply = await writing
  t.ok(whileFrozen < 32 * MB, `${(whileFrozen / MB).toFixed(1)} MB more in the 2.5 s shard s1 was frozen (${(atFreeze / MB).toFixed(0)} MB before)`)
  t.ok(reply.some((m) => m.type === 'C') && !reply.some((m) => m.type === 'E'), 'the COPY completed once the shard resumed')
  t.equal((await client.query('SELECT count(*)::int AS n FROM bulk')).rows[0].n, rows, `all ${rows} rows arrived`)
})

t.test('COPY … TO STDOUT of a table or a filtering query: every shard’s rows once, a CSV header once', async (t) => {
  const read = async (sql: string, c = client): Promise<string> => {
    const chunks: Buffer[] = []
    const stream = c.query(copyTo(sql))
    for await (const chunk of stream) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }
  const direct = (await onShards('SELECT id::text, label FROM items')).flat().map((r) => `${r[0]}\t${r[1].replaceAll('\t', '\\t')}`)
  const all = (await read('COPY items (id, label) TO STDOUT')).split('\n').filter((l) => l !== '')
  t.equal(all.length, direct.length, `${all.length} rows`)
  t.same(all.sort(), direct.sort(), 'exactly the rows the shards hold')
  const csv = (await read('COPY (SELECT id, label FROM items WHERE qty = 3) TO STDOUT (FORMAT csv, HEADER)')).split('\n').filter((l) => l !== '')
  t.equal(csv[0], 'id,label', 'the header comes first')
  t.equal(csv.filter((l) => l === 'id,label').length, 1, 'and once')
  t.equal(csv.length - 1, 300, 'the rows of every shard that match')
  const psql = await runCommand('psql', ['-X', '-At', fx.dsn, '-c', 'BEGIN READ ONLY', '-c', '\\copy (SELECT id FROM items WHERE id <= 100) TO STDOUT', '-c', 'COMMIT'], { env: fx.env })
  t.equal(psql.stdout.split('\n').filter((l) => /^\d+$/.test(l)).length, 100, `in a READ ONLY transaction: ${psql.stderr}`)

  await t.rejects(read('COPY (SELECT id FROM items ORDER BY id) TO STDOUT'), { code: '0A000', message: /a query that does more than filter and pick columns/ })
  await t.rejects(read('COPY (SELECT i.id, n.body FROM items i JOIN notes n ON n.body = i.label) TO STDOUT'), { code: '0A000', message: /a join across shards: notes is not joined on its sharding key to items/ }, 'a join not on the keys: refused as a read, not each shard\u2019s half of it')
  await t.rejects(read('COPY (SELECT id FROM items WHERE label IN (SELECT body FROM notes)) TO STDOUT'), { code: '0A000', message: /a subquery over sharded table notes in a read across shards/ })
  await t.rejects(read('COPY (SELECT id, 100 / qty FROM items) TO STDOUT'), { code: '22012' }, 'a shard’s error reaches the client')
  await client.query('BEGIN READ ONLY')
  t.equal((await client.query('SELECT count(*)::int AS n FROM items')).rows[0].n, direct.length, 'a plain read of every shard in a READ ONLY transaction too')
  await client.query('COMMIT')
  await client.query('BEGIN')
  t.equal((await read('COPY items TO STDOUT')).split('\n').filter((l) => l !== '').length, direct.length, 'in a read-write transaction, which may read every shard')
  await client.query('ROLLBACK')
  await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE')
  await t.rejects(read('COPY items TO STDOUT'), { code: '0A000', message: /this statement needs every shard .*cross-shard transactions are not supported/ }, 'but not in a SERIALIZABLE one')
  await client.query('ROLLBACK')
  t.equal((await client.query('SELECT count(*)::int AS n FROM items WHERE id = 1')).rows[0].n, 1, 'the session goes on')
})

t.test('any other message than COPY data during a split COPY ends it with 08P01, as a server does; nothing is kept', async (t) => {
  const raw = await RawClient.login(fx.port, 'app')
  t.teardown(() => raw.end())
  raw.send(encodeQuery('COPY bulk (id, pad) FROM STDIN'))
  await raw.until('G')
  raw.send(encodeCopyData([Buffer.from('900001\tx\n900002\ty\n')]))
  raw.send(encodeQuery('SELECT 1'))
  const reply = await raw.until('Z')
  const error = reply.find((m) => m.type === 'E')
  t.match(error?.body.toString('latin1') ?? 'no error', /08P01.*unexpected message type Q during COPY from stdin/s)
  raw.send(encodeQuery('SELECT 2'))
  t.ok((await raw.until('Z')).some((m) => m.type === 'D'), 'the session goes on')
  // A CopyFail without its terminating NUL still ends the COPY (and lets its connections go).
  raw.send(encodeQuery('COPY bulk (id, pad) FROM STDIN'))
  await raw.until('G')
  raw.send(encodeCopyData([Buffer.from('900003\tz\n')]))
  raw.send(Buffer.from([0x66, 0, 0, 0, 7, 0x6e, 0x6f, 0x21]))
  const failed = await raw.until('Z')
  t.match(failed.find((m) => m.type === 'E')?.body.toString('latin1') ?? 'no error', /COPY from stdin failed: no!/, 'a malformed CopyFail ends the COPY too')
  t.equal((await client.query('SELECT count(*)::int AS n FROM bulk WHERE id > 900000')).rows[0].n, 0, 'no row of the ended COPY was kept')
})
