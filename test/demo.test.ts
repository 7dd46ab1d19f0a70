// The README's first command: `pgshard dev` starts real Postgres shards with replicas and the proxy, prints
// how to connect, serves the demo schema sharded, and stops everything on Ctrl-C.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { ensureBuilt, ROOT } from './harness/proxyProcess.js'

t.test('pgshard dev', async (t) => {
  await ensureBuilt(t)
  const child = spawn('env', ['-u', 'NODE_OPTIONS', '-u', 'NODE_V8_COVERAGE', join(ROOT, 'bin', 'pgshard'), 'dev', '--port', '0', '--metrics-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let out = ''
  child.stdout.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr.on('data', (b: Buffer) => (out += b.toString()))
  for (let i = 0; i < 600 && !/Ctrl-C stops/.test(out); i++) await new Promise((r) => setTimeout(r, 100))
  const url = /application:\s+(postgres:\/\/\S+)/.exec(out)?.[1]
  const metrics = /metrics:\s+(http:\/\/\S+)/.exec(out)?.[1]
  const map = /shard map:\s+(\S+)/.exec(out)?.[1]
  t.ok(url, `prints the application's connection string:\n${out}`)
  t.ok(metrics, 'prints the metrics URL')
  t.match(out, /admin console: .*dbname=pgshard/, 'prints the admin console')

  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const values = Array.from({ length: 100 }, (_, i) => `(${i + 1}, 'user ${i + 1}')`).join(', ')
  await c.query(`INSERT INTO accounts (id, owner) VALUES ${values}`)
  const total = await c.query('SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM accounts')
  t.same(total.rows[0], { n: '100', lo: '1', hi: '100' }, 'the demo table takes rows spread over the shards and reads them back merged')
  const one = await c.query('SELECT owner FROM accounts WHERE id = 42')
  t.equal(one.rows[0].owner, 'user 42', 'a pinned read')
  const countries = await c.query('SELECT count(*) AS n FROM countries')
  t.equal(countries.rows[0].n, '4', 'the reference table')
  // A transaction over rows of both shards: one UPDATE of ten keys, one of another, then a two-phase COMMIT.
  await c.query('BEGIN')
  await c.query('UPDATE accounts SET balance = balance + 1 WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)')
  await c.query('UPDATE accounts SET balance = balance - 10 WHERE id = 11')
  await c.query('COMMIT')
  const sums = await c.query('SELECT sum(balance) AS total, count(*) FILTER (WHERE balance <> 0) AS moved FROM accounts')
  t.same(sums.rows[0], { total: '0.00', moved: '11' }, 'a transaction across shards commits every part')
  await c.end()
  const scrape = await fetch(metrics!)
  const text = await scrape.text()
  t.match(text, /pgshard_queries_total/, 'the metrics endpoint answers')
  t.match(text, /pgshard_cross_shard_commits_total\{outcome="committed"\} 1\n/, 'that COMMIT was two-phase')

  child.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  t.equal(code, 0, 'Ctrl-C stops with exit code 0')
  t.notOk(map && existsSync(map), 'the demo servers and their files are gone')
})
