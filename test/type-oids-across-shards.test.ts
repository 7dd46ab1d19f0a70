// Each shard numbers a type created through pgshard itself, and a client's type lookups (asyncpg, psycopg's
// TypeInfo, pgjdbc) read pg_type on the default shard. So pgshard tells clients the default shard's OID for every
// created type, whichever shard answered (RowDescription, ParameterDescription, merged descriptions), and gives
// a shard its own OID for a parameter type a client named in a Parse. The pairs come from a catalog read, which
// follows DDL on types by itself.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import t from 'tap'
import { encodeBind, encodeExecute, encodeParse, encodeQuery, encodeTarget, SYNC } from '../src/protocol/FrontendMessages.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { assertDriverChecks } from './harness/driverChecks.js'
import { RawClient } from './harness/RawClient.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'python', 'type_oids_client.py')
const SHARDING = { tables: [{ name: 'people', key: 'id', type: 'bigint' }] }
const MOODS = ['sad', 'ok', 'happy']

t.test('a created type has the default shard\u2019s OID on the wire, whichever shard answers', async (t) => {
  const fx = await startProxy(t, { topology: { shards: 2, auth: 'trust' }, config: { sharding: SHARDING, users: [{ name: 'app', auth: 'trust' }] } })
  const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
  const [s0, s1] = fx.topo.shards.map((s) => s.primary)
  // A type made on one shard alone moves that shard's OID counter, as any history that differs between shards does.
  await fx.topo.query(s1!, "CREATE TYPE padding AS ENUM ('x')", 'app')
  const client = new pg.Client(fx.pgOptions)
  await client.connect()
  t.teardown(() => client.end())
  await client.query("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
  await client.query('CREATE TABLE people (id bigint PRIMARY KEY, mood mood, moods mood[])')
  const ids = Array.from({ length: 12 }, (_, i) => i + 1)
  for (const id of ids) await client.query('INSERT INTO people (id, mood, moods) VALUES ($1, $2, ARRAY[$2]::mood[])', [id, MOODS[id % 3]])
  const onShard = (s: number) => ids.filter((id) => map.shardForTypedHint('bigint', String(id)) === s)
  const [onDefault, onOther] = [onShard(map.defaultShard), onShard(1 - map.defaultShard)]
  t.equal(map.defaultShard, 0, 'the default shard is s0')
  t.ok(onDefault.length > 1 && onOther.length > 1, `rows on both shards: ${onDefault.join(',')} / ${onOther.join(',')}`)

  const oids = async (node: typeof s0) => (await fx.topo.query(node!, "SELECT 'mood'::regtype::int AS mood, 'mood[]'::regtype::int AS moods", 'app'))[0] as { mood: number; moods: number }
  const [own0, own1] = [await oids(s0), await oids(s1)]
  t.not(own0.mood, own1.mood, `the shards number mood differently: ${own0.mood} and ${own1.mood}`)

  const described = async (id: number) => (await client.query('SELECT mood, moods FROM people WHERE id = $1', [id])).fields.map((f) => f.dataTypeID)
  // The CREATE TYPE has the catalogs read again a moment later: until then the other shard's own numbers show.
  let other: number[] = []
  for (let i = 0; i < 40; i++) {
    other = await described(onOther[0]!)
    if (other[0] === own0.mood) break
    await new Promise((r) => setTimeout(r, 250))
  }
  t.same(other, [own0.mood, own0.moods], 'a row of the other shard: mood and mood[] as the default shard numbers them')
  t.same(await described(onDefault[0]!), [own0.mood, own0.moods], 'a row of the default shard: its own numbers')
  const merged = await client.query('SELECT id, mood FROM people ORDER BY mood, id')
  t.equal(merged.fields[1]!.dataTypeID, own0.mood, 'a read of both shards: the default shard\u2019s number')
  t.same(merged.rows.map((r) => Number(r.id)), [...ids].sort((a, b) => (a % 3) - (b % 3) || a - b), 'in the declared order')

  const raw = await RawClient.login(fx.port, 'app')
  t.teardown(() => raw.end())
  const k = onOther[0]!
  // A statement described alone goes to the default shard; inside a transaction on the other shard, it is described there.
  raw.send(encodeQuery(`BEGIN; SELECT id FROM people WHERE id = ${k}`))
  await raw.until('Z')
  raw.send(Buffer.concat([encodeParse('', 'SELECT id FROM people WHERE mood = $1', []), encodeTarget('Describe', 'S', ''), SYNC]))
  const params = (await raw.until('Z')).find((m) => m.type === 't')
  t.equal(params?.body.readInt32BE(2), own0.mood, 'ParameterDescription from the other shard: the default shard\u2019s number')
  raw.send(encodeQuery('ROLLBACK'))
  await raw.until('Z')

  raw.send(Buffer.concat([
    encodeParse('', 'SELECT id FROM people WHERE id = $1 AND mood = $2', [20, own0.mood]),
    encodeBind('', '', [Buffer.from(String(k)), Buffer.from(MOODS[k % 3]!)], [], []),
    encodeExecute('', 0),
    SYNC,
  ]))
  const replies = await raw.until('Z')
  const rows = replies.filter((m) => m.type === 'D').map((m) => m.body.toString('utf8', 6))
  t.same([rows, replies.find((m) => m.type === 'E')?.body.toString()], [[String(k)], undefined], 'a Parse naming the default shard\u2019s OID runs on the other shard as its own')

  await assertDriverChecks(t, '/usr/bin/python3', [script, fx.url, onDefault.join(','), onOther.join(',')], [
    'asyncpg reads the enum of either shard',
    'asyncpg reads the enum across shards (binary, in declared order)',
    'asyncpg binds an enum parameter on the other shard',
    'psycopg loads the registered enum from either shard',
    'psycopg sends an enum parameter (its OID) to the other shard',
  ], 120_000)
})
