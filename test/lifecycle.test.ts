// `pgshard start` as a real child process: SIGHUP reloads; under a pgbench load, SIGTERM lets transactions in
// flight commit, cuts none in the middle, refuses new connections, and the process exits 0.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { ensureBuilt, startProxyProcess } from './harness/proxyProcess.js'
import { runCommand } from './harness/runCommand.js'
import { APP_PASSWORD, APP_USER, proxyConfig } from './harness/startProxy.js'
import { startTopology } from './harness/startTopology.js'

// Each transaction sleeps in the middle, so that several are in flight when SIGTERM arrives; the ledger row
// is written just before COMMIT, so that ledger rows = transactions that committed.
const SCRIPT = `\\set aid random(1, 100000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
SELECT pg_sleep(0.2);
INSERT INTO ledger (aid) VALUES (:aid);
END;
`

t.test('SIGTERM during a pgbench load: in-flight transactions complete, new connections refused, exit 0', async (t) => {
  await ensureBuilt(t)

  const topo = await startTopology(t, { shards: 1, replicas: 0, users: [{ name: APP_USER, password: APP_PASSWORD }], databases: ['app'] })
  const env = { ...process.env, PGPASSWORD: APP_PASSWORD, PGCONNECT_TIMEOUT: '5' }
  const direct = `host=127.0.0.1 port=${topo.shards[0].primary.port} user=${APP_USER} dbname=app`
  const init = await runCommand('pgbench', ['-i', '-s', '1', '-q', direct], { env, timeoutMs: 120_000 })
  t.equal(init.code, 0, init.code === 0 ? 'pgbench -i' : init.stderr)
  await topo.query(topo.shards[0].primary, `CREATE TABLE ledger (id bigserial PRIMARY KEY, aid int); ALTER TABLE ledger OWNER TO ${APP_USER}`, 'app')

  const proc = await startProxyProcess(t, proxyConfig(topo, { log: { level: 'info' }, shutdown_timeout: 20_000, pool: { size: 8 } }))
  const { child, port, file, dir, logs, exited } = proc
  await writeFile(join(dir, 'tx.sql'), SCRIPT)
  const proxyDsn = `host=127.0.0.1 port=${port} user=${APP_USER} dbname=app`

  // SIGHUP reloads the file (the listener's port comes from the running proxy, not from the file).
  await writeFile(file, JSON.stringify(proxyConfig(topo, { log: { level: 'info' }, shutdown_timeout: 20_000, pool: { size: 8 }, map_version: 'after-sighup' })))
  child.kill('SIGHUP')
  for (let i = 0; i < 100 && !logs.some((l) => l.msg === 'reload: done'); i++) await new Promise((r) => setTimeout(r, 50))
  t.ok(logs.some((l) => l.msg === 'reload: done' && l.map_version === 'after-sighup'), 'SIGHUP reloaded the file')

  const load = runCommand('pgbench', ['-n', '-c', '6', '-j', '2', '-T', '30', '-f', join(dir, 'tx.sql'), proxyDsn], { env, timeoutMs: 90_000 })
  await new Promise((r) => setTimeout(r, 2500))
  const killedAt = Date.now()
  child.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 50))

  // During the drain: the process is still there (transactions are finishing) but takes no new client.
  const alive = child.exitCode === null
  const refused = await new pg.Client({ host: '127.0.0.1', port, user: APP_USER, password: APP_PASSWORD, database: 'app', connectionTimeoutMillis: 3000 })
    .connect()
    .then(
      () => 'connected',
      (err: { code?: string }) => err.code ?? 'error',
    )
  t.ok(alive, 'the proxy was still draining when the new client tried')
  t.ok(refused === 'ECONNREFUSED' || refused === '57P03', `a new connection is refused (${refused})`)

  const exit = await exited
  const drainMs = Date.now() - killedAt
  t.same(exit, { code: 0, signal: null }, `exit code 0 (stderr: ${proc.stderr().slice(-1000)})`)
  const r = await load

  const aborts = [...(r.stdout + r.stderr).matchAll(/client \d+ (?:script \d+ )?aborted in command (\d+)/g)].map((m) => Number(m[1]))
  t.ok(aborts.length > 0, `pgbench clients were ended by the shutdown (${aborts.length})`)
  t.ok(aborts.every((c) => c <= 1), `every client was ended between transactions (at \\set or BEGIN), none mid-transaction: commands ${aborts.join(',')}`)
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1])
  const [{ n }] = await topo.query(topo.shards[0].primary, 'SELECT count(*)::int AS n FROM ledger', 'app')
  t.ok(processed > 0, `pgbench committed ${processed} transactions`)
  t.equal(n, processed, 'every transaction that committed was acknowledged to pgbench, and none else committed')
  const ended = logs.find((l) => l.msg === 'shutdown: clients ended')
  t.ok(ended, 'the proxy logged how the clients ended')
  t.equal(ended?.forced, 0, 'no client had to be cut off at the timeout')
  t.ok(logs.some((l) => l.msg === 'stopped'), 'the proxy logged that it stopped')
  t.comment(`SIGTERM → exit in ${drainMs} ms; ${processed} transactions committed and acknowledged, ${aborts.length} clients ended between transactions`)
})
