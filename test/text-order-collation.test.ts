// Text across shards orders as the shards' database does. In a database whose collation is ICU's en-US, ORDER BY,
// min/max, windows and LIMIT over text merge in that collation's order (case and accents as a person reads them,
// not bytes: "apple" before "Banana"), jsonb's strings with them, and a COLLATE clause in ORDER BY orders by the collation it names. Checked
// against the same rows in one table on one server.
import pg from 'pg'
import t from 'tap'
import { answersAsOneServer } from './harness/oneServerAnswers.js'
import { startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'words', key: 'id', type: 'integer' as const }] }
const fx = await startProxy(t, { topology: { shards: 2, icuLocales: { app: 'en-US' } }, config: { sharding: SHARDING } })

const WORDS = [
  'apple', 'Apple', 'APPLE', 'banana', 'Banana', 'cherry', 'Zebra', 'zebra', 'éclair', 'Eclair', 'eclair', 'Émile',
  'résumé', 'resume', 'Resume', 'a b', 'ab', 'a-b', 'a_b', '10', '9', '1a', 'A1', 'ß', 'ss', 'Straße', 'strasse',
  'ø', 'o', 'ö', 'z', 'Å', 'å', 'aa', '', ' ', 'Ω', 'ω', '日本', 'naïve', 'naive', 'co-op', 'coop', 'Co-op',
]
const rows = [...WORDS, ...WORDS.map((w) => `${w}x`)].map((word, i) => ({ id: i + 1, word }))

const c = new pg.Client(fx.pgOptions)
await c.connect()
t.teardown(() => c.end())
for (const table of ['words', 'words_one']) {
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, word text, grp int)`)
  await c.query(`INSERT INTO ${table} (id, word, grp) SELECT i, w, i % 3 FROM unnest($1::int[], $2::text[]) AS u(i, w)`, [rows.map((r) => r.id), rows.map((r) => r.word)])
}
// The catalogs read now: what the merge knows of the database's collation.
await fx.app.health.refreshCatalogs()

t.test('the shards\u2019 database orders text by ICU', async (t) => {
  const [db] = await fx.topo.query(fx.topo.shards[0]!.primary, "SELECT to_jsonb(d) ->> 'datlocprovider' AS p FROM pg_database d WHERE datname = 'app'", 'app')
  t.equal(db!.p, 'i')
})

const QUERIES = [
  'SELECT word FROM {t} ORDER BY word, id',
  'SELECT word FROM {t} ORDER BY word DESC, id',
  'SELECT word, id FROM {t} ORDER BY word, id LIMIT 9 OFFSET 4',
  'SELECT min(word) AS lo, max(word) AS hi FROM {t}',
  'SELECT grp, min(word) AS lo, max(word) AS hi FROM {t} GROUP BY grp ORDER BY grp',
  'SELECT DISTINCT word FROM {t} ORDER BY word',
  'SELECT word, row_number() OVER (ORDER BY word, id) AS n FROM {t} ORDER BY n',
  'SELECT word FROM {t} ORDER BY word COLLATE "C", id',
  'SELECT word FROM {t} ORDER BY word COLLATE "und-x-icu" DESC, id',
  "SELECT grp, count(*) AS n FROM {t} GROUP BY grp HAVING max(word) > 'Zebra' ORDER BY grp",
  "SELECT grp, count(*) AS n FROM {t} WHERE word IN ('apple', 'Banana', 'Zebra', 'zebra') GROUP BY grp HAVING min(word) < 'B' ORDER BY grp",
  'SELECT grp, array_agg(word ORDER BY word) AS words FROM {t} GROUP BY grp ORDER BY grp',
  // A cast keeps the collation of what it casts.
  'SELECT word::name AS n FROM {t} ORDER BY 1, id',
  // jsonb's strings and keys order by the database's collation too.
  'SELECT to_jsonb(word) AS j FROM {t} ORDER BY 1, id',
  'SELECT jsonb_build_object(word, grp) AS j FROM {t} ORDER BY 1 DESC, id',
]
answersAsOneServer(t, c, QUERIES, 'words', 'words_one')

t.test('the order is the collation\u2019s, not bytes', async (t) => {
  const r = await c.query("SELECT word FROM words WHERE word IN ('apple', 'Banana', 'cherry', 'Zebra') ORDER BY word")
  t.same(r.rows.map((x) => x.word), ['apple', 'Banana', 'cherry', 'Zebra'])
})

t.test('a COLLATE clause pgshard cannot tell is refused, not merged by the wrong rules', async (t) => {
  const made = await c.query("SELECT count(*)::int AS n FROM pg_collation WHERE collname = 'nocase'")
  if (made.rows[0].n === 0) await c.query("/* pgshard: shard=s0 */ CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
  await c.query("/* pgshard: shard=s1 */ CREATE COLLATION IF NOT EXISTS nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
  await t.rejects(c.query('SELECT word FROM words ORDER BY word COLLATE nocase'), { code: '0A000', message: /cannot order by collation "nocase" when merging results from several shards/ })
  t.same((await c.query('SELECT count(*)::int AS n FROM words')).rows, [{ n: rows.length }], 'the client goes on')
})
