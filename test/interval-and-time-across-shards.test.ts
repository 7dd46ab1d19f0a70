// interval, time and timetz values across shards: ORDER BY, GROUP BY, DISTINCT, min/max, HAVING, array_agg and
// percentile_disc over them, in each IntervalStyle a server prints and in binary, checked against one Postgres
// holding the same rows. An interval orders by its span with a month as 30 days: '1 mon' and '30 days' are equal.
import pg from 'pg'
import t from 'tap'
import { startWithPlainTwin } from './harness/plainTwin.js'

const SHARDING = { tables: [{ name: 'spans', key: 'id', type: 'bigint' }] }
const SCHEMA = ['CREATE TABLE spans (id bigint PRIMARY KEY, grp int, d interval, at time, tz timetz)']
/** Values as the server printed them, so that both answers compare byte for byte. */
const RAW = { getTypeParser: () => (v: unknown) => v } as unknown as pg.CustomTypesConfig

const QUERIES: { sql: string; binary?: true }[] = [
  { sql: 'SELECT id, d FROM spans ORDER BY d DESC NULLS LAST, id LIMIT 40' },
  { sql: 'SELECT id, at FROM spans ORDER BY at NULLS FIRST, id LIMIT 40' },
  { sql: 'SELECT id, d, at FROM spans ORDER BY d, at DESC, id LIMIT 25', binary: true },
  { sql: 'SELECT grp, min(d), max(d), min(at), max(at), count(DISTINCT d) FROM spans WHERE grp < 9 GROUP BY grp ORDER BY grp' },
  { sql: 'SELECT DISTINCT at FROM spans WHERE at < $$06:00$$ ORDER BY at' },
  { sql: 'SELECT d, count(*) FROM spans WHERE grp < 9 GROUP BY d ORDER BY d DESC LIMIT 20' },
  { sql: 'SELECT grp, count(*) FROM spans GROUP BY grp HAVING max(d) > interval $$1 year$$ AND min(at) < $$01:00$$ ORDER BY grp' },
  { sql: 'SELECT count(DISTINCT d), count(DISTINCT at) FROM spans' },
  { sql: 'SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d), percentile_disc(ARRAY[0.1, 0.9]) WITHIN GROUP (ORDER BY at) FROM spans WHERE grp < 9' },
  { sql: 'SELECT grp, array_agg(at ORDER BY at DESC), array_agg(d ORDER BY d) FILTER (WHERE id < 60) FROM spans WHERE grp < 9 GROUP BY grp ORDER BY grp', binary: true },
  { sql: 'SELECT grp, array_agg(d ORDER BY d) FILTER (WHERE id < 60) FROM spans WHERE grp < 9 GROUP BY grp ORDER BY grp' },
  // sum adds field by field: '1 mon' + '30 days' + '720 hours' stays all three.
  { sql: 'SELECT grp, sum(d), sum(d) FILTER (WHERE id % 2 = 0), count(*) FROM spans GROUP BY grp ORDER BY grp' },
  { sql: 'SELECT sum(d), sum(-d), sum(at - time $$12:00$$) FROM spans', binary: true },
  { sql: 'SELECT sum(d) FROM spans WHERE id > 1000' },
  // avg divides as Postgres's interval_div: a third of a month is 10 days, fractions of days become time.
  { sql: 'SELECT grp, avg(d), avg(d) FILTER (WHERE id % 3 = 0), avg(at - time $$06:00$$) FROM spans GROUP BY grp ORDER BY grp' },
  { sql: 'SELECT avg(d), avg(-d) FROM spans', binary: true },
  { sql: 'SELECT round(extract(epoch FROM avg(d))) AS seconds, avg(d) > interval $$1 day$$ AS long FROM spans' },
  // percentile_cont interpolates between two intervals as interval_lerp does.
  { sql: 'SELECT grp, percentile_cont(0.37) WITHIN GROUP (ORDER BY d), percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY d DESC) FROM spans WHERE grp < 9 GROUP BY grp ORDER BY grp' },
  { sql: 'SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY at - time $$12:00$$), percentile_cont(0.25) WITHIN GROUP (ORDER BY d) FROM spans', binary: true },
  // timetz: by the time in UTC, then by the zone ('10:00+02' and '08:00+00' are the same instant, not equal).
  { sql: 'SELECT id, tz FROM spans ORDER BY tz DESC NULLS LAST, id LIMIT 30' },
  { sql: 'SELECT grp, min(tz), max(tz), count(DISTINCT tz) FROM spans GROUP BY grp ORDER BY grp', binary: true },
  { sql: 'SELECT tz, count(*) FROM spans GROUP BY tz ORDER BY tz LIMIT 15' },
]

t.test('interval and time values merge across shards as one Postgres orders them', async (t) => {
  const { proxy, plain } = await startWithPlainTwin(t, 3, { sharding: SHARDING }, SCHEMA)
  const rows = `INSERT INTO spans (id, grp, d, at, tz) SELECT g, g % 4,
      CASE WHEN g % 19 = 0 THEN NULL ELSE make_interval(years => g % 3 - 1, months => (g * 7) % 25 - 12, days => (g * 11) % 61 - 30, hours => (g * 5) % 50 - 25, secs => ((g * 37) % 1000) / 7.0) END,
      CASE WHEN g % 23 = 0 THEN NULL ELSE time '00:00' + make_interval(secs => (g * 7919) % 86400 + (g % 7) / 8.0) END,
      CASE WHEN g % 29 = 0 THEN NULL ELSE (time '00:00' + make_interval(mins => (g * 53) % 1440))::text || (ARRAY['+00', '+02', '-05:30', '+09', '-11'])[1 + g % 5] END::timetz
    FROM generate_series(1, 300) g`
  // Equal spans written differently, and a time of 24:00:00.
  const equal = "INSERT INTO spans (id, grp, d, at, tz) VALUES (1001, 9, '1 mon', '24:00:00', '10:00+02'), (1002, 9, '30 days', '00:00:00', '08:00+00'), (1003, 9, '720 hours', '24:00:00', '10:00+02')"
  for (const c of [proxy, plain]) {
    await c.query(rows)
    await c.query(equal)
  }
  for (const style of ['postgres', 'postgres_verbose', 'sql_standard', 'iso_8601']) {
    await proxy.query(`SET IntervalStyle = ${style}`)
    await plain.query(`SET IntervalStyle = ${style}`)
    for (const q of QUERIES) {
      // Binary results come only through the extended protocol.
      const mode = q.binary ? { binary: true, queryMode: 'extended' } : {}
      const run = (c: pg.Client) => c.query({ text: q.sql, rowMode: 'array', types: RAW, ...mode } as pg.QueryArrayConfig)
      const [got, want] = await Promise.all([run(proxy), run(plain)])
      t.ok(want.rows.length > 0, `${style}: ${q.sql}: Postgres answers rows`)
      if (q.binary) t.ok(got.fields.every((f) => f.format === 'binary'), `${style}: ${q.sql}: in binary`)
      t.same(got.rows, want.rows, `${style}${q.binary ? ' (binary)' : ''}: ${q.sql}`)
    }
  }
})
