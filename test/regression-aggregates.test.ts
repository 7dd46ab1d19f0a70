// corr, covar_pop, covar_samp, the regr_* aggregates and bit_and/bit_or/bit_xor across shards: each shard's part
// combined as Postgres's parallel aggregation combines its workers', checked against the same rows in one table on
// one server (float results to within a few units in the last place: the sums run in another order).
import pg from 'pg'
import t from 'tap'
import { startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'points', key: 'id', type: 'integer' as const }] }
const fx = await startProxy(t, { topology: { shards: 3 }, config: { sharding: SHARDING } })

const c = new pg.Client(fx.pgOptions)
await c.connect()
t.teardown(() => c.end())
for (const table of ['points', 'points_one']) {
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, grp int, x float8, y numeric, n int, flags bigint)`)
  // y follows x with noise; some NULLs on either side; grp 3 has a single pair, grp 4 a constant x.
  await c.query(`INSERT INTO ${table} (id, grp, x, y, n, flags)
    SELECT g, g % 3, CASE WHEN g % 17 = 0 THEN NULL ELSE g * 0.5 + sin(g) END,
      CASE WHEN g % 13 = 0 THEN NULL ELSE round((g * 1.7 + cos(g) * 3)::numeric, 4) END, g % 11, (g * 2654435761) % 1000003
    FROM generate_series(1, 400) g`)
  await c.query(`INSERT INTO ${table} (id, grp, x, y, n, flags) VALUES (1001, 3, 2.5, 7, 1, 5), (1002, 4, 1, 2, 2, 6), (1003, 4, 1, 3, 3, 7)`)
}
const spread = await fx.topo.queryPrimaries('SELECT count(*)::int AS n FROM points', 'app')

t.test('the rows are on every shard', async (t) => {
  t.ok(spread.every((r) => (r[0]!.n as number) > 50), spread.map((r) => r[0]!.n).join(', '))
})

const STATS = ['corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy']

/** Equal, floats to within a relative 1e-12 (or 1e-12 absolute near zero). */
function near(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a), Math.abs(b))
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => near(x, b[i]))
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a as object)
    return keys.length === Object.keys(b as object).length && keys.every((k) => near((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  }
  return a === b
}

const floats = { getTypeParser: (oid: number) => (v: string) => (oid === 701 ? Number(v) : oid === 20 ? Number(v) : v) } as unknown as pg.CustomTypesConfig

const QUERIES = [
  `SELECT ${STATS.map((f) => `${f}(y, x) AS ${f}`).join(', ')} FROM {t}`,
  `SELECT grp, ${STATS.map((f) => `${f}(x, n) AS ${f}`).join(', ')} FROM {t} GROUP BY grp ORDER BY grp`,
  'SELECT corr(y, x) FILTER (WHERE n > 4) AS c, regr_slope(y, x) FILTER (WHERE n > 4) AS s, count(*) AS rows FROM {t}',
  'SELECT grp, covar_samp(y, x) AS cs, corr(y, x) AS r FROM {t} WHERE grp >= 3 GROUP BY grp ORDER BY grp',
  'SELECT regr_count(y, x) AS c, corr(y, x) AS r FROM {t} WHERE id < 0',
  'SELECT grp, bit_and(flags) AS a, bit_or(flags) AS o, bit_xor(flags) AS x, bit_or(n) AS small FROM {t} GROUP BY grp ORDER BY grp',
  'SELECT round(corr(y, x)::numeric, 9) AS r, regr_slope(y, x) > 3 AS steep FROM {t}',
]
for (const q of QUERIES) {
  t.test(q.replace('{t}', 'points'), async (t) => {
    const expected = await c.query({ text: q.replace('{t}', 'points_one'), types: floats })
    const merged = await c.query({ text: q.replace('{t}', 'points'), types: floats })
    t.ok(near(merged.rows, expected.rows), `merged across shards as one server answers:\n${JSON.stringify(merged.rows)}\n${JSON.stringify(expected.rows)}`)
    t.same(merged.fields.map((f) => [f.name, f.dataTypeID]), expected.fields.map((f) => [f.name, f.dataTypeID]), 'named and typed as Postgres does')
  })
}

t.test('binary results', async (t) => {
  const q = 'SELECT grp, corr(y, x) AS r, regr_count(y, x) AS n, bit_xor(flags) AS x FROM {t} WHERE id > $1 GROUP BY grp ORDER BY grp'
  const expected = await c.query({ text: q.replace('{t}', 'points_one'), values: [0], binary: true } as pg.QueryConfig)
  const merged = await c.query({ text: q.replace('{t}', 'points'), values: [0], binary: true } as pg.QueryConfig)
  t.equal(merged.rows.length, expected.rows.length)
  t.ok(near(merged.rows.map((r) => [r.grp, r.n, r.x]), expected.rows.map((r) => [r.grp, r.n, r.x])), 'counts and bits alike')
})

t.test('what stays refused', async (t) => {
  await t.rejects(c.query('SELECT corr(DISTINCT y, x) FROM points'), { code: '0A000', message: /corr\(DISTINCT …\)/ })
  await t.rejects(c.query('SELECT bit_xor(DISTINCT n) FROM points'), { code: '0A000', message: /bit_xor\(DISTINCT …\)/ })
})
