// Keys pgshard makes for a table sharded by its own serial id (sharding.tables[].key_sequence: drawn from one
// sequence on the default shard) or uuid (key_uuid: random): an INSERT that leaves the key out, as every ORM's
// create() does, gets them written into its rows, and each row lands on the shard of its key; a transaction that
// cannot leave its shard gets keys of that shard.
import pg from 'pg'
import postgres from 'postgres'
import t from 'tap'
import { ProxyApp } from '../src/proxy/ProxyApp.js'
import { SYNC, encodeBind, encodeExecute, encodeParse } from '../src/protocol/FrontendMessages.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { RawClient } from './harness/RawClient.js'
import { runCommand } from './harness/runCommand.js'
import { proxyConfig, startProxy } from './harness/startProxy.js'

const SHARDING = {
  tables: [
    { name: 'customers', key: 'id', type: 'bigint', key_sequence: 'customers_id_seq' },
    { name: 'tenants', key: 'id', type: 'integer', key_sequence: 'no_such_seq' },
    { name: 'plain', key: 'id', type: 'bigint' },
    { name: 'users', key: 'id', type: 'uuid', key_uuid: true },
    { name: 'reset_me', key: 'id', type: 'bigint', key_sequence: 'reset_me_id_seq' },
    { name: 'orders', key: 'customer_id', type: 'bigint' },
    { name: 'tickets', key: 'id', type: 'bigint', key_sequence: 'tickets_id_seq' },
    { name: 'always_ids', key: 'id', type: 'bigint', key_sequence: 'always_ids_id_seq' },
  ],
  reference_tables: ['countries', 'labels'],
  made_columns: [
    { table: 'orders', column: 'id', sequence: 'orders_id_seq' },
    { table: 'countries', column: 'id', sequence: 'countries_id_seq' },
    { table: 'tickets', column: 'number', sequence: 'ticket_numbers' },
    { table: 'labels', column: 'id', uuid: true },
  ],
}
const fx = await startProxy(t, { topology: { shards: 2, auth: 'trust' }, config: { sharding: SHARDING, users: [{ name: 'app', auth: 'trust' }] } })
const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
const shardOf = (id: string | number) => map.shardForTypedHint('bigint', String(id))
const ports = fx.topo.shards.map((s) => String(s.primary.port))
const client = new pg.Client(fx.pgOptions)
await client.connect()
t.teardown(() => client.end())
await client.query('CREATE TABLE customers (id bigserial PRIMARY KEY, name text)')
await client.query('CREATE TABLE tenants (id serial PRIMARY KEY, name text)')
await client.query('CREATE TABLE plain (id bigserial PRIMARY KEY, name text)')
await client.query('CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text)')

/** Each shard's customer ids, read directly from its primary. */
const idsOnShards = (): Promise<number[][]> =>
  fx.topo.queryPrimaries('SELECT id FROM customers ORDER BY id', 'app').then((shards) => shards.map((rows) => rows.map((r) => Number(r.id))))

t.test('a multi-row INSERT without the key (simple query): each row gets the next key and goes to its shard', async (t) => {
  const r = await client.query("INSERT INTO customers (name) VALUES ('a'), ('b'), ('c'), ('d'), ('e'), ('f'), ('g'), ('h') RETURNING id, name, current_setting('port') AS port")
  t.equal(r.rowCount, 8)
  const ids = r.rows.map((row) => Number(row.id))
  t.same(ids, [...ids].sort((a, b) => a - b), 'keys in VALUES order, increasing, as one sequence gives them')
  t.equal(new Set(ids).size, 8, 'no key twice')
  t.same(r.rows.map((row) => row.name), ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])
  t.same(r.rows.map((row) => row.port), ids.map((id) => ports[shardOf(id)]), 'each row written on the shard of its key')
  t.equal(new Set(r.rows.map((row) => row.port)).size, 2, 'both shards got rows')
})

t.test('node-postgres: a named prepared INSERT without the key, run again and again, with parameters', async (t) => {
  const got: { id: number; port: string }[] = []
  for (let i = 0; i < 12; i++) {
    const r = await client.query({ name: 'create-customer', text: "INSERT INTO customers (name) VALUES ($1) RETURNING id, current_setting('port') AS port", values: [`n${i}`] })
    got.push({ id: Number(r.rows[0].id), port: r.rows[0].port })
  }
  t.equal(new Set(got.map((g) => g.id)).size, 12, 'a new key each time')
  t.same(got.map((g) => g.port), got.map((g) => ports[shardOf(g.id)]), 'each on the shard of its key')
  const two = await client.query('INSERT INTO customers (name) VALUES ($1), ($2) RETURNING name', ['x', 'y'])
  t.same(two.rows.map((r) => r.name), ['x', 'y'], 'two rows through the extended protocol')
  const named = await client.query({ name: 'find', text: 'SELECT name FROM customers WHERE id = $1', values: [got[3].id] })
  t.same(named.rows, [{ name: 'n3' }], 'the client’s other statements are untouched')
})

t.test('DEFAULT as the key of every row (Sequelize sends so) gets drawn keys too', async (t) => {
  const one = await client.query(`INSERT INTO "customers" ("id","name") VALUES (DEFAULT,$1) RETURNING "id","name", current_setting('port') AS port`, ['sq1'])
  t.equal(one.rows[0].port, ports[shardOf(one.rows[0].id)], 'on the shard of its key')
  const bulk = await client.query(`INSERT INTO "customers" ("id","name") VALUES (DEFAULT,'sq2'),(DEFAULT,'sq3'),(DEFAULT,'sq4') RETURNING "id","name"`)
  t.same(bulk.rows.map((r) => r.name), ['sq2', 'sq3', 'sq4'])
  t.equal(new Set([one.rows[0].id, ...bulk.rows.map((r) => r.id)]).size, 4, 'four new keys')
  await t.rejects(client.query("INSERT INTO customers (id, name) VALUES (DEFAULT, 'x'), (5, 'y')"), { code: '0A000', message: /row 1 gives its key column id by an expression \(or DEFAULT\)/ }, 'DEFAULT in some rows only: refused as before')
  const bare = await client.query(`INSERT INTO "customers" DEFAULT VALUES RETURNING "id", current_setting('port') AS port`)
  t.equal(bare.rows[0].port, ports[shardOf(bare.rows[0].id)], 'DEFAULT VALUES (ActiveRecord, SQLAlchemy for a row of defaults): a key, on its shard')
  await t.rejects(client.query('INSERT INTO plain DEFAULT VALUES'), { code: '0A000', message: /DEFAULT VALUES into sharded table plain gives no key \(column id\)/ })
})

t.test('a transaction that cannot span shards gets keys of one shard, its own', async (t) => {
  await client.query('BEGIN')
  const first = await client.query("INSERT INTO customers (name) VALUES ('t1'), ('t2'), ('t3') RETURNING id, current_setting('port') AS port")
  const rest = []
  for (let i = 0; i < 6; i++) rest.push((await client.query("INSERT INTO customers (name) VALUES ($1) RETURNING id, current_setting('port') AS port", [`t${i + 4}`])).rows[0])
  await client.query('COMMIT')
  const rows = [...first.rows, ...rest]
  const port = rows[0].port
  t.ok(rows.every((r) => r.port === port), 'every row on the shard of the first')
  t.ok(rows.every((r) => ports[shardOf(r.id)] === port), 'and every key belongs to that shard')
  t.equal(new Set(rows.map((r) => r.id)).size, 9)
  const count = await client.query("SELECT count(*)::int AS n FROM customers WHERE name LIKE 't%'")
  t.equal(count.rows[0].n, 9, 'committed')
})

t.test('lastval() and currval() after an INSERT whose keys pgshard drew answer its last row\'s key (PDO, Doctrine)', async (t) => {
  await client.query('CREATE TABLE notes (id serial PRIMARY KEY, body text)')
  t.teardown(() => client.query('DROP TABLE notes'))
  const last = async (sql: string, values?: unknown[]) => Object.values((await client.query(sql, values)).rows[0] as object)[0] as string
  const rows = (await client.query("INSERT INTO customers (name) VALUES ('lv1'), ('lv2'), ('lv3') RETURNING id")).rows
  const id = rows[2].id as string
  t.equal(await last('SELECT lastval()'), id, 'autocommit: lastval() is the last row\'s key, though no server session drew it')
  t.equal(await last('SELECT CURRVAL($1)', ['customers_id_seq']), id, 'PDO\'s lastInsertId(name): currval of a bound name')
  t.equal(await last("SELECT currval('public.customers_id_seq'::regclass)"), id, 'a qualified name, cast to regclass')
  const aliased = await client.query('SELECT pg_catalog.lastval() AS "newId"')
  t.same(aliased.fields.map((f) => [f.name, f.dataTypeID]), [['newId', 20]], 'under the alias, as bigint')
  t.equal(aliased.rows[0].newId, id)
  await client.query('BEGIN')
  const inTx = (await client.query("INSERT INTO customers (name) VALUES ('lv4') RETURNING id")).rows[0].id as string
  t.equal(await last('SELECT lastval()'), inTx, 'in a transaction')
  // A write that drew no key may have called nextval() on its server (notes' serial): lastval() is the server's again.
  await client.query("INSERT INTO notes (body) VALUES ('n')")
  t.equal(await last("SELECT currval('customers_id_seq')"), inTx, 'currval() of the drawn sequence still answers it')
  await t.rejects(client.query('SELECT lastval()'), { code: '0A000', message: /after values pgshard drew from a sequence/ }, 'after a write that drew none: refused, not a stale key')
  await client.query('ROLLBACK')
  await client.query('BEGIN')
  await client.query("INSERT INTO customers (name) VALUES ('lv5')")
  await t.rejects(client.query("SELECT currval('notes_id_seq')"), { code: '0A000' }, 'another sequence\'s currval() stays refused')
  await client.query('ROLLBACK')
  await client.query("SELECT nextval('customers_id_seq')")
  await t.rejects(client.query("SELECT currval('customers_id_seq')"), { code: '0A000' }, 'after the client\'s own nextval(): the server\'s value again, refused outside its transaction')
  await t.rejects(client.query('SELECT lastval() + 1'), { code: '0A000' }, 'lastval() in another expression is not answered from drawn keys')
})

t.test('nextval() alone in a transaction (Doctrine\'s and Hibernate\'s id generators) draws on the default shard, whatever shard the transaction is on', async (t) => {
  await client.query('CREATE SEQUENCE gen_seq')
  t.teardown(() => client.query('DROP SEQUENCE gen_seq'))
  const ids = (await client.query(`INSERT INTO customers (name) VALUES ${Array.from({ length: 40 }, (_, i) => `('g${i}')`).join(', ')} RETURNING id`)).rows.map((r) => r.id as string)
  const onShard = [0, 1].map((s) => ids.find((id) => shardOf(id) === s)!)
  t.ok(onShard.every((id) => id !== undefined), 'customers on both shards')
  const value = async (sql: string, values?: unknown[]) => String(Object.values((await client.query(sql, values)).rows[0] as object)[0])
  const drawn = [await value("SELECT nextval('gen_seq')")]
  for (const id of [onShard[1], onShard[0], onShard[1]]) {
    await client.query('BEGIN')
    await client.query('SELECT name FROM customers WHERE id = $1', [id])
    drawn.push(await value("SELECT nextval('gen_seq')"))
    drawn.push(await value('SELECT NEXTVAL($1) AS id', ['gen_seq']))
    t.equal(await value("SELECT currval('gen_seq')"), drawn.at(-1), 'currval() answers the value drawn')
    t.equal(await value('SELECT lastval()'), drawn.at(-1), 'and lastval()')
    await client.query('COMMIT')
  }
  t.same(drawn, ['1', '2', '3', '4', '5', '6', '7'], 'one sequence: every value once, in order, in every transaction')
  const states = await fx.topo.queryPrimaries('SELECT last_value::text AS v, is_called FROM gen_seq', 'app')
  t.same(states.map((rows) => [rows[0]!.v, rows[0]!.is_called]), [['7', true], ['1', false]], 'drawn on the default shard only: the other shard\'s copy was never used')
  await client.query('BEGIN')
  await value("SELECT nextval('gen_seq')")
  await t.rejects(client.query("UPDATE customers SET name = 'n' || currval('gen_seq') WHERE id = $1", [onShard[1]]), { code: '0A000', message: /currval\(\)\/lastval\(\) after values pgshard drew/ }, 'currval() inside a write: refused, the server session never drew it')
  await client.query('ROLLBACK')
  await client.query("INSERT INTO customers (name) VALUES ('parent')")
  await t.rejects(client.query("INSERT INTO plain (id, name) VALUES (currval('customers_id_seq'), 'child')"), { code: '0A000', message: /currval/ }, 'nor in a write of its own after the INSERT: the pool may serve it with another client\'s sequence state')
  await client.query('CREATE TABLE seq_parents (id serial PRIMARY KEY); CREATE TABLE seq_children (parent int)')
  t.teardown(() => client.query('DROP TABLE seq_parents, seq_children'))
  await client.query('BEGIN')
  const first = (await client.query('INSERT INTO seq_parents DEFAULT VALUES RETURNING id')).rows[0].id
  const second = await client.query("INSERT INTO seq_children (parent) VALUES (currval('seq_parents_id_seq')) RETURNING parent")
  await client.query('COMMIT')
  t.equal(second.rows[0].parent, first, 'in the transaction whose write called nextval() on its server: currval() inside a write works')

  // Not a write of the default shard: a transaction that may write one shard still writes the other.
  await client.query('BEGIN')
  await value("SELECT nextval('gen_seq')")
  await client.query("UPDATE customers SET name = 'g-upd' WHERE id = $1", [onShard[1]])
  await client.query('COMMIT')
  t.equal(await value('SELECT name FROM customers WHERE id = $1', [onShard[1]]), 'g-upd', 'nextval() then a write on a shard that is not the default one: committed')
  await client.query('BEGIN')
  await t.rejects(client.query("SELECT nextval('no_such_gen')"), { code: '42P01', message: 'relation "no_such_gen" does not exist' }, 'a sequence that does not exist: the server\'s error')
  await client.query('ROLLBACK')
  t.equal(await value('SELECT count(*) FROM customers WHERE id = $1', [onShard[0]]), '1', 'and the session goes on')
})

t.test('concurrent clients (postgres.js, psql): no key is given twice, no row is misplaced', async (t) => {
  const sql = postgres({ ...fx.pgOptions, username: fx.pgOptions.user, max: 8 })
  t.teardown(() => sql.end())
  await Promise.all(Array.from({ length: 8 }, (_, c) => (async () => {
    for (let i = 0; i < 10; i++) await sql`INSERT INTO customers (name) VALUES (${`c${c}-${i}`})`
  })()))
  const r = await runCommand('psql', ['-X', '-At', fx.dsn, '-c', "INSERT INTO customers (name) SELECT 'sel-' || g FROM generate_series(1, 6) g", '-c', "INSERT INTO customers (name) VALUES ('psql') RETURNING id"], { env: fx.env })
  t.match(r.stdout, /^INSERT 0 6\n\d+\nINSERT 0 1$/m, 'INSERT … SELECT without the key: a key made for each row; psql’s INSERT got its key')
  const onShards = await idsOnShards()
  const all = onShards.flat()
  t.equal(all.length, new Set(all).size, 'every id once over all shards')
  t.equal(onShards.reduce((n, ids, shard) => n + ids.filter((id) => shardOf(id) !== shard).length, 0), 0, 'every row on the shard of its key')
  t.equal((await client.query("SELECT count(*)::int AS n FROM customers WHERE name LIKE 'c%-%'")).rows[0].n, 80)
  t.equal((await client.query("SELECT count(*)::int AS n FROM customers WHERE name LIKE 'sel-%'")).rows[0].n, 6)
})

t.test('an identity key GENERATED ALWAYS: the drawn keys go in with OVERRIDING SYSTEM VALUE (node-postgres, postgres.js, psql)', async (t) => {
  await client.query('CREATE TABLE always_ids (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text)')
  const many = await client.query("INSERT INTO always_ids (name) VALUES ('a'), ('b'), ('c'), ('d'), ('e'), ('f') RETURNING id, current_setting('port') AS port")
  t.same(many.rows.map((row) => row.port), many.rows.map((row) => ports[shardOf(row.id)]), 'each row on the shard of its drawn key')
  const sql = postgres(fx.url, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const [byDefault] = await sql`INSERT INTO always_ids (id, name) VALUES (DEFAULT, ${'pjs'}) RETURNING id, current_setting('port') AS port`
  t.equal(byDefault!.port, ports[shardOf(byDefault!.id)], 'DEFAULT as the key, extended protocol')
  const psql = await runCommand('psql', ['-X', '-q', '-At', '-d', fx.dsn, '-c', "INSERT INTO always_ids DEFAULT VALUES RETURNING id, current_setting('port')"], { env: fx.env })
  const [id, port] = psql.stdout.trim().split('|')
  t.equal(port, ports[shardOf(id!)], 'DEFAULT VALUES')
  const onShards = (await fx.topo.queryPrimaries('SELECT id FROM always_ids', 'app')).map((rows) => rows.map((r) => String(r.id)))
  t.equal(onShards.flat().length, 8, 'every row stored once')
  t.ok(onShards.every((ids, shard) => ids.every((i) => shardOf(i) === shard)), 'none on a shard that does not own its key')
  await t.rejects(client.query("INSERT INTO always_ids (id, name) OVERRIDING USER VALUE VALUES (5, 'u')"), {
    code: '0A000', message: /OVERRIDING USER VALUE into always_ids: each shard would number its identity columns itself/, hint: /leave the identity columns out/,
  }, 'OVERRIDING USER VALUE would let each shard number the key: refused')
  await t.rejects(client.query("INSERT INTO always_ids (id, name) VALUES (5, 'given')"), { code: '428C9' }, 'a key the client gives an ALWAYS identity without OVERRIDING: Postgres\u2019s own refusal')
})

t.test('a uuid key pgshard makes (key_uuid): Rails-like INSERTs without the id, alone and in a transaction', async (t) => {
  const uuidShard = (id: string) => map.shardForTypedHint('uuid', id)
  const rows = []
  for (let i = 0; i < 6; i++) {
    rows.push((await client.query(`INSERT INTO "users" ("name") VALUES ($1) RETURNING "id", current_setting('port') AS port`, [`u${i}`])).rows[0])
  }
  const many = await client.query("INSERT INTO users (name) VALUES ('m1'), ('m2'), ('m3'), ('m4') RETURNING id, name, current_setting('port') AS port")
  t.same(many.rows.map((r) => r.name), ['m1', 'm2', 'm3', 'm4'], 'RETURNING in VALUES order')
  const all = [...rows, ...many.rows]
  t.equal(new Set(all.map((r) => r.id)).size, 10, 'ten different UUIDs')
  t.ok(all.every((r) => /^[0-9a-f-]{36}$/.test(r.id) && r.id[14] === '4'), 'version 4')
  t.same(all.map((r) => r.port), all.map((r) => ports[uuidShard(r.id)]), 'each row on the shard of its key')
  await client.query('BEGIN')
  const inTx = []
  for (let i = 0; i < 5; i++) inTx.push((await client.query("INSERT INTO users (name) VALUES ('tx') RETURNING id, current_setting('port') AS port")).rows[0])
  await client.query('COMMIT')
  t.equal(new Set(inTx.map((r) => r.port)).size, 1, 'a transaction that cannot span shards: one shard')
  t.ok(inTx.every((r) => ports[uuidShard(r.id)] === r.port), 'and each key is that shard’s')
})

t.test('a pipeline of INSERTs without the key before one Sync (psycopg 3 executemany) gets keys of its first shard', async (t) => {
  const raw = await RawClient.login(fx.port, 'app')
  t.teardown(() => raw.end())
  const rows = 8
  const binds = Array.from({ length: rows }, (_, i) => Buffer.concat([encodeBind('', 'ins', [Buffer.from(`pipe${i}`)], [], []), encodeExecute('', 0)]))
  raw.send(Buffer.concat([encodeParse('ins', "INSERT INTO customers (name) VALUES ($1) RETURNING id, current_setting('port')", []), ...binds, SYNC]))
  const reply = await raw.until('Z')
  t.equal(reply.filter((m) => m.type === 'E').length, 0, 'no error (the statements of a group run on one shard)')
  const got = reply.filter((m) => m.type === 'D').map((m) => {
    const idLength = m.body.readInt32BE(2)
    return { id: m.body.toString('utf8', 6, 6 + idLength), port: m.body.toString('utf8', 10 + idLength) }
  })
  t.equal(got.length, rows)
  t.equal(new Set(got.map((g) => g.port)).size, 1, 'all on one shard')
  t.ok(got.every((g) => ports[shardOf(g.id)] === g.port), 'each key that shard’s')
})

t.test('a sequence reset through pgshard (DROP and CREATE, RESTART, setval): its spare keys are not given again', async (t) => {
  const c = client
  await c.query('CREATE TABLE reset_me (id bigserial PRIMARY KEY, name text)')
  const insert = async () => Number((await c.query("INSERT INTO reset_me (name) VALUES ('x') RETURNING id")).rows[0].id)
  t.equal(await insert(), 1, 'the first key drawn (more wait spare)')
  await c.query('DROP TABLE reset_me')
  await c.query('CREATE TABLE reset_me (id bigserial PRIMARY KEY, name text)')
  t.equal(await insert(), 1, 'the new table’s sequence counts from 1 again: the old spare keys were dropped')
  t.equal(await insert(), 2)
  await c.query('TRUNCATE reset_me')
  await c.query('ALTER SEQUENCE reset_me_id_seq RESTART')
  t.equal(await insert(), 1, 'after ALTER SEQUENCE … RESTART')
  await c.query("SELECT setval('reset_me_id_seq', 100)")
  t.equal(await insert(), 101, 'after setval')
})

t.test('a key_sequence that does not exist: a clear error, and the session goes on', async (t) => {
  await t.rejects(client.query("INSERT INTO tenants (name) VALUES ('x')"), { code: '42P01', message: /could not draw keys from sequence no_such_seq on shard s0: relation "no_such_seq" does not exist/ })
  await t.rejects(client.query('INSERT INTO tenants (name) VALUES ($1)', ['y']), { code: '42P01' }, 'through the extended protocol too')
  t.same((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }])
  await t.rejects(client.query("INSERT INTO plain (name) VALUES ('x')"), { code: '0A000', message: /must name its key column id/, hint: /key_sequence/ }, 'a table without key_sequence still needs the key, and is told of the setting')
})

t.test('two-phase transactions: keys go where they fall; in session pooling a transaction still keeps to one shard', async (t) => {
  const proxyFor = async (mode: 'transaction' | 'session') => {
    const app = await ProxyApp.start(proxyConfig(fx.topo, { sharding: { ...SHARDING, cross_shard_transactions: 'two_phase' }, users: [{ name: 'app', auth: 'trust' }], pool: { size: 4, mode } }))
    t.teardown(() => app.stop(500))
    const c = new pg.Client({ ...fx.pgOptions, port: app.address.port })
    await c.connect()
    t.teardown(() => c.end())
    return c
  }
  const inOneTransaction = async (c: pg.Client) => {
    await c.query('BEGIN')
    const rows = []
    for (let i = 0; i < 8; i++) rows.push((await c.query("INSERT INTO customers (name) VALUES ('2pc') RETURNING id, current_setting('port') AS port")).rows[0])
    await c.query('COMMIT')
    t.ok(rows.every((r) => ports[shardOf(r.id)] === r.port), 'each row on the shard of its key')
    return new Set(rows.map((r) => r.port)).size
  }
  const spanning = await proxyFor('transaction')
  const [a, b] = [await inOneTransaction(spanning), await inOneTransaction(spanning)]
  t.ok(a === 2 || b === 2, 'a transaction across shards: 16 keys in their drawn order fell on both shards')
  await spanning.query('CREATE TABLE serial_parents (id serial PRIMARY KEY)')
  await spanning.query('BEGIN')
  await spanning.query('INSERT INTO serial_parents DEFAULT VALUES')
  await t.rejects(spanning.query("INSERT INTO plain (id, name) VALUES (1, 'c' || currval('serial_parents_id_seq'))"), { code: '0A000', message: /inside a write of a transaction that may span shards/ }, 'currval() inside a write that may run on another shard\'s server session: refused')
  await spanning.query('ROLLBACK')
  await spanning.query('DROP TABLE serial_parents')
  const session = await proxyFor('session')
  t.equal(await inOneTransaction(session), 1, 'session pooling: one shard')
  const made = (await session.query("INSERT INTO customers (name) VALUES ('sess') RETURNING id")).rows[0].id
  t.same((await session.query('SELECT lastval()')).rows, [{ lastval: made }], 'session pooling: lastval() answers the drawn key')
  await session.query("INSERT INTO customers (id, name) VALUES (1000000, 'given')")
  await t.rejects(session.query('SELECT lastval()'), { code: '0A000' }, 'session pooling: after a write that drew none, refused')
})

t.test('COPY … FROM STDIN that leaves the key out: each row gets a made key and goes to its shard (psql, postgres.js, psycopg binary)', async (t) => {
  const named = async (pattern: string) =>
    (await fx.topo.queryPrimaries(`SELECT id, name FROM customers WHERE name LIKE '${pattern}' ORDER BY id`, 'app')).flatMap((rows, shard) => rows.map((r) => ({ id: Number(r.id), name: r.name as string, shard })))
  const lines = Array.from({ length: 300 }, (_, i) => `copied\\t${i}`).join('\n')
  const text = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', fx.dsn, '-c', '\\copy customers (name) FROM stdin'], { env: fx.env, input: `${lines}\n\\.\n` })
  t.equal(text.code, 0, `psql text COPY: ${text.stderr}`)
  t.match(text.stdout, /COPY 300/)
  const csv = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', fx.dsn, '-c', '\\copy customers (name) FROM stdin WITH (FORMAT csv, HEADER match)'], {
    env: fx.env,
    input: 'name\r\n"csv, one"\r\n"csv\ntwo"\r\n',
  })
  t.equal(csv.code, 0, `psql CSV COPY with a header that must match: ${csv.stderr}`)
  const sql = postgres({ ...fx.pgOptions, username: fx.pgOptions.user, max: 1 })
  t.teardown(() => sql.end())
  const writable = await sql`COPY customers (name) FROM STDIN`.writable()
  await new Promise<void>((resolve, reject) => writable.end('pj one\npj two', (err?: Error | null) => (err ? reject(err) : resolve())))
  await new Promise((resolve) => setTimeout(resolve, 100))
  const py = await runCommand('/usr/bin/python3', ['-c', `
import psycopg
with psycopg.connect(${JSON.stringify(fx.dsn)}, autocommit=True) as conn:
    with conn.cursor() as cur:
        with cur.copy("COPY customers (name) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text"])
            for i in range(50):
                copy.write_row((f"bin {i}",))
        print(cur.rowcount)
    with conn.cursor() as cur:
        with cur.copy("COPY users (name) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text"])
            for i in range(20):
                copy.write_row((f"ubin {i}",))
`], { env: fx.env })
  t.equal(py.code, 0, `psycopg binary COPY: ${py.stderr}`)
  t.match(py.stdout, /^50$/m)

  const rows = await named('copied%')
  t.same(rows.map((r) => r.name).sort(), lines.split('\n').map((l) => l.replace('\\t', '\t')).sort(), 'every text row, with its escapes, once')
  const all = [...rows, ...(await named('csv%')), ...(await named('pj%')), ...(await named('bin%'))]
  t.same((await named('csv%')).map((r) => r.name).sort(), ['csv\ntwo', 'csv, one'], 'CSV: quoted delimiter and line end, CRLF line ends, the header matched')
  t.same((await named('pj%')).map((r) => r.name).sort(), ['pj one', 'pj two'], 'a last row without a line end gets a key too')
  t.equal((await named('bin%')).length, 50, 'binary rows')
  t.equal(new Set(all.map((r) => r.id)).size, all.length, 'no key twice')
  t.ok(all.every((r) => shardOf(r.id) === r.shard), 'every row on the shard of its key')
  t.same(new Set(all.map((r) => r.shard)).size, 2, 'rows on both shards')
  const users = (await fx.topo.queryPrimaries("SELECT id FROM users WHERE name LIKE 'ubin%'", 'app')).flatMap((rows, shard) => rows.map((u) => ({ id: u.id as string, shard })))
  t.equal(users.length, 20, 'uuid keys made for binary rows too')
  t.ok(users.every((u) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u.id) && map.shardForTypedHint('uuid', u.id) === u.shard), 'random v4 UUIDs, each row on its shard')
  await t.rejects(client.query('SELECT lastval()'), { code: '0A000' }, 'lastval() after a COPY whose keys pgshard drew: refused, not answered with one of them')
  const bad = await runCommand('psql', ['-X', fx.dsn, '-c', '\\copy plain (name) FROM stdin'], { env: fx.env, input: 'x\n\\.\n' })
  t.match(bad.stderr, /must include its sharding key column id/, 'a table whose keys pgshard does not make still needs the key')
})

t.test('made_columns: a serial id pgshard draws never repeats across shards, and a reference table\'s is the same on every shard', async (t) => {
  await client.query('CREATE TABLE orders (customer_id bigint NOT NULL, id bigserial, total int, PRIMARY KEY (customer_id, id))')
  await client.query('CREATE TABLE countries (id serial PRIMARY KEY, code text UNIQUE NOT NULL)')
  const perShard = (sql: string) => fx.topo.queryPrimaries(sql, 'app')
  const [a, b] = [[1, 2, 3, 4, 5, 6].find((c) => shardOf(c) === 0)!, [1, 2, 3, 4, 5, 6].find((c) => shardOf(c) === 1)!]
  const made = await client.query(`INSERT INTO orders (customer_id, total) VALUES (${a}, 1), (${b}, 2), (${a}, 3) RETURNING id, customer_id, current_setting('port') AS port`)
  t.same(made.rows.map((r) => r.port), made.rows.map((r) => ports[shardOf(r.customer_id)]), 'each row on its customer\'s shard')
  const viaParams = await client.query('INSERT INTO orders (customer_id, total) VALUES ($1, $2) RETURNING id', [b, 4])
  await client.query('BEGIN')
  const inTx = await client.query('INSERT INTO orders (customer_id, id, total) VALUES ($1, DEFAULT, 5) RETURNING id', [a])
  await client.query('COMMIT')
  const ids = [...made.rows, ...viaParams.rows, ...inTx.rows].map((r) => Number(r.id))
  t.equal(new Set(ids).size, 5, 'five ids, none twice though two shards have the table')
  t.same((await perShard('SELECT count(*)::int AS n FROM orders')).map((r) => r[0]!.n as number).reduce((x, y) => x + y), 5)
  const drawnFrom = (await perShard("SELECT last_value::int AS v FROM pg_sequences WHERE sequencename = 'orders_id_seq'")).map((r) => (r[0]?.v ?? null) as number | null)
  t.ok(drawnFrom[0]! >= Math.max(...ids) && drawnFrom[1] === null, `drawn from the default shard's sequence only (last values ${drawnFrom.join(', ')})`)

  const fr = await client.query("INSERT INTO countries (code) VALUES ('FR') RETURNING id")
  await t.rejects(client.query("INSERT INTO countries (code) VALUES ('FR')"), { code: '23505' }, 'a reference INSERT refused by a shard')
  const de = await client.query("INSERT INTO countries (code) VALUES ('DE') RETURNING id")
  t.ok(Number(de.rows[0].id) > Number(fr.rows[0].id))
  t.same((await perShard('SELECT id, code FROM countries ORDER BY id')).map((rows) => rows.map((r) => `${r.id}:${r.code}`)), [[`${fr.rows[0].id}:FR`, `${de.rows[0].id}:DE`], [`${fr.rows[0].id}:FR`, `${de.rows[0].id}:DE`]], 'the same ids on every shard, even after a refused INSERT')
  t.same((await client.query('SELECT lastval() AS v')).rows, [{ v: de.rows[0].id }], 'lastval() answers the drawn id')
  // nextval() of the column's own sequence written in the INSERT (SQLAlchemy's Sequence columns): drawn once.
  const it = await client.query("INSERT INTO countries (id, code) VALUES (nextval('countries_id_seq'::regclass), 'IT') RETURNING id")
  t.same((await perShard("SELECT id FROM countries WHERE code = 'IT'")).map((rows) => rows.map((r) => r.id)), [[it.rows[0].id], [it.rows[0].id]], 'nextval(its sequence) in a reference INSERT: one value, the same on every shard')
  await t.rejects(client.query("INSERT INTO countries (id, code) VALUES (nextval('orders_id_seq'), 'ES')"), { code: '0A000', message: /calling nextval\(\), which every shard would call on its own/, hint: /sharding\.made_columns/ }, 'nextval() of another sequence in a reference INSERT: refused, not drawn once per shard')
  await t.rejects(client.query("UPDATE countries SET code = md5(random()::text) WHERE code = 'DE'"), { code: '0A000', message: /calling random\(\)/ })
  t.same((await perShard("SELECT count(*)::int AS n FROM countries WHERE code IN ('ES', 'DE')")).map((r) => r[0]!.n), [1, 1], 'nothing changed on any shard')
  const sa = await client.query("INSERT INTO orders (id, customer_id, total) VALUES (nextval('orders_id_seq'), $1, 9), (nextval($3), $2, 10) RETURNING id", [a, b, 'orders_id_seq'])
  const saIds = sa.rows.map((r) => Number(r.id))
  t.ok(saIds.every((id) => id > Math.max(...ids)) && saIds[1]! > saIds[0]!, `nextval() of the made column's sequence in a sharded INSERT: drawn on the default shard, new ids (${saIds.join(', ')})`)

  const copied = await runCommand('psql', ['-X', '-v', 'ON_ERROR_STOP=1', fx.dsn, '-c', '\\copy orders (customer_id, total) FROM stdin'], { env: fx.env, input: `${a}\t6\n${b}\t7\n${b}\t8\n\\.\n` })
  t.equal(copied.code, 0, `COPY leaving out the drawn id: ${copied.stderr}`)
  const py = await runCommand('/usr/bin/python3', ['-c', `
import psycopg
with psycopg.connect(${JSON.stringify(fx.dsn)}, autocommit=True) as conn:
    with conn.cursor() as cur:
        with cur.copy("COPY orders (customer_id, total) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4"])
            for i in range(4):
                copy.write_row((${a} if i % 2 else ${b}, 100 + i))
`], { env: fx.env })
  t.equal(py.code, 0, `binary COPY leaving out the drawn id: ${py.stderr}`)
  const all = (await perShard('SELECT id, customer_id FROM orders')).flatMap((rows, shard) => rows.map((r) => ({ id: Number(r.id), customer: Number(r.customer_id), shard })))
  t.equal(all.length, 14)
  t.equal(new Set(all.map((r) => r.id)).size, 14, 'COPY rows get drawn ids too: none repeats across shards')
  t.ok(all.every((r) => shardOf(r.customer) === r.shard), 'each row on its customer\'s shard')
  const refCopy = await runCommand('psql', ['-X', fx.dsn, '-c', '\\copy countries (code) FROM stdin'], { env: fx.env, input: 'JP\n\\.\n' })
  t.match(refCopy.stderr, /COPY into reference table countries leaves out id, which pgshard makes/, 'a reference table\'s COPY without the drawn id: refused, not numbered per shard')
  await t.rejects(client.query("INSERT INTO countries (code) SELECT 'X' || g FROM generate_series(1, 2) g"), { code: '0A000', message: /INSERT … SELECT into countries leaves out id, which pgshard makes/ })
  await client.query('CREATE TABLE tickets (id bigint PRIMARY KEY, number bigint NOT NULL, title text)')
  await client.query('CREATE SEQUENCE tickets_id_seq')
  await client.query('CREATE SEQUENCE ticket_numbers')
  const ticket = await client.query("INSERT INTO tickets (title) VALUES ($1) RETURNING id, number, current_setting('port') AS port", ['help'])
  t.ok(Number(ticket.rows[0].number) >= 1, 'a drawn column and a drawn key in one INSERT (extended protocol): both made')
  t.equal(ticket.rows[0].port, ports[shardOf(ticket.rows[0].id)], 'routed by the key')
  t.teardown(() => client.query('DROP TABLE orders, countries, tickets; DROP SEQUENCE tickets_id_seq, ticket_numbers'))
})

t.test('made_columns with uuid: a reference table\'s gen_random_uuid() id is made once, the same on every shard', async (t) => {
  await client.query('CREATE TABLE labels (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text UNIQUE)')
  t.teardown(() => client.query('DROP TABLE labels'))
  const made = await client.query("INSERT INTO labels (name) VALUES ('red'), ('blue') RETURNING id, name")
  t.equal(made.rows.length, 2)
  const perShard = await fx.topo.queryPrimaries('SELECT id, name FROM labels ORDER BY name', 'app')
  t.same(perShard[0], perShard[1], 'every shard stores the same ids')
  t.same(perShard[0]!.map((r) => r.id).sort(), made.rows.map((r) => r.id).sort(), 'the ids RETURNING gave')
})
