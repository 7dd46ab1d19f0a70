// DDL that makes a unique constraint or index on a sharded table leaving out its sharding key runs, as on a server,
// and the client is warned (WARNING, 01000) that each shard keeps it on its own rows alone: two shards may each
// hold a row with the same email. One that includes the key, or covers only a column pgshard draws unique across
// shards (made_columns), holds across shards: no warning.
import pg from 'pg'
import t from 'tap'
import { runCommand } from './harness/runCommand.js'
import { startProxy } from './harness/startProxy.js'

const SHARDING = {
  tables: [{ name: 'members', key: 'tenant', type: 'bigint' as const }],
  reference_tables: ['plans'],
  made_columns: [{ table: 'members', column: 'id', sequence: 'members_ids' }],
}
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING } })
const c = new pg.Client(fx.pgOptions)
const notices: { severity?: string; code?: string; message: string }[] = []
c.on('notice', (n) => notices.push({ severity: n.severity, code: n.code, message: n.message ?? '' }))
await c.connect()
t.teardown(() => c.end())

/** The warnings the statement got. */
async function warned(sql: string): Promise<string[]> {
  notices.length = 0
  await c.query(sql)
  return notices.filter((n) => n.severity === 'WARNING' && n.code === '01000').map((n) => n.message)
}

t.test('each kind of unique constraint that leaves out the key is said to hold per shard', async (t) => {
  await c.query('/* pgshard: shard=s0 */ CREATE SEQUENCE members_ids')
  t.same(await warned('CREATE TABLE members (id bigint PRIMARY KEY, tenant bigint NOT NULL, email text UNIQUE, handle text, UNIQUE (tenant, handle))'), [
    'UNIQUE (email) of sharded table members holds on each shard alone: rows with equal values and different tenant may sit on two shards; include tenant in it for it to hold across shards',
  ], 'CREATE TABLE: email warned; id (drawn by pgshard) and (tenant, handle) hold')
  t.same((await warned('CREATE UNIQUE INDEX members_handle ON members (handle)')).map((w) => w.split(' of ')[0]), ['unique index members_handle (handle)'], 'CREATE UNIQUE INDEX')
  t.same(await warned('CREATE UNIQUE INDEX ON members (tenant, lower(email))'), [], 'an index with the key: none')
  t.same((await warned('ALTER TABLE members ADD CONSTRAINT one_code UNIQUE (handle, email)')).map((w) => w.split(' of ')[0]), ['UNIQUE (handle, email)'], 'ALTER TABLE … ADD CONSTRAINT')
  t.same((await warned('ALTER TABLE members ADD COLUMN badge text UNIQUE')).map((w) => w.split(' of ')[0]), ['UNIQUE (badge)'], 'ALTER TABLE … ADD COLUMN … UNIQUE')
  await warned('CREATE UNIQUE INDEX members_key_email ON members (tenant, email)')
  t.same(await warned('ALTER TABLE members ADD CONSTRAINT key_email UNIQUE USING INDEX members_key_email'), [], 'a constraint made from an index: that index was judged when made')
  t.same(await warned('CREATE TABLE plans (id int PRIMARY KEY, name text UNIQUE)'), [], 'a reference table (the same rows everywhere): none')
  t.same(await warned('CREATE TABLE notes (id int PRIMARY KEY, body text UNIQUE)'), [], 'an unsharded table (one shard): none')
})

t.test('the DDL ran, and the warning is true: the same email on two shards', async (t) => {
  // Tenants land on both shards; a shard refuses its second row with that email, as its index says.
  let stored = 0
  for (let tenant = 1; tenant <= 8; tenant++) {
    await c.query('INSERT INTO members (tenant, email) VALUES ($1, $2)', [tenant, 'same@example.com']).then(
      () => stored++,
      (err: { code?: string }) => t.equal(err.code, '23505', `tenant ${tenant}: its shard already has the email`),
    )
  }
  t.equal(stored, 2, 'one row per shard')
  const perShard = await fx.topo.queryPrimaries("SELECT count(*)::int AS n FROM members WHERE email = 'same@example.com'", 'app')
  t.same(perShard.map((r) => r[0]!.n), [1, 1], 'each shard kept one: the same email twice across shards')
})

t.test('psql shows it, and the statement succeeds', async (t) => {
  const r = await runCommand('psql', [fx.dsn, '-X', '-c', 'CREATE UNIQUE INDEX members_email2 ON members (email)'], { env: fx.env, timeoutMs: 30_000 })
  t.equal(r.code, 0)
  t.match(r.stdout, /CREATE INDEX/)
  t.match(r.stderr, /WARNING: {2}unique index members_email2 \(email\) of sharded table members holds on each shard alone/)
})
