import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import pg from 'pg'
import t from 'tap'
import { LocalTopology } from '../src/topology/LocalTopology.js'
import { findPostgresBinaries } from '../src/topology/PostgresBinaries.js'
import { processesUnder, waitFor } from '../src/topology/ProcessScan.js'
import { topologyParentDir } from '../src/topology/ScratchSpace.js'
import { quoteLiteral } from '../src/router/SqlQuoting.js'
import { leftoversOf, startTopology } from './harness/startTopology.js'

const connect = async (config: pg.ClientConfig) => {
  const client = new pg.Client({ connectionTimeoutMillis: 5000, ...config })
  client.on('error', () => {})
  await client.connect()
  return client
}

/** The SQLSTATE (or Node error code) a connection attempt fails with, or 'connected'. */
const connectOutcome = async (config: pg.ClientConfig): Promise<string> => {
  try {
    await (await connect(config)).end()
    return 'connected'
  } catch (err) {
    return String((err as { code?: unknown }).code ?? (err as Error).message)
  }
}

const pgrep = (pattern: string): string => {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim()
  } catch {
    return '' // exit 1: nothing matched
  }
}

t.test('findPostgresBinaries: finds the installed servers, and says how to install them when there are none', async (t) => {
  t.match(findPostgresBinaries(), /\/bin$/)
  t.throws(() => findPostgresBinaries('/nonexistent/postgresql', '/nonexistent/bin'), {
    message: /apt-get install -y postgresql.*npm test/s,
  })
})

t.test('a start that fails says why and leaves nothing behind', async (t) => {
  await t.rejects(LocalTopology.start({ shards: 0, replicas: 0 }), /shards must be an integer from 1 to 32, got 0/)
  await t.rejects(LocalTopology.start({ shards: 1, replicas: 0, users: [{ name: 'a\nb', password: 'x' }] }), /user name must be non-empty printable text/)
  const baseDir = join(topologyParentDir(), `pgshard-topo-failing-${process.pid}`)
  const duplicateUser = LocalTopology.start({
    shards: 1,
    replicas: 0,
    baseDir,
    users: [{ name: 'twice', password: 'x' }, { name: 'twice', password: 'y' }],
  })
  await t.rejects(duplicateUser, /postgres failed \(exit code 1\):[^]*role "twice" already exists/)
  t.same(leftoversOf(baseDir), [], 'the half-built topology was stopped and removed')
})

t.test('2 shards × (primary + 1 replica) with a SCRAM user', async (t) => {
  const began = Date.now()
  const topo = await startTopology(t, { shards: 2, replicas: 1, users: [{ name: 'app', password: 'app-secret' }] })
  const startMs = Date.now() - began
  t.comment(`topology of ${topo.nodes.length} nodes started in ${startMs} ms (${topo.baseDir})`)
  t.ok(startMs < 20_000, `starts in seconds (${startMs} ms)`)

  t.test('layout and shards config', async (t) => {
    t.same(
      topo.nodes.map((n) => [n.name, n.shard, n.role, n.slot]),
      [
        ['s0-primary', 0, 'primary', undefined],
        ['s0-replica1', 0, 'replica', 's0_replica1'],
        ['s1-primary', 1, 'primary', undefined],
        ['s1-replica1', 1, 'replica', 's1_replica1'],
      ],
    )
    t.equal(new Set(topo.nodes.map((n) => n.port)).size, 4, 'every node has its own port')
    t.same(topo.shardsConfig(), [
      { name: 's0', primary: { host: '127.0.0.1', port: topo.node('s0-primary').port }, replicas: [{ host: '127.0.0.1', port: topo.node('s0-replica1').port }] },
      { name: 's1', primary: { host: '127.0.0.1', port: topo.node('s1-primary').port }, replicas: [{ host: '127.0.0.1', port: topo.node('s1-replica1').port }] },
    ])
    for (const n of topo.nodes) {
      const [row] = await topo.query(n, "SELECT current_setting('port') AS port, current_setting('cluster_name') AS name")
      t.same(row, { port: String(n.port), name: n.name }, `${n.name} runs on its own port under its own name`)
    }
    t.throws(() => topo.node('s9-primary'), /no node named "s9-primary"/)
  })

  t.test('pg_is_in_recovery() is false on primaries and true on replicas', async (t) => {
    for (const n of topo.nodes) {
      const [row] = await topo.query(n, 'SELECT pg_is_in_recovery() AS r')
      t.equal(row.r, n.role === 'replica', n.name)
    }
  })

  t.test('each replica streams from its own primary, by name and through its slot', async (t) => {
    for (const shard of topo.shards) {
      const replica = shard.replicas[0]
      const senders = await topo.query(shard.primary, 'SELECT application_name, state FROM pg_stat_replication')
      t.same(senders, [{ application_name: replica.name, state: 'streaming' }], `${shard.primary.name} streams to ${replica.name}`)
      const slots = await topo.query(shard.primary, 'SELECT slot_name, active FROM pg_replication_slots')
      t.same(slots, [{ slot_name: replica.slot, active: true }], `${replica.slot} is in use`)
    }
  })

  t.test('a write on each primary is read back on its replica, and only there', async (t) => {
    for (const shard of topo.shards) {
      await topo.query(shard.primary, `CREATE TABLE marks (shard text); INSERT INTO marks VALUES ('${shard.name}')`, 'app')
      await topo.waitForReplay(shard.replicas[0])
      const rows = await topo.query(shard.replicas[0], 'SELECT shard FROM marks', 'app')
      t.same(rows, [{ shard: shard.name }], `${shard.replicas[0].name} has exactly ${shard.name}'s row`)
    }
  })

  t.test('SCRAM: the user logs in with its password on every node; a wrong one gets 28P01', async (t) => {
    for (const n of topo.nodes) {
      const client = await connect({ host: n.host, port: n.port, user: 'app', password: 'app-secret', database: 'app' })
      const [row] = (await client.query('SELECT current_user AS u, current_database() AS d')).rows
      await client.end()
      t.same(row, { u: 'app', d: 'app' }, `app@app on ${n.name}`)
    }
    const primary = topo.node('s0-primary')
    t.equal(await connectOutcome({ host: primary.host, port: primary.port, user: 'app', password: 'wrong', database: 'app' }), '28P01')
    t.equal(await connectOutcome({ host: primary.host, port: primary.port, user: 'postgres', password: 'wrong' }), '28P01')
    t.equal(
      await connectOutcome({ host: primary.host, port: primary.port, user: 'postgres', password: topo.superuser.password }),
      'connected',
      'the superuser password works over TCP',
    )
    const methods = await topo.query(primary, "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'host'")
    t.same(methods, [{ auth_method: 'scram-sha-256' }], 'every TCP rule demands SCRAM')
    const [stored] = await topo.query(primary, "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
    t.match(stored.rolpassword, /^SCRAM-SHA-256\$4096:/, 'the password is stored as a SCRAM verifier')
  })

  t.test('kill -9 a primary: nothing of it is left; it starts again and its replica catches up', async (t) => {
    const primary = topo.node('s0-primary')
    await topo.kill(primary, 'SIGKILL')
    t.same(processesUnder(primary.dataDir), [], 'no process of the killed node is left')
    t.not(await connectOutcome({ host: primary.host, port: primary.port, user: 'app', password: 'app-secret' }), 'connected')
    await t.rejects(topo.kill(primary, 'SIGTERM'), /s0-primary is not running/)
    await topo.startNode(primary)
    t.same(await topo.query(primary, 'SELECT shard FROM marks', 'app'), [{ shard: 's0' }], 'committed data survived the crash')
    await topo.query(primary, "INSERT INTO marks VALUES ('after-crash')", 'app')
    await topo.waitForReplay('s0-replica1')
    const rows = await topo.query('s0-replica1', 'SELECT shard FROM marks ORDER BY shard', 'app')
    t.same(rows, [{ shard: 'after-crash' }, { shard: 's0' }], 'the replica reconnected and replays again')
  })

  t.test('SIGSTOP freezes a node and SIGCONT thaws it', async (t) => {
    const replica = topo.node('s1-replica1')
    await topo.kill(replica, 'SIGSTOP')
    const frozen = await connectOutcome({ host: replica.host, port: replica.port, user: 'app', password: 'app-secret', connectionTimeoutMillis: 300 })
    t.not(frozen, 'connected', `a stopped postmaster accepts nobody (${frozen})`)
    await topo.kill(replica, 'SIGCONT')
    t.equal(await connectOutcome({ host: replica.host, port: replica.port, user: 'app', password: 'app-secret', database: 'app' }), 'connected')
  })

  t.test('a replica can be promoted and then takes writes', async (t) => {
    const replica = topo.node('s1-replica1')
    t.same(await topo.query(replica, 'SELECT pg_promote() AS p'), [{ p: true }])
    t.same(await topo.query(replica, 'SELECT pg_is_in_recovery() AS r'), [{ r: false }])
    await topo.query(replica, "INSERT INTO marks VALUES ('promoted')", 'app')
    t.same(await topo.query(replica, 'SELECT count(*)::int AS n FROM marks', 'app'), [{ n: 2 }])
  })

  t.test('stopNode/startNode restart a node in place', async (t) => {
    const replica = topo.node('s0-replica1')
    await topo.stopNode(replica)
    t.same(processesUnder(replica.dataDir), [], 'nothing of the stopped node runs')
    await topo.startNode(replica)
    t.same(await topo.query(replica, 'SELECT pg_is_in_recovery() AS r'), [{ r: true }], 'back as a standby')
  })

  t.test('stop() ends every process, even frozen ones, and removes the directory', async (t) => {
    await topo.kill('s0-replica1', 'SIGSTOP', 'all')
    t.ok(processesUnder(topo.baseDir).length >= 4, 'servers are running before stop()')
    const stopBegan = Date.now()
    await topo.stop()
    t.comment(`stop() took ${Date.now() - stopBegan} ms`)
    t.same(leftoversOf(topo.baseDir), [], 'no process under the base dir, and the dir is gone')
    t.equal(pgrep(topo.baseDir), '', 'pgrep -f <baseDir> finds nothing')
    t.notOk(existsSync(topo.baseDir))
    await topo.stop()
    t.pass('a second stop() is harmless')
  })
})

t.test('1 shard × 2 synchronous replicas with md5: promote one, repoint the other to it', async (t) => {
  const topo = await startTopology(t, { shards: 1, replicas: 2, synchronousReplicas: true, auth: 'md5', users: [{ name: 'app', password: 'md5-secret' }] })
  const [primary, first, second] = ['s0-primary', 's0-replica1', 's0-replica2'].map((n) => topo.node(n))

  const [setting] = await topo.query(primary, 'SHOW synchronous_standby_names')
  t.equal(setting.synchronous_standby_names, 'ANY 1 ("s0-replica1", "s0-replica2")')
  // A replica shows up in pg_stat_replication once its WAL receiver has connected: give both a moment.
  let senders: Record<string, unknown>[] = []
  for (let i = 0; i < 100; i++) {
    senders = await topo.query(primary, 'SELECT application_name, sync_state FROM pg_stat_replication ORDER BY 1')
    if (senders.length === 2 && senders.every((r) => r.sync_state === 'quorum')) break
    await new Promise((r) => setTimeout(r, 50))
  }
  t.same(senders, [
    { application_name: 's0-replica1', sync_state: 'quorum' },
    { application_name: 's0-replica2', sync_state: 'quorum' },
  ], 'both replicas are quorum candidates')

  const [stored] = await topo.query(primary, "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
  t.match(stored.rolpassword, /^md5[0-9a-f]{32}$/, 'the password is stored as md5, so the server really asks for md5')
  t.equal(await connectOutcome({ host: primary.host, port: primary.port, user: 'app', password: 'md5-secret', database: 'app' }), 'connected')
  t.equal(await connectOutcome({ host: primary.host, port: primary.port, user: 'app', password: 'wrong', database: 'app' }), '28P01')

  await topo.query(primary, 'CREATE TABLE events (id int)', 'app')
  await topo.waitForReplay(second)
  t.same(await topo.query(first, 'SELECT slot_name FROM pg_replication_slots'), [{ slot_name: 's0_replica2' }], 'replica1 holds a slot for its sibling')
  t.same(await topo.query(first, 'SELECT pg_promote() AS p'), [{ p: true }])
  await topo.query(second, `ALTER SYSTEM SET primary_conninfo = ${quoteLiteral(topo.primaryConninfo(first, second))}`)
  await topo.query(second, 'SELECT pg_reload_conf()')
  await topo.query(first, 'INSERT INTO events VALUES (1)', 'app')
  await topo.waitForReplay(second, { from: first })
  t.same(await topo.query(second, 'SELECT id FROM events', 'app'), [{ id: 1 }], 'the repointed replica follows the promoted one')
  const following = await topo.query(first, 'SELECT application_name, state FROM pg_stat_replication')
  t.same(following, [{ application_name: 's0-replica2', state: 'streaming' }])
  t.same(await topo.query(first, 'SELECT slot_name, active FROM pg_replication_slots'), [{ slot_name: 's0_replica2', active: true }])
})

t.test('nothing outlives a process that dies without calling stop()', async (t) => {
  // A clean environment: tap's NODE_OPTIONS would load its coverage hooks into the child.
  const { NODE_OPTIONS: _omit, ...env } = process.env
  // An owner this test did not get to kill (it failed first) is killed at its end: its reaper cleans up after it.
  const owners: ChildProcess[] = []
  t.teardown(() => {
    for (const child of owners) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const startOwner = async (attempt = 1): Promise<{ child: ChildProcess; exited: Promise<NodeJS.Signals | null>; baseDir: string; dataDir: string }> => {
    const child = spawn(process.execPath, ['--import', '@tapjs/typescript/import', 'test/harness/topologyOwner.ts'], {
      cwd: new URL('..', import.meta.url).pathname,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    owners.push(child)
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    let ended = ''
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (code, signal) => {
        ended = signal ?? `exit code ${code}`
        resolve(signal)
      }),
    )
    const [line] = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value as string | undefined])
    if (line === undefined) {
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 1000))])
      const why = `the owner ended before starting its topology (${ended || 'still running'}): ${stderr.slice(-2000)}`
      // Seen once in many full runs, with nothing on stderr: not what this test is about, so it starts another
      // and says why; a second such end fails it.
      if (attempt > 1) throw new Error(why)
      t.comment(why)
      return startOwner(attempt + 1)
    }
    const { baseDir, dataDir } = JSON.parse(line) as { baseDir: string; dataDir: string }
    return { child, exited, baseDir, dataDir }
  }
  const [killed, terminated] = await Promise.all([startOwner(), startOwner()])
  for (const owner of [killed, terminated]) {
    t.ok(processesUnder(owner.dataDir).length > 0, `the owner's server runs in ${owner.dataDir}`)
  }

  terminated.child.kill('SIGTERM')
  t.equal(await terminated.exited, 'SIGTERM', 'SIGTERM still ends the owner')
  t.same(leftoversOf(terminated.baseDir), [], 'its signal hook stopped the server and removed the dir before it died')

  killed.child.kill('SIGKILL')
  t.equal(await killed.exited, 'SIGKILL')
  const reapBegan = Date.now()
  const reaped = await waitFor(() => leftoversOf(killed.baseDir).length === 0, 15_000, 100)
  t.ok(reaped, `the orphan reaper cleaned up after SIGKILL (${Date.now() - reapBegan} ms)`)
})
