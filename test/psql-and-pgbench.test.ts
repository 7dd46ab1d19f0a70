// psql and pgbench, the clients every DBA uses, through the proxy to a real Postgres: queries, \copy both
// ways, \d, an error and recovery, Ctrl-C cancel, and pgbench in every query mode — in session and in
// transaction pooling.
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startProxy } from './harness/startProxy.js'
import { runCommand } from './harness/runCommand.js'

for (const mode of ['session', 'transaction'] as const) {
  t.test(`psql and pgbench in ${mode} pooling`, async (t) => {
    const fx = await startProxy(t, { config: { pool: { mode, size: 4 } } })
    const psql = (sql: string, extra: string[] = []) => runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', fx.dsn, ...extra, '-c', sql], { env: fx.env })
    const dir = await mkdtemp(join(tmpdir(), 'pgshard-psql-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))

    t.test('queries, several statements in one string, an empty query', async (t) => {
      let r = await psql('SELECT 1 + 1')
      t.equal(r.code, 0, r.stderr)
      t.equal(r.stdout.trim(), '2')
      r = await psql('CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, $$one$$), (2, $$two$$); SELECT count(*) FROM items')
      t.same(r.stdout.trim().split('\n'), ['CREATE TABLE', 'INSERT 0 2', '2'], r.stderr)
      r = await runCommand('psql', ['-X', '-At', fx.dsn], { env: fx.env, input: ';\nSELECT name FROM items ORDER BY id;\n' })
      t.equal(r.stdout.trim(), 'one\ntwo', 'an empty statement then a query')
    })

    t.test('\\copy in and out', async (t) => {
      const csv = Array.from({ length: 500 }, (_, i) => `${i + 10},name ${i}`).join('\n') + '\n'
      await writeFile(join(dir, 'in.csv'), csv)
      let r = await psql(`\\copy items FROM '${join(dir, 'in.csv')}' CSV`)
      t.equal(r.code, 0, r.stderr)
      t.match(r.stdout, /COPY 500/)
      r = await psql(`\\copy (SELECT id, name FROM items WHERE id >= 10 ORDER BY id) TO '${join(dir, 'out.csv')}' CSV`)
      t.equal(r.code, 0, r.stderr)
      t.equal(await readFile(join(dir, 'out.csv'), 'utf8'), csv, 'what went in comes out')
    })

    t.test('\\d describes a table (catalog queries)', async (t) => {
      const r = await runCommand('psql', ['-X', fx.dsn, '-c', '\\d items'], { env: fx.env })
      t.equal(r.code, 0, r.stderr)
      t.match(r.stdout, /Table "public\.items"/)
      t.match(r.stdout, /items_pkey" PRIMARY KEY, btree \(id\)/)
    })

    t.test('an error, then the session goes on', async (t) => {
      const r = await runCommand('psql', ['-X', '-At', fx.dsn], {
        env: fx.env,
        input: 'SELECT * FROM no_such_table;\nBEGIN;\nSELECT 1/0;\nSELECT 1;\nROLLBACK;\nSELECT 42;\n',
      })
      t.match(r.stderr, /relation "no_such_table" does not exist/)
      t.match(r.stderr, /division by zero/)
      t.match(r.stderr, /current transaction is aborted/)
      t.match(r.stdout, /^42$/m, 'the session works after the errors')
    })

    t.test('ON_ERROR_ROLLBACK: the savepoints psql adds keep what came before the error', async (t) => {
      const r = await runCommand('psql', ['-X', '-At', '-v', 'ON_ERROR_ROLLBACK=on', fx.dsn], {
        env: fx.env,
        input: "BEGIN;\nSET work_mem = '5MB';\nSELECT 1/0;\nSET statement_timeout = '7s';\nCOMMIT;\nSHOW work_mem;\nSHOW statement_timeout;\n",
      })
      t.match(r.stderr, /division by zero/)
      t.same(r.stdout.trim().split('\n'), ['BEGIN', 'SET', 'SET', 'COMMIT', '5MB', '7s'], 'the transaction committed, and both SETs survived the rolled-back statement between them')
    })

    t.test('Ctrl-C cancels a running query within a second', async (t) => {
      const child = spawn('psql', ['-X', fx.dsn, '-c', 'SELECT pg_sleep(10)'], { env: fx.env })
      let stderr = ''
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
      await new Promise((r) => setTimeout(r, 700))
      const sent = Date.now()
      child.kill('SIGINT')
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
      const elapsed = Date.now() - sent
      t.match(stderr, /canceling statement due to user request/)
      t.ok(elapsed < 1000, `cancelled in ${elapsed} ms`)
      t.not(code, 0)
      const after = await psql('SELECT 7')
      t.equal(after.stdout.trim(), '7', 'the proxy serves the next query')
    })

    t.test('pgbench: initialize, then every query mode and reconnect per transaction', async (t) => {
      const init = await runCommand('pgbench', ['-i', '-s', '1', fx.dsn], { env: fx.env, timeoutMs: 120_000 })
      t.equal(init.code, 0, init.stderr)
      for (const args of [['-M', 'simple'], ['-M', 'extended'], ['-M', 'prepared'], ['-C', '-S']]) {
        const r = await runCommand('pgbench', ['-n', '-c', '8', '-j', '2', '-T', '3', ...args, fx.dsn], { env: fx.env, timeoutMs: 60_000 })
        t.equal(r.code, 0, `pgbench ${args.join(' ')}: ${r.stderr}`)
        const processed = /number of transactions actually processed: (\d+)/.exec(r.stdout)
        t.ok(processed && Number(processed[1]) > 0, `pgbench ${args.join(' ')} ran transactions`)
        t.match(r.stdout, /number of failed transactions: 0 /, `pgbench ${args.join(' ')}: 0 failed`)
      }
    })
  })
}
