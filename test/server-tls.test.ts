// TLS towards the servers (`server_tls`). Against servers that accept TCP log-ins only over TLS (hostssl), the
// data path and the proxy's control connections (health checks, catalog reads, failover) both use TLS; with
// 'prefer' against servers without TLS both fall back to plain; with 'disable' the client is told why it failed.
import pg from 'pg'
import t, { type Test } from 'tap'
import { waitFor } from '../src/topology/ProcessScan.js'
import { selfSignedCert } from './harness/selfSignedCert.js'
import { startProxy, type ProxyFixture } from './harness/startProxy.js'

const cert = await selfSignedCert(t)

/** Runs the statements in order on one client; returns each one's rows. */
async function queries(fx: ProxyFixture, ...statements: string[]): Promise<Record<string, unknown>[][]> {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  try {
    const results: Record<string, unknown>[][] = []
    for (const sql of statements) results.push((await c.query(sql)).rows)
    return results
  } finally {
    await c.end()
  }
}

const query = async (fx: ProxyFixture, sql: string) => (await queries(fx, sql))[0]

/** Every node has been checked: the checks read pg_is_in_recovery(), which a refused log-in cannot. */
async function checksReadEveryNode(t: Test, fx: ProxyFixture): Promise<void> {
  const nodes = fx.app.proxy.topology.nodes()
  t.ok(await waitFor(() => nodes.every((n) => n.inRecovery !== null), 10_000), `the health checks read every node's role (${nodes.map((n) => `${n.name}: ${n.inRecovery}`).join(', ')})`)
  t.same(nodes.map((n) => [n.name, n.inRecovery, n.up]), [['s0-primary', false, true], ['s0-replica1', true, true]], 'roles as the servers say, both up')
}

t.test('server_tls: require reaches TLS-only servers, on the data path and for the health checks', async (t) => {
  const fx = await startProxy(t, { topology: { replicas: 1, tls: { ...cert, required: true } }, config: { server_tls: 'require', health: { interval: 100 } } })
  await checksReadEveryNode(t, fx)
  await query(fx, 'CREATE TABLE tls_t (id int)')
  await query(fx, 'INSERT INTO tls_t VALUES (1)')
  const where = "SELECT ssl, current_setting('cluster_name') AS node FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
  t.same((await queries(fx, 'BEGIN', where, 'COMMIT'))[1], [{ ssl: true, node: 's0-primary' }], 'a write transaction runs on the primary over TLS')
  t.same(await query(fx, where), [{ ssl: true, node: 's0-replica1' }], 'a read runs on the replica over TLS')
  for (const node of fx.topo.nodes) {
    const rows = await fx.topo.query(node, "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'pgshard-control'")
    t.ok(rows.length > 0 && rows.every((r) => r.ssl === true), `${node.name}: the control connection uses TLS (${rows.length})`)
  }
})

t.test("server_tls: prefer falls back to plain against servers without TLS, on both paths", async (t) => {
  const fx = await startProxy(t, { topology: { replicas: 1 }, config: { server_tls: 'prefer', health: { interval: 100 } } })
  await checksReadEveryNode(t, fx)
  const [row] = await query(fx, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
  t.same(row, { ssl: false }, 'the data path connected in plain')
})

t.test('server_tls: disable against TLS-only servers: the client gets the server\'s reason, the proxy keeps serving', async (t) => {
  const fx = await startProxy(t, { topology: { tls: { ...cert, required: true } }, config: { server_tls: 'disable', pool: { connect_timeout: 2000 } } })
  for (let i = 0; i < 2; i++) {
    const err = await query(fx, 'SELECT 1').then(() => null, (e: { code?: string; message: string; hint?: string }) => e)
    t.match(err, { code: '08001', message: /no pg_hba\.conf entry.*no encryption/, hint: /server_tls/ }, `attempt ${i + 1}: the server's refusal reaches the client, with what to do (${err?.message})`)
  }
  const admin = new pg.Client({ ...fx.pgOptions, user: 'admin', password: 'admin-secret', database: 'pgshard' })
  await admin.connect()
  t.ok((await admin.query('SHOW VERSION')).rows.length > 0, 'the admin console still answers')
  await admin.end()
})
