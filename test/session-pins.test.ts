// What pins a client to its server connection in transaction pooling, and for how long: a WITH HOLD cursor
// only until it is closed (Django's .iterator() and psycopg's withhold cursors in autocommit declare one on the
// shard of their query), DISCARD ALL ends every pin; a statement for another shard meanwhile is refused naming
// the pin, not a transaction. In session pooling, a WITH HOLD cursor is read on the shard where it was declared.
import pg from 'pg'
import t, { type Test } from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { proxyClient } from './harness/proxyClient.js'
import { proxyConfig, startProxy, type ProxyFixture } from './harness/startProxy.js'

const SHARDING = { tables: [{ name: 'items', key: 'id', type: 'integer' as const }], cross_shard_transactions: 'two_phase' as const }

/** A two-shard proxy with `items` holding keys on both shards; the keys of each shard, the default shard's first. */
async function itemsOnTwoShards(t: Test, mode: 'transaction' | 'session'): Promise<{ fx: ProxyFixture; keys: [number[], number[]] }> {
  const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING, pool: { mode, size: 2 } } })
  const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
  const keys: [number[], number[]] = [[], []]
  for (let k = 1; keys[0].length < 3 || keys[1].length < 3; k++) {
    const shard = map.ring.shardFor(canonicalKey('bigint', String(k), 0, 0))
    if (keys[shard].length < 3) keys[shard].push(k)
  }
  const setup = new pg.Client(fx.pgOptions)
  await setup.connect()
  await setup.query('CREATE TABLE items (id int PRIMARY KEY, label text)')
  for (const k of [...keys[0], ...keys[1]]) await setup.query('INSERT INTO items (id, label) VALUES ($1, $2)', [k, `item ${k}`])
  await setup.end()
  return { fx, keys }
}


const pinnedCount = (fx: ProxyFixture): number => [...fx.app.proxy.sessions].filter((s) => s.pinnedBy !== null).length

t.test('a WITH HOLD cursor pins its client until it is closed; then the client reads every shard again', async (t) => {
  const { fx, keys } = await itemsOnTwoShards(t, 'transaction')
  const c = await proxyClient(t, fx)
  const key = keys[1][0]
  await c.query(`DECLARE hc NO SCROLL CURSOR WITH HOLD FOR SELECT id FROM items WHERE id IN (${key}) ORDER BY id`)
  t.same((await c.query('FETCH FORWARD 2 FROM hc')).rows, [{ id: key }], 'the cursor reads its row on the pinned connection')
  t.equal(pinnedCount(fx), 1, 'the client is pinned while the cursor is open')
  await t.rejects(c.query('SELECT count(*) FROM items'), {
    code: '0A000',
    message: /^this session is pinned to shard s1 by a WITH HOLD cursor; this statement needs every shard/,
    hint: /close its WITH HOLD cursors/,
  }, 'a read of every shard meanwhile is refused naming the pin, not a transaction')
  await c.query('CLOSE hc')
  t.equal(pinnedCount(fx), 0, 'closing the cursor ends the pin')
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 6, 'a read of every shard works again')
  t.equal((await c.query('SELECT label FROM items WHERE id = $1', [keys[0][0]])).rows[0].label, `item ${keys[0][0]}`, 'so does a read of the other shard')

  // Two cursors: the pin lasts until the last is closed; CLOSE ALL closes every one.
  await c.query(`DECLARE h1 CURSOR WITH HOLD FOR SELECT id FROM items WHERE id = ${key}`)
  await c.query(`DECLARE h2 CURSOR WITH HOLD FOR SELECT id FROM items WHERE id = ${keys[1][1]}`)
  await c.query('CLOSE h1')
  t.equal(pinnedCount(fx), 1, 'one cursor of two closed: still pinned')
  await c.query('CLOSE ALL')
  t.equal(pinnedCount(fx), 0, 'CLOSE ALL ends the pin')
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 6)

  // A pin that lasts for the session (a session advisory lock) is not ended by closing a cursor.
  await c.query(`DECLARE h3 CURSOR WITH HOLD FOR SELECT id FROM items WHERE id = ${key}`)
  await c.query('SELECT pg_advisory_lock(42)')
  await c.query('CLOSE h3')
  t.equal(pinnedCount(fx), 1, 'the advisory lock still pins the client')
  await t.rejects(c.query('SELECT count(*) FROM items'), { code: '0A000', message: /pinned to shard s1 by a session-level advisory lock/, hint: /release its advisory locks with pg_advisory_unlock_all\(\)/ })
  await c.query('SELECT pg_advisory_unlock_all()')
  t.equal(pinnedCount(fx), 0, 'pg_advisory_unlock_all() ends an advisory lock’s pin')
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 6)
  await c.query(`CREATE TEMP TABLE scratch (x int)`)
  await c.query('SELECT pg_advisory_lock(7)')
  await c.query('SELECT pg_advisory_unlock_all()')
  t.equal(pinnedCount(fx), 1, 'but not a temporary table’s')
  await c.query('DISCARD ALL')
  t.equal(pinnedCount(fx), 0, 'DISCARD ALL (which releases advisory locks and closes cursors) ends every pin')
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 6)
})

t.test('a WITH HOLD cursor declared in a transaction that rolls back pins nothing after it', async (t) => {
  const { fx, keys } = await itemsOnTwoShards(t, 'transaction')
  const c = await proxyClient(t, fx)
  await c.query('BEGIN')
  await c.query(`DECLARE gone CURSOR WITH HOLD FOR SELECT id FROM items WHERE id = ${keys[1][0]}`)
  await c.query('ROLLBACK')
  t.equal(pinnedCount(fx), 0, 'the rollback took the cursor, and the pin, with it')
  t.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 6, 'the client reads every shard')
  await c.query('BEGIN')
  await c.query(`DECLARE kept CURSOR WITH HOLD FOR SELECT id FROM items WHERE id = ${keys[1][0]}`)
  await c.query('COMMIT')
  t.equal(pinnedCount(fx), 1, 'committed, it outlives the transaction and pins')
  t.same((await c.query('FETCH ALL FROM kept')).rows, [{ id: keys[1][0] }])
  await c.query('CLOSE kept')
  t.equal(pinnedCount(fx), 0)
})

t.test('the connection a closed WITH HOLD cursor pinned goes back to the pool clean', async (t) => {
  const { fx, keys } = await itemsOnTwoShards(t, 'transaction')
  const [a, b] = [await proxyClient(t, fx), await proxyClient(t, fx)]
  await a.query(`DECLARE hc CURSOR WITH HOLD FOR SELECT id FROM items WHERE id = ${keys[0][0]}`)
  await a.query("SET application_name = 'pinned-a'")
  const pid = (await a.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
  await a.query('CLOSE hc')
  // Both of the shard's connections serve B in turn: neither carries A's cursor or setting.
  for (let round = 0; round < 4; round++) {
    await b.query('BEGIN')
    const seen = (await b.query(`SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app, (SELECT count(*)::int FROM pg_cursors) AS cursors FROM items WHERE id = ${keys[0][1]}`)).rows[0]
    t.not(seen.app, 'pinned-a', `round ${round}: A's setting does not reach B (pid ${seen.pid}, A's was ${pid})`)
    t.equal(seen.cursors, 0, `round ${round}: no cursor left on B's connection`)
    await b.query('COMMIT')
  }
  t.equal((await a.query('SHOW application_name')).rows[0].application_name, 'pinned-a', 'A keeps its setting on whichever connection serves it')
})

t.test('session pooling: a client holding the last connection of a shard still reads every shard (the reserve serves it)', async (t) => {
  const { fx, keys } = await itemsOnTwoShards(t, 'session')
  const [a, b] = [await proxyClient(t, fx), await proxyClient(t, fx)]
  // Each session keeps the connection its read took: both of shard s0's two are taken.
  for (const c of [a, b]) await c.query('SELECT label FROM items WHERE id = $1', [keys[0][0]])
  t.same((await a.query('SELECT count(*)::int AS n FROM items')).rows, [{ n: 6 }], 'a read of every shard needs one more connection of s0: not a wait for itself')
  t.same((await b.query('SELECT count(*)::int AS n FROM items')).rows, [{ n: 6 }])
})

t.test('session pooling: a transaction\u2019s statement for another shard is refused naming the transaction, not the Syncs (extended protocol)', async (t) => {
  const { fx, keys } = await itemsOnTwoShards(t, 'session')
  const c = await proxyClient(t, fx)
  await c.query('BEGIN')
  await c.query('SELECT label FROM items WHERE id = $1', [keys[0][0]])
  await t.rejects(c.query('UPDATE items SET label = $2 WHERE id = $1', [keys[1][0], 'x']), {
    code: '0A000',
    message: /transaction is pinned to shard s0 by its first statement.*; the statement needs another shard/,
    hint: /in session pooling a transaction stays on the shard of its first statement/,
  })
  await c.query('ROLLBACK')
  t.same((await c.query('SELECT label FROM items WHERE id = $1', [keys[1][0]])).rows, [{ label: `item ${keys[1][0]}` }], 'nothing changed; the session goes on')
})

t.test('session pooling: a WITH HOLD cursor is read on the shard where it was declared', async (t) => {
  const { fx, keys } = await itemsOnTwoShards(t, 'session')
  const c = await proxyClient(t, fx)
  for (const [shard, key] of [[0, keys[0][0]], [1, keys[1][0]]] as const) {
    const name = `h${shard}`
    await c.query(`DECLARE ${name} CURSOR WITH HOLD FOR SELECT id FROM items WHERE id = ${key}`)
    // Another shard's statement between them: the cursor's FETCH still goes back to its shard.
    await c.query('SELECT count(*) FROM items')
    t.same((await c.query(`FETCH ALL FROM ${name}`)).rows, [{ id: key }], `the cursor declared on shard s${shard} is read there`)
    await c.query(`CLOSE ${name}`)
  }
  // Declared in a transaction, WITH HOLD: it outlives the COMMIT, and is still read where it lives.
  await c.query('BEGIN')
  await c.query(`DECLARE ht CURSOR WITH HOLD FOR SELECT id FROM items WHERE id = ${keys[1][1]}`)
  await c.query('COMMIT')
  t.same((await c.query('FETCH ALL FROM ht')).rows, [{ id: keys[1][1] }], 'a WITH HOLD cursor declared in a transaction is read after its COMMIT')
  await c.query('CLOSE ht')
  await t.rejects(c.query('FETCH ALL FROM ht'), { code: '34000' }, 'a closed cursor is gone, as on a server')
  // A read of every shard inside a read-write transaction, through the extended protocol: refused for that reason.
  await c.query('BEGIN')
  await c.query('UPDATE items SET label = $1 WHERE id = $2', ['x', keys[1][0]])
  await t.rejects(c.query('SELECT count(*) FROM items WHERE label <> $1', ['y']), { code: '0A000', message: /^a read from every shard cannot run inside a read-write transaction/ })
  await c.query('ROLLBACK')
})
