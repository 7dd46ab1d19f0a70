// A type created through pgshard (CREATE TYPE … AS ENUM) exists on every shard, but each shard numbers it
// itself, so the shards describe an enum column with different type OIDs. Reads of several shards still merge
// such a column when its values come as text (the same on every shard), and order, group and count it by the
// enum's declared labels, which pgshard reads from the shards' catalogs (again on its own when a merge meets a
// type or a label made since). What the merge cannot do with another created type, and binary values (whose
// arrays would hold the OID), are refused with what to do; built-in types that differ stay schemas that differ.
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
await client.query('CREATE TYPE pair AS (a int, b int)')
await client.query('CREATE TABLE people (id bigint PRIMARY KEY, name text, mood mood, moods mood[], pr pair)')
const MOODS = ['sad', 'ok', 'happy']
const people = Array.from({ length: 12 }, (_, i) => ({ id: i + 1, name: `p${i + 1}`, mood: MOODS[i % 3]! }))
for (const p of people) await client.query('INSERT INTO people (id, name, mood, moods, pr) VALUES ($1, $2, $3, ARRAY[$3, \'ok\']::mood[], ROW($4, 0))', [p.id, p.name, p.mood, p.id])
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

/** Runs `sql` until it answers (a merge that met a type made since the catalogs were read has them read again). */
async function eventually(sql: string): Promise<{ rows: Record<string, unknown>[]; first: unknown }> {
  let first: unknown
  for (let attempt = 0; attempt < 50; attempt++) {
    const answer = await client.query(sql).catch((e: pg.DatabaseError) => e)
    if (!(answer instanceof Error)) return { rows: answer.rows, first }
    first ??= answer
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`${sql}: no answer after 50 attempts; first error: ${String(first)}`)
}

t.test('an enum column is ordered, grouped and counted by its declared labels', async (t) => {
  const ordered = await eventually('SELECT id, mood FROM people ORDER BY mood, id')
  const declared = (p: { id: number; mood: string }) => MOODS.indexOf(p.mood) * 100 + p.id
  t.same(ordered.rows.map((r) => Number(r.id)), [...people].sort((a, b) => declared(a) - declared(b)).map((p) => p.id), 'sad, ok, happy: the declared order, not the text order')
  t.same((await client.query('SELECT mood, count(*)::int AS n FROM people GROUP BY mood ORDER BY mood DESC')).rows, [{ mood: 'happy', n: 4 }, { mood: 'ok', n: 4 }, { mood: 'sad', n: 4 }], 'GROUP BY and ORDER BY … DESC')
  t.same((await client.query('SELECT min(mood) AS lo, max(mood) AS hi, count(DISTINCT mood)::int AS kinds FROM people')).rows, [{ lo: 'sad', hi: 'happy', kinds: 3 }], 'min, max and count(DISTINCT)')
  t.same((await client.query('SELECT DISTINCT mood FROM people ORDER BY 1')).rows.map((r) => r.mood), MOODS, 'DISTINCT')

  await client.query("ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok'")
  await client.query("INSERT INTO people (id, name, mood) VALUES (13, 'p13', 'meh')")
  const after = await eventually('SELECT DISTINCT mood FROM people ORDER BY mood')
  t.same(after.rows.map((r) => r.mood), ['sad', 'meh', 'ok', 'happy'], 'a label added since: read from the catalogs again, in its place')
  if (after.first !== undefined) t.match(after.first, { code: '0A000', message: /enum label "meh" of column "mood" is not among the labels pgshard read/, hint: /RELOAD/ }, 'until then: refused, not misordered')
  await client.query('DELETE FROM people WHERE id = 13')
})

t.test('what the merge cannot do with another created type is refused with what to do', async (t) => {
  const ordered = await client.query('SELECT id FROM people ORDER BY pr, id').catch((e: pg.DatabaseError) => e)
  t.match(ordered, { code: '0A000', message: /cannot order values of type oid \d+ \(a type created on the shards: an enum, an extension's type\)/, hint: /cast the column \(e\.g\. ::text, which orders an enum by its labels. text/ })
  const grouped = await client.query('SELECT pr, count(*) FROM people GROUP BY pr').catch((e: pg.DatabaseError) => e)
  t.match(grouped, { code: '0A000', message: /values of type oid \d+ \(a type created on the shards/ })
  t.same((await client.query('SELECT count(*)::int AS n, count(pr)::int AS pairs FROM people')).rows[0], { n: 12, pairs: 12 }, 'the session goes on')
  const rows = await client.query('SELECT p FROM people p WHERE (p.pr).a <= 2 ORDER BY p.id')
  t.same(rows.rows.map((r) => r.p), ['(1,p1,sad,"{sad,ok}","(1,0)")', '(2,p2,ok,"{ok,ok}","(2,0)")'], 'a table\u2019s row type is returned as text')
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
