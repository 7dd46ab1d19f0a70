// two_phase over servers that cannot prepare (max_prepared_transactions = 0, Postgres' default): the operator
// is told at start-up, and a COMMIT across shards fails with the server's reason and leaves nothing anywhere.
import pg from 'pg'
import t from 'tap'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { sessionsInTransaction } from './harness/serverSessions.js'
import { APP_PASSWORD, APP_USER, proxyConfig } from './harness/startProxy.js'
import { startTopology } from './harness/startTopology.js'

const topo = await startTopology(t, { shards: 2, replicas: 0, users: [{ name: APP_USER, password: APP_PASSWORD }], databases: ['app'], settings: { max_prepared_transactions: '0' } })
const config = proxyConfig(topo, { sharding: { tables: [{ name: 'items', key: 'id', type: 'bigint' }], cross_shard_transactions: 'two_phase' } })
const lines: string[] = []
const app = await ProxyApp.start(config, { log: createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(s) } }) })
t.teardown(() => app.stop(500))
const map = new ShardMap(config)
const keyOn = (shard: number) => {
  for (let k = 1; ; k++) if (map.ring.shardFor(String(k)) === shard) return k
}

t.test('the operator is told at start-up, per primary', async (t) => {
  const told = () => lines.filter((l) => l.includes('max_prepared_transactions is 0 on this primary'))
  t.ok(await waitFor(async () => told().length === 2, 10_000), 'one warning for each shard\u2019s primary, without waiting for a first COMMIT')
  for (const node of ['s0-primary', 's1-primary']) t.ok(told().some((l) => l.includes(`"node":"${node}"`)), node)
})

t.test('a COMMIT across shards fails with the server\u2019s reason, and rolls back on every shard', async (t) => {
  const c = new pg.Client({ host: '127.0.0.1', port: app.address.port, user: APP_USER, password: APP_PASSWORD, database: 'app' })
  await c.connect()
  t.teardown(() => c.end())
  await c.query('CREATE TABLE items (id bigint PRIMARY KEY)')
  await c.query('BEGIN')
  await c.query(`INSERT INTO items (id) VALUES (${keyOn(0)})`)
  await c.query(`INSERT INTO items (id) VALUES (${keyOn(1)})`)
  await t.rejects(c.query('COMMIT'), { code: '55000', message: /prepared transactions are disabled/ }, 'Postgres\u2019 own error, which says what to set')
  t.equal((await c.query('SELECT count(*) AS n FROM items')).rows[0].n, '0', 'neither shard kept its row')
  t.equal(await sessionsInTransaction(topo), 0, 'no server session is left in a transaction')
})
