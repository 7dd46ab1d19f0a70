// A partition of a sharded table (events sharded by tenant, partitioned by month) is sharded by the same key:
// read or written by its own name, its rows go to the shards of their keys, as through the parent. pgshard
// learns partitions from the CREATE … PARTITION OF or ATTACH PARTITION it routes, and from the shards' catalogs.
import pg from 'pg'
import t from 'tap'
import { ShardMap } from '../src/router/ShardMap.js'
import { runCommand } from './harness/runCommand.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'events', key: 'tenant', type: 'bigint' }, { name: 'logs', key: 'tenant', type: 'bigint' }] }
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const tenantOn = (shard: number) => [1, 2, 3, 4, 5, 6, 7, 8].find((k) => map.shardForTypedHint('bigint', String(k)) === shard)!
const [a, b] = [tenantOn(0), tenantOn(1)]
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
const perShard = (sql: string) => fx.topo.queryPrimaries(sql, 'app')

t.test('a partition made through pgshard: on every shard, its rows on the shards of their keys', async (t) => {
  await client.query('CREATE TABLE events (tenant bigint NOT NULL, at date NOT NULL, n int) PARTITION BY RANGE (at)')
  await client.query("CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")
  t.same((await perShard("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'events_2024'")).map((r) => r[0]!.n), [1, 1], 'made on every shard')
  const ins = await client.query(`INSERT INTO events_2024 (tenant, at, n) VALUES (${a}, '2024-03-01', 1), (${b}, '2024-04-01', 2) RETURNING tenant, current_setting('port') AS port`)
  t.same(ins.rows.map((r) => r.port), ins.rows.map((r) => String(fx.topo.shards[map.shardForTypedHint('bigint', r.tenant)]!.primary.port)), 'an INSERT by the partition\u2019s name: each row on its tenant\u2019s shard')
  const copy = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', fx.dsn, '-c', '\\copy events_2024 (tenant, at, n) FROM stdin'], { env: fx.env, input: `${a}\t2024-05-01\t3\n${b}\t2024-06-01\t4\n\\.\n` })
  t.equal(copy.code, 0, `COPY into the partition: ${copy.stderr}`)
  t.same((await perShard('SELECT tenant, n FROM events ORDER BY n')).map((rows) => rows.map((r) => `${r.tenant}:${r.n}`)), [[`${a}:1`, `${a}:3`], [`${b}:2`, `${b}:4`]], 'every row on its tenant\u2019s shard')
  t.same((await client.query('SELECT count(*)::int AS n FROM events_2024')).rows, [{ n: 4 }], 'read by its name across shards')
  t.same((await client.query(`SELECT n FROM events_2024 WHERE tenant = ${b} ORDER BY n`)).rows, [{ n: 2 }, { n: 4 }], 'and by a key')
})

t.test('a table made alone, then attached (pg_dump\u2019s order): the ATTACH fails loudly instead of rows landing on one shard', async (t) => {
  await client.query('CREATE TABLE events_2025 (tenant bigint NOT NULL, at date NOT NULL, n int)')
  await t.rejects(client.query("ALTER TABLE ONLY events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"), { message: /events_2025/ }, 'the shards without the table refuse it')
  await t.rejects(client.query(`INSERT INTO events_2025 (tenant, at, n) VALUES (${b}, '2025-02-01', 5)`), { message: /events_2025/ }, 'a row of a tenant of another shard is not stored on the default one')
})

t.test('partitions made on the shards directly: learnt from the catalogs', async (t) => {
  for (const s of fx.topo.shards) {
    await fx.topo.query(s.primary, 'CREATE TABLE logs (tenant bigint NOT NULL, at date NOT NULL) PARTITION BY LIST (tenant)', 'app')
    await fx.topo.query(s.primary, 'CREATE TABLE logs_all PARTITION OF logs DEFAULT', 'app')
    await fx.topo.query(s.primary, `GRANT ALL ON logs, logs_all TO ${fx.pgOptions.user}`, 'app')
  }
  await fx.app.health.refreshCatalogs()
  const r = await client.query(`INSERT INTO logs_all (tenant, at) VALUES (${a}, '2024-01-01'), (${b}, '2024-01-02') RETURNING current_setting('port') AS port`)
  t.same(r.rows.map((row) => row.port).sort(), fx.topo.shards.map((s) => String(s.primary.port)).sort(), 'split by tenant')
})
