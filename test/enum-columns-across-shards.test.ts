// A type created through pgshard (CREATE TYPE … AS ENUM) exists on every shard, but each shard numbers it
// itself, so the shards describe an enum column with different type OIDs. Reads of several shards still merge
// such a column when its values come as text (the same on every shard); what the merge cannot do with it
// (order it, group by it) and binary values (whose arrays would hold the OID) are refused with what to do, and
// columns whose built-in types differ between shards stay refused as schemas that differ.
import pg from 'pg'
import postgres from 'postgres'
import t from 'tap'
import { encodeBind, encodeExecute, encodeParse, encodeTarget, SYNC } from '../src/protocol/FrontendMessages.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { errorFields, RawClient } from './harness/RawClient.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'people', key: 'id', type: 'bigint' }, { name: 'mixed', key: 'id', type: 'bigint' }] }
const fx = await startProxy(t, { topology: { shards: 2, auth: 'trust' }, config: { sharding: SHARDING, users: [{ name: 'app', auth: 'trust' }] } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const [s0, s1] = fx.topo.shards.map((s) => s.primary)

// A type made on one shard alone moves that shard's OID counter, as any history that differs between shards does.
await fx.topo.query(s1!, 'CREATE TYPE padding AS ENUM (\'x\')', 'app')
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
await client.query("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
await client.query('CREATE TABLE people (id bigint PRIMARY KEY, name text, mood mood, moods mood[])')
const MOODS = ['sad', 'ok', 'happy']
const people = Array.from({ length: 12 }, (_, i) => ({ id: i + 1, name: `p${i + 1}`, mood: MOODS[i % 3]! }))
for (const p of people) await client.query('INSERT INTO people (id, name, mood, moods) VALUES ($1, $2, $3, ARRAY[$3, \'ok\']::mood[])', [p.id, p.name, p.mood])
t.same(new Set(people.map((p) => map.shardForTypedHint('bigint', String(p.id)))), new Set([0, 1]), 'rows on both shards')
const oid = async (node: typeof s0) => (await fx.topo.query(node!, "SELECT 'mood'::regtype::oid AS oid", 'app'))[0]!.oid
t.test('the shards number the enum differently', async (t) => {
  const [oid0, oid1] = [await oid(s0), await oid(s1)]
  t.not(oid0, oid1, `pg_type.oid of mood: ${oid0} on one shard, ${oid1} on the other`)
})

t.test('node-postgres and postgres.js read an enum column of every shard (text format)', async (t) => {
  const rows = (await client.query('SELECT id, name, mood, moods FROM people ORDER BY id')).rows
  t.same(rows.map((r) => [Number(r.id), r.mood]), people.map((p) => [p.id, p.mood]), 'every row, in order, with its label')
  t.same(rows[0].moods, '{sad,ok}', 'an enum array as its text')
  const sad = (await client.query("SELECT id FROM people WHERE mood = 'sad' ORDER BY id")).rows.map((r) => Number(r.id))
  t.same(sad, people.filter((p) => p.mood === 'sad').map((p) => p.id), 'filtered by its label on each shard')
  const counted = await client.query('SELECT mood::text AS mood, count(*)::int AS n FROM people GROUP BY 1 ORDER BY 1')
  t.same(counted.rows, [{ mood: 'happy', n: 4 }, { mood: 'ok', n: 4 }, { mood: 'sad', n: 4 }], 'grouped by its text')
  const sql = postgres(fx.url, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const viaJs = await sql`SELECT id, mood FROM people WHERE id <= ${4} ORDER BY id`
  t.same(viaJs.map((r) => [Number(r.id), r.mood]), people.slice(0, 4).map((p) => [p.id, p.mood]), 'postgres.js (extended protocol)')
})

t.test('what the merge cannot do with such a column is refused with what to do', async (t) => {
  const ordered = await client.query('SELECT id FROM people ORDER BY mood, id').catch((e: pg.DatabaseError) => e)
  t.match(ordered, { code: '0A000', message: /cannot order values of type oid \d+ \(a type created on the shards: an enum/, hint: /::text, which orders an enum by its labels. text, not by their declared order/ })
  const grouped = await client.query('SELECT mood, count(*) FROM people GROUP BY mood').catch((e: pg.DatabaseError) => e)
  t.match(grouped, { code: '0A000', message: /values of type oid \d+ \(a type created on the shards/ })
  t.equal((await client.query('SELECT count(*)::int AS n FROM people')).rows[0].n, 12, 'the session goes on')
})

t.test('binary values of such a column are refused: they may hold the OID', async (t) => {
  const raw = await RawClient.login(fx.port, 'app')
  t.teardown(() => raw.end())
  raw.send(Buffer.concat([encodeParse('', 'SELECT id, moods FROM people', []), encodeBind('', '', [], [], [1]), encodeTarget('Describe', 'P', ''), encodeExecute('', 0), SYNC]))
  const replies = await raw.until('Z')
  const error = replies.find((m) => m.type === 'E')
  t.ok(error, 'an error, not rows')
  t.match(errorFields(error!.body), { code: '0A000', message: /column "moods" has a type made on each shard .* whose OID differs between shards/, hint: /text format/ })
})

t.test('built-in types that differ between shards are still schemas that differ', async (t) => {
  await fx.topo.query(s0!, 'CREATE TABLE mixed (id bigint, v int); ALTER TABLE mixed OWNER TO app', 'app')
  await fx.topo.query(s1!, 'CREATE TABLE mixed (id bigint, v text); ALTER TABLE mixed OWNER TO app', 'app')
  await fx.topo.query(s0!, 'INSERT INTO mixed VALUES (1, 1)', 'app')
  await fx.topo.query(s1!, "INSERT INTO mixed VALUES (2, 'two')", 'app')
  const mixed = await client.query('SELECT v FROM mixed').catch((e: pg.DatabaseError) => e)
  t.match(mixed, { code: '0A000', message: /shards s\d and s\d give column "v" different types; their schemas differ/, hint: /same DDL on every shard/ })
})
