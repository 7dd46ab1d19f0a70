import net from 'node:net'
import t, { type Test } from 'tap'
import type { Config } from '../src/config/ConfigSchema.js'
import { conninfoValue, conninfoWithAddress, parseConninfo } from '../src/health/Conninfo.js'
import type { ControlAccess } from '../src/health/ControlConnection.js'
import { HealthChecker, type CheckOutcome } from '../src/health/HealthChecker.js'
import { formatLsn, parseLsn } from '../src/health/Lsn.js'
import { NodeState } from '../src/health/NodeState.js'
import { Topology } from '../src/health/Topology.js'
import { parseConfig } from '../src/config/ConfigLoader.js'
import { syncStandbySetting } from '../src/health/SyncStandbyPolicy.js'
import { createLogger } from '../src/log/Logger.js'
import { PgError } from '../src/protocol/PgError.js'
import { AUTH_OK, commandComplete, dataRow, errorResponse, readyForQuery, rowDescription } from '../src/protocol/ServerMessages.js'
import { waitFor } from '../src/topology/ProcessScan.js'
import { startTopology } from './harness/startTopology.js'

t.test('LSNs: Postgres text form ⇄ numbers', async (t) => {
  t.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n)
  t.equal(parseLsn('0/0'), 0n)
  t.equal(parseLsn(null), 0n, 'no WAL yet (a primary has no replay LSN)')
  t.ok(parseLsn('1/0') > parseLsn('0/FFFFFFFF'), 'ordered as numbers')
  t.equal(formatLsn(parseLsn('16/B374D848')), '16/B374D848')
  t.throws(() => parseLsn('16-B374'), /not an LSN/)
})

t.test('primary_conninfo: only the address changes when a standby is repointed', async (t) => {
  const written = "user=postgres password='pa ss\\'word' channel_binding=prefer host=10.0.0.1 port=5432 hostaddr=10.0.0.1 application_name=s0-replica2 sslmode=prefer"
  const moved = conninfoWithAddress(written, '127.0.0.1', 6000)
  t.same(parseConninfo(moved), [
    ['host', '127.0.0.1'],
    ['port', '6000'],
    ['user', 'postgres'],
    ['password', "pa ss'word"],
    ['channel_binding', 'prefer'],
    ['application_name', 's0-replica2'],
    ['sslmode', 'prefer'],
  ])
  t.equal(conninfoValue(moved, 'application_name'), 's0-replica2')
  t.equal(conninfoValue(written, 'password'), "pa ss'word")
  t.equal(conninfoValue('host = a  port=1', 'port'), '1', 'spaces around = are allowed')
  t.equal(conninfoValue('host=a', 'application_name'), undefined)
  t.equal(
    conninfoWithAddress('postgresql://rep:pw@old-host:5432/postgres?application_name=r1&host=x', 'new-host', 7000),
    'postgresql://rep:pw@new-host:7000/postgres?application_name=r1',
  )
  t.throws(() => parseConninfo("host='unterminated"), /unterminated/)
  t.throws(() => parseConninfo('host'), /missing "="/)
})

t.test('synchronous_standby_names after a promotion is an explicit policy', async (t) => {
  t.same(syncStandbySetting('durability', ['s0-replica2', 'b"q', 's0-replica2']), { value: 'ANY 1 ("s0-replica2", "b""q")', commitsWait: false })
  t.same(syncStandbySetting('durability', []), { value: '*', commitsWait: true }, 'none left: commits wait for any standby')
  t.same(syncStandbySetting('availability', ['s0-replica2']), { value: '', commitsWait: false })
})

t.test('a fence follows the server through a reload that renames it; a new address starts unfenced', async (t) => {
  const config = (primary: number, replicas: number[]) =>
    parseConfig(
      JSON.stringify({
        users: [{ name: 'app', password: 'x' }],
        databases: [{ name: 'app' }],
        shards: [{ name: 's0', primary: { host: '10.0.0.1', port: primary }, replicas: replicas.map((port) => ({ host: '10.0.0.1', port })) }],
      }),
    )
  const topology = new Topology(config(5001, [5002, 5003]))
  topology.node('s0-primary')!.fenced = true
  topology.node('s0-replica1')!.role = 'primary'
  t.equal(topology.primaryOf(0)?.port, 5002)
  // The DBA writes the failover into the map: 5002 is now the primary, the old primary 5001 a replica.
  topology.apply(config(5002, [5001, 5003]))
  t.equal(topology.primaryOf(0)?.port, 5002)
  t.ok(topology.node('s0-replica1')!.fenced, 'the old primary, now named s0-replica1, is still fenced')
  t.notOk(topology.node('s0-replica2')!.fenced)
  t.same([...Array(20)].map(() => topology.pick(0, 'replica').port).filter((p) => p !== 5003), [], 'reads avoid it')
  topology.apply(config(5002, [5004, 5003]))
  t.notOk(topology.node('s0-replica1')!.fenced, 'a server at a new address is not fenced')
})

type Mode = 'answer' | 'hang' | 'refuse'

/** Just enough of a Postgres server for the health check: trust log-in, and one fixed answer to every query. */
class FakePostgres {
  mode: Mode = 'answer'
  readonly sockets = new Set<net.Socket>()
  private readonly server = net.createServer((s) => this.serve(s))

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r))
    return (this.server.address() as net.AddressInfo).port
  }

  close(): void {
    this.server.close()
    for (const s of this.sockets) s.destroy()
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let started = false
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const headerLength = started ? 5 : 4
        if (buf.length < headerLength) return
        const length = started ? buf.readInt32BE(1) + 1 : buf.readInt32BE(0)
        if (buf.length < length) return
        const type = started ? String.fromCharCode(buf[0]) : 'startup'
        buf = buf.subarray(length)
        if (this.mode === 'hang') continue
        if (type === 'startup') {
          started = true
          if (this.mode === 'refuse') socket.end(errorResponse(PgError.fatal('28P01', 'password authentication failed for user "postgres"')))
          else socket.write(Buffer.concat([AUTH_OK, readyForQuery('I')]))
        } else if (type === 'Q') {
          const columns = ['recovery', 'current', 'receive', 'replay', 'delay', 'sync_required', 'sync_standbys']
          socket.write(
            Buffer.concat([
              rowDescription(columns.map((name, i) => ({ name, typeOid: [16, 25, 25, 25, 701, 16, 23][i] }))),
              dataRow(['f', '0/3000060', null, null, '0', 't', '1']),
              commandComplete('SELECT 1'),
              readyForQuery('I'),
            ]),
          )
        } else if (type === 'X') socket.end()
      }
    })
  }
}

const HEALTH: Config['health'] = { interval: 50, timeout: 300, failures: 3, successes: 2, resolve_prepared_interval: 10_000, synchronous_policy: 'durability' }
const CONTROL: ControlAccess = { user: 'postgres', database: 'postgres', tls: { mode: 'disable' } }

async function checked(t: Test, health: Partial<Config['health']> = {}) {
  const fake = new FakePostgres()
  const port = await fake.listen()
  const node = new NodeState('n1', 0, 'primary', { host: '127.0.0.1', port, weight: 1 })
  const outcomes: (CheckOutcome & { at: number })[] = []
  const logLines: string[] = []
  const log = createLogger({ level: 'info', destination: { write: (s: string) => void logLines.push(s) } })
  const checker = new HealthChecker(node, { ...HEALTH, ...health }, CONTROL, log, (o) => outcomes.push({ ...o, at: Date.now() }))
  t.teardown(() => {
    checker.stop()
    fake.close()
  })
  return { fake, node, checker, outcomes, logLines }
}

t.test('a hung server: each check ends at the timeout; 3 failures in a row mark the node down, once', async (t) => {
  const { fake, node, checker, outcomes } = await checked(t)
  fake.mode = 'hang'
  const began = Date.now()
  checker.start()
  t.ok(await waitFor(() => !node.up, 5000), 'marked down')
  const downAfter = Date.now() - began
  t.ok(downAfter >= 3 * 300 && downAfter < 3 * 300 + 2 * 50 + 600, `after 3 timeouts of 300 ms and 2 intervals (${downAfter} ms)`)
  t.same(outcomes.map((o) => [o.ok, o.transition]), [[false, null], [false, null], [false, 'down']])
  t.match(node.lastError, /no answer from 127\.0\.0\.1:\d+ within 300 ms/)
  await new Promise((r) => setTimeout(r, 800))
  t.equal(outcomes.filter((o) => o.transition === 'down').length, 1, 'one transition, however long it stays down')
  t.ok(fake.sockets.size <= 1, `timed-out connections are closed (${fake.sockets.size} open)`)

  fake.mode = 'answer'
  t.ok(await waitFor(() => node.up, 5000), 'back up')
  const oks = outcomes.filter((o) => o.ok)
  t.same(oks.slice(0, 2).map((o) => o.transition), [null, 'up'], 'after 2 successes in a row')
  t.equal(node.currentLsn, parseLsn('0/3000060'), 'the probe is recorded')
  t.equal(node.inRecovery, false)
  t.equal(node.syncStandbys, 1)
  t.ok(oks[0].reconnected, 'the first good check reconnected (the catalog is read again then)')
})

t.test('a refused connection fails fast', async (t) => {
  const { fake, node, checker } = await checked(t)
  fake.close()
  const began = Date.now()
  const outcome = await checker.checkNow()
  t.equal(outcome.ok, false)
  t.ok(Date.now() - began < 250, `in ${Date.now() - began} ms`)
  t.match(node.lastError, /ECONNREFUSED/)
})

t.test('a server that refuses the control user is alive: never marked down, said once in the log', async (t) => {
  const { fake, node, checker, outcomes, logLines } = await checked(t)
  fake.mode = 'refuse'
  checker.start()
  t.ok(await waitFor(() => outcomes.length >= 5, 5000))
  t.ok(outcomes.every((o) => o.ok && o.probe === null), 'alive, without a reading')
  t.ok(node.up)
  t.equal(logLines.filter((l) => l.includes('refused the control connection')).length, 1)
})

t.test('data-path evidence counts as one failure per interval and triggers a check at once', async (t) => {
  const { fake, node, checker, outcomes } = await checked(t, { interval: 60_000 })
  checker.start()
  t.ok(await waitFor(() => outcomes.length === 1, 2000), 'the first check ran')
  t.equal(node.failures, 0)
  fake.close()
  for (let i = 0; i < 5; i++) checker.evidence(new Error('server closed the connection'))
  t.equal(node.failures, 1, 'a burst of evidence is one failure')
  t.ok(await waitFor(() => outcomes.length === 3, 2000), 'and one immediate check')
  t.equal(node.failures, 2, 'which failed too')
  t.ok(node.up, 'the threshold (3) needs another check: evidence cannot take a node down on its own')
  checker.evidence(new Error('again'))
  t.equal(node.failures, 2, 'further evidence waits for the next scheduled check')
})

t.test('a real server asking the control user for a password that is not configured: alive, and the log says which setting', async (t) => {
  const topo = await startTopology(t, { shards: 1, replicas: 0, users: [], databases: [] })
  const { host, port } = topo.shards[0]!.primary
  const node = new NodeState('s0-primary', 0, 'primary', { host, port, weight: 1 })
  const outcomes: CheckOutcome[] = []
  const logLines: string[] = []
  const log = createLogger({ level: 'info', destination: { write: (s: string) => void logLines.push(s) } })
  const checker = new HealthChecker(node, HEALTH, { ...CONTROL, user: 'postgres', password: undefined }, log, (o) => outcomes.push(o))
  t.teardown(() => checker.stop())
  checker.start()
  t.ok(await waitFor(() => outcomes.length >= 4, 5000), `${outcomes.length} checks`)
  t.ok(outcomes.every((o) => o.ok), 'every check counts the server alive')
  t.ok(node.up, 'never marked down (a failover would promote over a live primary)')
  const refused = logLines.filter((l) => l.includes('refused the control connection'))
  t.equal(refused.length, 1, 'said once')
  t.match(refused[0], /the server asks control\.user \\"postgres\\" for a password, and control\.password is not set/)
  const access = { ...CONTROL, user: 'postgres', password: topo.superuser.password }
  const ok = new HealthChecker(node, HEALTH, access, log, (o) => outcomes.push(o))
  t.teardown(() => ok.stop())
  t.match(await ok.checkNow(), { ok: true, probe: { inRecovery: false } }, 'with the password the check reads the server')
})
