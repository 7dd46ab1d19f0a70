// A locking read with LIMIT across shards (Django's select_for_update().first(), a job queue taking its next job
// with FOR UPDATE SKIP LOCKED LIMIT 1): each shard locks its own first rows inside a savepoint, and the shards
// none of whose rows the merge kept roll it back, so that, as on one server, only the rows the client got stay
// locked: the next worker's SKIP LOCKED takes the next job, not one past rows nobody holds.
import pg from 'pg'
import t from 'tap'
import { proxyClient } from './harness/proxyClient.js'
import { startProxy } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'jobs', key: 'id', type: 'integer' as const }], cross_shard_transactions: 'two_phase' as const }
const fx = await startProxy(t, { topology: { shards: 3 }, config: { sharding: SHARDING } })
const JOBS = 30

const setup = new pg.Client(fx.pgOptions)
await setup.connect()
await setup.query('CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL)')
await setup.query(`INSERT INTO jobs (id, state) SELECT g, 'ready' FROM generate_series(1, ${JOBS}) g`)
await setup.end()

const ids = (r: pg.QueryResult) => r.rows.map((row) => row.id as number)
const NEXT = "SELECT id FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"

/** The ready jobs nobody holds a lock on now, as a client that skips locked rows sees them. */
async function unlocked(c: pg.Client): Promise<number[]> {
  await c.query('BEGIN')
  const free = ids(await c.query("SELECT id FROM jobs WHERE state = 'ready' ORDER BY id FOR UPDATE SKIP LOCKED"))
  await c.query('ROLLBACK')
  return free
}

t.test('workers taking the next job each get the next one, and lock only it', async (t) => {
  const workers = await Promise.all([proxyClient(t, fx), proxyClient(t, fx), proxyClient(t, fx)])
  const watcher = await proxyClient(t, fx)
  const taken: number[] = []
  for (const w of workers) {
    await w.query('BEGIN')
    taken.push(...ids(await w.query(NEXT)))
  }
  t.same(taken, [1, 2, 3], 'jobs 1, 2 and 3, one each, in order')
  t.same(await unlocked(watcher), Array.from({ length: JOBS - 3 }, (_, i) => i + 4), 'every other job is free: no shard kept the locks of rows the merge dropped')
  await workers[0]!.query("UPDATE jobs SET state = 'done' WHERE id = 1")
  await workers[0]!.query('COMMIT')
  for (const w of workers.slice(1)) await w.query('ROLLBACK')
  t.same(ids(await workers[1]!.query(NEXT)), [2], 'outside a transaction block: the first ready job')
  t.same(await unlocked(watcher), Array.from({ length: JOBS - 1 }, (_, i) => i + 2), 'and its lock ended with the statement')
  await workers[1]!.query("UPDATE jobs SET state = 'ready' WHERE id = 1")
})

t.test('FOR UPDATE with LIMIT and OFFSET: the rows one server gives, locked', async (t) => {
  const c = await proxyClient(t, fx)
  const watcher = await proxyClient(t, fx)
  await c.query('BEGIN')
  const got = await c.query("SELECT id, state FROM jobs WHERE id % 2 = 0 ORDER BY id DESC LIMIT 2 OFFSET 1 FOR UPDATE")
  t.same(ids(got), [JOBS - 2, JOBS - 4], 'the merged order, OFFSET and LIMIT')
  const free = await unlocked(watcher)
  t.ok([JOBS, JOBS - 2, JOBS - 4].every((id) => !free.includes(id)), 'the rows it returned and skipped are locked, as on a server')
  t.ok(free.includes(1) && free.includes(JOBS - 1), 'rows it did not read are not')
  await c.query('COMMIT')
  t.same((await unlocked(watcher)).length, JOBS, 'COMMIT ends them')
})

t.test('a plain FOR UPDATE LIMIT 1 waits for the row another transaction holds, as on a server', async (t) => {
  const [a, b] = await Promise.all([proxyClient(t, fx), proxyClient(t, fx)])
  await a.query('BEGIN')
  t.same(ids(await a.query("SELECT id FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1 FOR UPDATE")), [1])
  await b.query('BEGIN')
  let answered = false
  const waiting = b.query("SELECT id FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1 FOR UPDATE").then((r) => {
    answered = true
    return r
  })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(answered, false, 'the second waits for job 1')
  await a.query("UPDATE jobs SET state = 'done' WHERE id = 1")
  await a.query('COMMIT')
  t.same(ids(await waiting), [2], 'then, job 1 done, it takes job 2')
  await b.query('ROLLBACK')
  await b.query("UPDATE jobs SET state = 'ready' WHERE id = 1")
})
