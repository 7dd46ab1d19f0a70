// TLS towards the servers (`server_tls`). Against servers that accept TCP log-ins only over TLS (hostssl), the
// data path and the proxy's control connections (health checks, catalog reads, failover) both use TLS; with
// 'prefer' against servers without TLS both fall back to plain; with 'disable' the client is told why it failed.
import pg from 'pg'
import t, { type Test } from 'tap'
import type { StatementRouter } from '../src/proxy/StatementRouter.js'
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

/** Whether this session's server connection uses TLS, and which node serves it. */
const where = "SELECT ssl, current_setting('cluster_name') AS node FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

const query = async (fx: ProxyFixture, sql: string) => (await queries(fx, sql))[0]

/** Every node has been checked: the checks read pg_is_in_recovery(), which a refused log-in cannot. */
async function checksReadEveryNode(t: Test, fx: ProxyFixture): Promise<void> {
  const nodes = fx.app.proxy.topology.nodes()
  t.ok(await waitFor(() => nodes.every((n) => n.inRecovery !== null), 10_000), `the health checks read every node's role (${nodes.map((n) => `${n.name}: ${n.inRecovery}`).join(', ')})`)
  t.same(nodes.map((n) => [n.name, n.inRecovery, n.up]), fx.topo.nodes.map((n) => [n.name, n.role === 'replica', true]), 'roles as the servers say, all up')
  // Until the function catalog is read, current_setting() is unknown and counts as a write (primary).
  const router = fx.app.proxy.routing as StatementRouter
  t.ok(await waitFor(() => router.volatility.isKnown('current_setting'), 10_000), 'the function catalog was read over the control connection')
}

t.test('server_tls: require reaches TLS-only servers, on the data path and for the health checks', async (t) => {
  const fx = await startProxy(t, { topology: { replicas: 1, tls: { ...cert, required: true } }, config: { server_tls: 'require', health: { interval: 100 } } })
  await checksReadEveryNode(t, fx)
  await query(fx, 'CREATE TABLE tls_t (id int)')
  await query(fx, 'INSERT INTO tls_t VALUES (1)')
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

t.test('verify-full and verify-ca check the servers\' certificates', async (t) => {
  const otherName = await selfSignedCert(t, 'DNS:db.internal')
  const refusal = async (fx: ProxyFixture) => query(fx, 'SELECT 1').then(() => null, (e: { code?: string; message: string }) => e)

  t.test('a certificate for 127.0.0.1 signed by server_tls_ca: verify-full accepts it, on both paths', async (t) => {
    const fx = await startProxy(t, {
      topology: { replicas: 1, tls: { ...cert, required: true } },
      config: { server_tls: 'verify-full', server_tls_ca: cert.cert, health: { interval: 100 } },
    })
    await checksReadEveryNode(t, fx)
    t.same(await query(fx, where), [{ ssl: true, node: 's0-replica1' }], 'a read over a verified connection')
  })

  t.test('a CA file that did not sign the certificate: refused, with the reason', async (t) => {
    const fx = await startProxy(t, { topology: { tls: { ...cert, required: true } }, config: { server_tls: 'verify-full', server_tls_ca: otherName.cert } })
    t.match(await refusal(fx), { code: '08001', message: /self-signed certificate|unable to verify/ }, 'the client is told the certificate was not trusted')
  })

  t.test('a certificate for another name: verify-ca accepts it, verify-full refuses it', async (t) => {
    const topology = { tls: { ...otherName, required: true } }
    const ca = await startProxy(t, { topology, config: { server_tls: 'verify-ca', server_tls_ca: otherName.cert, health: { interval: 100 } } })
    await checksReadEveryNode(t, ca)
    t.same(await query(ca, where), [{ ssl: true, node: 's0-primary' }], 'verify-ca: the chain is checked, the name is not')
    const full = await startProxy(t, { topology, config: { server_tls: 'verify-full', server_tls_ca: otherName.cert } })
    t.match(await refusal(full), { code: '08001', message: /does not match|altnames/ }, 'verify-full: the certificate does not name 127.0.0.1')
  })
})
