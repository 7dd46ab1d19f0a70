// Issue 4's acceptance workload: a seeded, reproducible mix of inserts (single and multi-row, split across
// shards), updates, deletes and point reads on three sharded tables (bigint, text and uuid keys) through pgshard,
// from every client kind at once — psql (simple protocol, a script on stdin, literals spelt several ways),
// node-postgres (extended protocol, named and unnamed statements), postgres.js (prepared statements, int8-typed
// parameters) and psycopg (binary parameters and results). Every read is checked against the model each client
// keeps; then every shard's primary is read directly: each row must sit on the shard the ring names, and the rows
// must be exactly the model's (0 misplaced, 0 lost, 0 extra).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import postgres from 'postgres'
import t from 'tap'
import { canonicalKey, type KeyType } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { quoteLiteral } from '../src/router/SqlQuoting.js'
import { runCommand } from './harness/runCommand.js'
import { seededRandom } from './harness/seededRandom.js'
import { APP_PASSWORD, proxyConfig, startProxy } from './harness/startProxy.js'

const STATEMENTS_PER_CLIENT = 5200
const SHARDING = {
  tables: [
    { name: 'accounts', key: 'id', type: 'bigint' },
    { name: 'members', key: 'name', type: 'text' },
    { name: 'devices', key: 'id', type: 'uuid' },
  ],
}
const SCHEMA = [
  'CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL, note text)',
  'CREATE TABLE members (name text PRIMARY KEY, score int NOT NULL)',
  'CREATE TABLE devices (id uuid PRIMARY KEY, owner bigint, label text)',
]

type Table = 'accounts' | 'members' | 'devices'
const TABLES: Record<Table, { key: string; keyType: KeyType; columns: string[] }> = {
  accounts: { key: 'id', keyType: 'bigint', columns: ['id', 'balance', 'note'] },
  members: { key: 'name', keyType: 'text', columns: ['name', 'score'] },
  devices: { key: 'id', keyType: 'uuid', columns: ['id', 'owner', 'label'] },
}

/** A parameter value with the type each client needs to send it properly. */
type Param = { int: string } | { text: string | null } | { uuid: string }
/** A row as Postgres prints it in text (uuid lower case), NULL as null. */
type Row = (string | null)[]
interface Op {
  /** Statement text with $1, $2 … */
  sql: string
  params: Param[]
  /** Rows a read returns, or the row count a write reports. */
  expect: { rows: Row[] } | { count: number }
}

/** The operations of one client, on keys of its own (so clients never race), and the rows they leave. */
function workload(client: string, seed: number, keyBase: number): { ops: Op[]; model: Map<Table, Map<string, Row>> } {
  const rand = seededRandom(seed)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  const model = new Map<Table, Map<string, Row>>(Object.keys(TABLES).map((table) => [table as Table, new Map()]))
  const hex = () => Array.from({ length: 32 }, () => int(0, 15).toString(16)).join('')
  const note = () => (rand() < 0.15 ? null : `${client} note ${int(0, 9999)}`)
  const newKey = (table: Table): string => {
    for (;;) {
      const h = hex()
      const key =
        table === 'accounts' ? String(keyBase + int(0, 999_999)) : table === 'members' ? `${client}-m${int(0, 99_999)}${rand() < 0.1 ? '-ü' : ''}` : `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
      if (!model.get(table)!.has(key)) return key
    }
  }
  const keyParam = (table: Table, key: string): Param => (table === 'accounts' ? { int: key } : table === 'members' ? { text: key } : { uuid: key })
  const newRow = (table: Table, key: string): Row =>
    table === 'accounts' ? [key, String(int(-1000, 1_000_000)), note()] : table === 'members' ? [key, String(int(0, 1000))] : [key, rand() < 0.2 ? null : String(int(1, 1e9)), note()]
  // Column 0 is the key, column 1 an integer, column 2 text.
  const rowParams = (table: Table, row: Row): Param[] =>
    row.map((v, i) => (i === 0 ? keyParam(table, v!) : i === 1 && v !== null ? { int: v } : { text: v }))
  const existing = (table: Table): string | undefined => {
    const keys = model.get(table)!
    if (keys.size === 0) return undefined
    // Sampling by index keeps the choice reproducible.
    let i = int(0, keys.size - 1)
    for (const k of keys.keys()) if (i-- === 0) return k
    return undefined
  }
  const ops: Op[] = []
  while (ops.length < STATEMENTS_PER_CLIENT) {
    const table = (['accounts', 'members', 'devices'] as const)[int(0, 2)]!
    const spec = TABLES[table]
    const rows = model.get(table)!
    const roll = rand()
    const key = existing(table)
    if (roll < 0.3 || key === undefined) {
      const n = table === 'accounts' && rand() < 0.15 ? int(2, 6) : 1
      const fresh = Array.from({ length: n }, () => {
        const k = newKey(table)
        const row = newRow(table, k)
        rows.set(k, row)
        return row
      })
      const width = spec.columns.length
      const values = fresh.map((_, r) => `(${spec.columns.map((_, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ')
      ops.push({ sql: `INSERT INTO ${table} (${spec.columns.join(', ')}) VALUES ${values}`, params: fresh.flatMap((row) => rowParams(table, row)), expect: { count: n } })
    } else if (roll < 0.55) {
      const row = rows.get(key)!
      const column = spec.columns[1]!
      const value = table === 'devices' && rand() < 0.2 ? null : String(int(0, 1_000_000))
      row[1] = value
      ops.push({ sql: `UPDATE ${table} SET ${column} = $1 WHERE ${spec.key} = $2`, params: [value === null ? { text: null } : { int: value }, keyParam(table, key)], expect: { count: 1 } })
    } else if (roll < 0.65) {
      rows.delete(key)
      ops.push({ sql: `DELETE FROM ${table} WHERE ${spec.key} = $1`, params: [keyParam(table, key)], expect: { count: 1 } })
    } else {
      // A read of a row that exists, or of a key that does not (deleted or never written).
      const probe = rand() < 0.85 ? key : newKey(table)
      const row = rows.get(probe)
      ops.push({ sql: `SELECT ${spec.columns.join(', ')} FROM ${table} WHERE ${spec.key} = $1`, params: [keyParam(table, probe)], expect: { rows: row ? [[...row]] : [] } })
    }
  }
  return { ops, model }
}

// ---- clients ---------------------------------------------------------------------------------------------

interface Outcome {
  statements: number
  mismatches: string[]
}

function describe(op: Op, got: unknown): string {
  return `${op.sql} ${JSON.stringify(op.params)}: expected ${JSON.stringify(op.expect)}, got ${JSON.stringify(got)}`
}

/** psql: every parameter inlined as a literal, spelt in several ways the router must all place alike. */
function psqlScript(ops: Op[], rand: () => number): { script: string; expected: string[] } {
  const literal = (p: Param): string => {
    if ('int' in p) return [p.int, `'${p.int}'`, `${p.int}::bigint`, `'${p.int}'::int8`][Math.floor(rand() * 4)]!
    if ('uuid' in p) return quoteLiteral(rand() < 0.5 ? p.uuid.toUpperCase() : p.uuid)
    return p.text === null ? 'NULL' : quoteLiteral(p.text)
  }
  const lines = ['\\set ON_ERROR_STOP 1', "\\pset null '(null)'"]
  const expected: string[] = []
  for (const op of ops) {
    lines.push(op.sql.replace(/\$(\d+)/g, (_, n: string) => literal(op.params[Number(n) - 1]!)) + ';')
    if ('rows' in op.expect) for (const row of op.expect.rows) expected.push(row.map((v) => v ?? '(null)').join('|'))
  }
  return { script: lines.join('\n') + '\n', expected }
}

async function runNodePostgres(options: pg.ClientConfig, ops: Op[]): Promise<Outcome> {
  const client = new pg.Client(options)
  await client.connect()
  const raw = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig
  const names = new Map<string, string>()
  const mismatches: string[] = []
  try {
    for (const [i, op] of ops.entries()) {
      const values = op.params.map((p) => ('int' in p ? p.int : 'uuid' in p ? p.uuid : p.text))
      // Every other statement is named, so the proxy's prepared-statement handling is in the loop too.
      if (i % 2 === 0 && !names.has(op.sql)) names.set(op.sql, `w${names.size}`)
      const name = i % 2 === 0 ? names.get(op.sql) : undefined
      const r = await client.query({ text: op.sql, values, rowMode: 'array', types: raw, ...(name ? { name } : {}) }).catch((err: Error) => err)
      if (r instanceof Error) {
        mismatches.push(describe(op, r.message))
        continue
      }
      const ok = 'rows' in op.expect ? JSON.stringify(r.rows) === JSON.stringify(op.expect.rows) : r.rowCount === op.expect.count
      if (!ok) mismatches.push(describe(op, 'rows' in op.expect ? r.rows : r.rowCount))
    }
  } finally {
    await client.end()
  }
  return { statements: ops.length, mismatches }
}

async function runPostgresJs(url: string, ops: Op[]): Promise<Outcome> {
  const sql = postgres(url, { max: 1, prepare: true, onnotice: () => undefined })
  const mismatches: string[] = []
  try {
    for (const op of ops) {
      // int8 values as JS bigint: postgres.js sends them typed int8.
      const values = op.params.map((p) => ('int' in p ? BigInt(p.int) : 'uuid' in p ? p.uuid : p.text))
      const r = await sql.unsafe(op.sql, values as never[], { prepare: true }).values().catch((err: Error) => err)
      if (r instanceof Error) {
        mismatches.push(describe(op, r.message))
        continue
      }
      const rows = r.map((row) => row.map((v: unknown) => (v === null ? null : String(v))))
      const ok = 'rows' in op.expect ? JSON.stringify(rows) === JSON.stringify(op.expect.rows) : r.count === op.expect.count
      if (!ok) mismatches.push(describe(op, 'rows' in op.expect ? rows : r.count))
    }
  } finally {
    await sql.end()
  }
  return { statements: ops.length, mismatches }
}

// psycopg 3 with binary parameters (%b: ints as int2/int4/int8 by size, uuids as 16 bytes) and binary results;
// statements are prepared on the server after their first use.
const PSYCOPG_SCRIPT = `
import json, sys, uuid
import psycopg
conninfo, ops_file = sys.argv[1], sys.argv[2]
ops = json.load(open(ops_file))
def value(p):
    if 'int' in p: return int(p['int'])
    if 'uuid' in p: return uuid.UUID(p['uuid'])
    return p['text']
def text(v):
    return None if v is None else str(v)
mismatches = []
with psycopg.connect(conninfo, autocommit=True, prepare_threshold=1) as conn:
    with conn.cursor(binary=True) as cur:
        for op in ops:
            sql = op['sql']
            for n in range(len(op['params']), 0, -1):
                sql = sql.replace('$%d' % n, '%b')
            cur.execute(sql, [value(p) for p in op['params']])
            if 'rows' in op['expect']:
                got = [[text(v) for v in row] for row in cur.fetchall()]
                ok = got == op['expect']['rows']
            else:
                got = cur.rowcount
                ok = got == op['expect']['count']
            if not ok:
                mismatches.append('%s %s: expected %s, got %s' % (op['sql'], op['params'], op['expect'], got))
print(json.dumps({'statements': len(ops), 'mismatches': mismatches[:20]}))
`

// ---- the test --------------------------------------------------------------------------------------------

t.test('a randomized workload from every client kind leaves every row on its shard', async (t) => {
  const fx = await startProxy(t, { topology: { shards: 3 }, config: { sharding: SHARDING, pool: { size: 6 } } })
  const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
  const setup = new pg.Client(fx.pgOptions)
  await setup.connect()
  for (const ddl of SCHEMA) await setup.query(ddl)
  await setup.end()

  const clients = ['psql', 'node-postgres', 'postgres.js', 'psycopg'] as const
  const loads = clients.map((client, i) => workload(client, 4242 + i, (i + 1) * 10_000_000))
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-workload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const psql = psqlScript(loads[0]!.ops, seededRandom(99))
  const opsFile = join(dir, 'psycopg-ops.json')
  await writeFile(opsFile, JSON.stringify(loads[3]!.ops))

  const started = Date.now()
  const [psqlRun, nodeRun, jsRun, pyRun] = await Promise.all([
    runCommand('psql', ['-X', '-q', '-At', fx.dsn], { env: fx.env, input: psql.script, timeoutMs: 120_000 }),
    runNodePostgres(fx.pgOptions, loads[1]!.ops),
    runPostgresJs(fx.url, loads[2]!.ops),
    runCommand('/usr/bin/python3', ['-', `${fx.dsn} password=${APP_PASSWORD}`, opsFile], { input: PSYCOPG_SCRIPT, timeoutMs: 120_000 }),
  ])
  const seconds = (Date.now() - started) / 1000

  t.equal(psqlRun.code, 0, `psql ran its script: ${psqlRun.stderr.slice(0, 500)}`)
  const psqlLines = psqlRun.stdout.split('\n').filter((l) => l !== '')
  t.equal(psqlLines.length, psql.expected.length, 'psql: as many rows read as the model expects')
  t.same(psqlLines, psql.expected, 'psql: every point read returned the model\u2019s row')
  t.same(nodeRun.mismatches.slice(0, 10), [], `node-postgres: ${nodeRun.statements} statements, every result as the model says`)
  t.same(jsRun.mismatches.slice(0, 10), [], `postgres.js: ${jsRun.statements} statements, every result as the model says`)
  t.equal(pyRun.code, 0, `psycopg ran its script: ${pyRun.stderr.slice(-2000)}`)
  const py = JSON.parse(pyRun.stdout.trim().split('\n').at(-1) ?? '{}') as Outcome
  t.same(py.mismatches, [], `psycopg: ${py.statements} statements, every result as the model says`)
  const total = loads.reduce((a, l) => a + l.ops.length, 0)
  t.ok(total >= 20_000, `${total} statements through the proxy in ${seconds.toFixed(1)} s`)

  // Every shard's primary, read directly as the superuser.
  let misplaced = 0
  const found = new Map<Table, Map<string, Row>>(Object.keys(TABLES).map((table) => [table as Table, new Map()]))
  const perShard: number[] = []
  for (const [index, shard] of fx.topo.shards.entries()) {
    const direct = new pg.Client({ host: '127.0.0.1', port: shard.primary.port, user: 'postgres', password: fx.topo.superuser.password, database: 'app' })
    await direct.connect()
    let rows = 0
    try {
      for (const [table, spec] of Object.entries(TABLES) as [Table, (typeof TABLES)[Table]][]) {
        const r = await direct.query({ text: `SELECT ${spec.columns.map((c) => `${c}::text`).join(', ')} FROM ${table}`, rowMode: 'array' })
        for (const row of r.rows as Row[]) {
          rows++
          const owner = map.ring.shardFor(canonicalKey(spec.keyType, row[0]!, 0, 0))
          if (owner !== index) misplaced++
          if (found.get(table)!.has(row[0]!)) t.fail(`${table} ${row[0]} is on two shards`)
          found.get(table)!.set(row[0]!, row)
        }
      }
    } finally {
      await direct.end()
    }
    perShard.push(rows)
  }
  t.equal(misplaced, 0, `0 rows misplaced (rows per shard: ${perShard.join(', ')})`)
  t.ok(perShard.every((n) => n > 0), 'every shard holds rows')
  // Per client, so that one client's failures do not hide another's.
  let modelRows = 0
  for (const [i, load] of loads.entries()) {
    let lost = 0
    let wrong = 0
    let rows = 0
    for (const table of Object.keys(TABLES) as Table[]) {
      for (const [key, row] of load.model.get(table)!) {
        rows++
        const got = found.get(table)!.get(key)
        if (got === undefined) lost++
        else if (JSON.stringify(got) !== JSON.stringify(row)) wrong++
      }
    }
    modelRows += rows
    t.equal(lost, 0, `${clients[i]}: 0 rows lost of ${rows}`)
    t.equal(wrong, 0, `${clients[i]}: 0 rows with other values than the model’s`)
  }
  let extra = 0
  for (const [table, rows] of found) for (const key of rows.keys()) if (!loads.some((l) => l.model.get(table)!.has(key))) extra++
  t.equal(extra, 0, `0 rows the models do not have (${modelRows} rows in the models)`)
})

// Each client kind through every kind of route besides one shard: a multi-row INSERT split across shards whose
// text also holds literals, a read from every shard (with a literal, and with no parameter at all), and DDL sent
// to every shard. A hang fails after a few seconds instead of holding the suite.
const PSYCOPG_ROUTES = `
import json, sys
import psycopg
conninfo, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {}
with psycopg.connect(conninfo, autocommit=True) as conn:
    with conn.cursor(binary=True) as cur:
        for name, sql, params in [
            ('split', "INSERT INTO accounts (id, balance, note) VALUES (%b, 1, 'psycopg'), (%b, 2, 'psycopg')", [a, b]),
            ('scatter', "SELECT count(*) FROM accounts WHERE note = 'psycopg'", None),
            ('scatter without parameters', 'SELECT count(*) FROM accounts', None),
            ('ddl', "COMMENT ON TABLE accounts IS 'psycopg'", None),
        ]:
            try:
                cur.execute(sql, params)
                out[name] = cur.fetchone()[0] if cur.description else cur.rowcount
            except Exception as e:
                out[name] = 'error: %s' % e
print(json.dumps(out))
`

t.test('every client kind through split, scatter and broadcast routes', async (t) => {
  const fx = await startProxy(t, { topology: { shards: 3 }, config: { sharding: SHARDING } })
  const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
  const setup = new pg.Client(fx.pgOptions)
  await setup.connect()
  await setup.query(SCHEMA[0]!)
  await setup.end()
  // Two keys on different shards for each client.
  const keys = (from: number): [number, number] => {
    const a = from
    let b = from + 1
    while (map.ring.shardFor(String(b)) === map.ring.shardFor(String(a))) b++
    return [a, b]
  }
  const within = <T>(p: Promise<T>): Promise<T | string> =>
    Promise.race([p, new Promise<string>((resolve) => setTimeout(() => resolve('no answer within 5 s'), 5000))])
  const outcome = (p: Promise<unknown>): Promise<unknown> => within(p).catch((e: Error) => `error: ${e.message}`)

  const results: Record<string, Record<string, unknown>> = {}
  const [na, nb] = keys(1000)
  const node = new pg.Client(fx.pgOptions)
  await node.connect()
  results['node-postgres'] = {
    split: await outcome(node.query("INSERT INTO accounts (id, balance, note) VALUES ($1, 1, 'node'), ($2, 2, 'node')", [na, nb]).then((r) => r.rowCount)),
    scatter: await outcome(node.query("SELECT count(*) AS n FROM accounts WHERE note = 'node' AND balance > $1", [0]).then((r) => Number(r.rows[0].n))),
    'scatter without parameters': await outcome(node.query({ text: 'SELECT count(*) AS n FROM accounts', values: [] }).then((r) => Number(r.rows[0].n))),
    ddl: await outcome(node.query({ text: "COMMENT ON TABLE accounts IS 'node'", values: [] }).then((r) => r.command)),
  }
  await within(node.end())

  const [ja, jb] = keys(2000)
  const js = postgres(fx.url, { max: 1, onnotice: () => undefined })
  results['postgres.js'] = {
    split: await outcome(js.unsafe("INSERT INTO accounts (id, balance, note) VALUES ($1, 1, 'js'), ($2, 2, 'js')", [BigInt(ja), BigInt(jb)] as never[], { prepare: true }).then((r) => r.count)),
    scatter: await outcome(js`SELECT count(*) AS n FROM accounts WHERE note = 'js' AND balance > ${0}`.then((r) => Number(r[0]!.n))),
    'scatter without parameters': await outcome(js`SELECT count(*) AS n FROM accounts`.then((r) => Number(r[0]!.n))),
    ddl: await outcome(js`COMMENT ON TABLE accounts IS 'js'`.then((r) => r.command)),
  }
  await within(js.end({ timeout: 1 }))

  const [pa, pb] = keys(3000)
  const py = await runCommand('/usr/bin/python3', ['-', `${fx.dsn} password=${APP_PASSWORD}`, String(pa), String(pb)], { input: PSYCOPG_ROUTES, timeoutMs: 30_000 })
  results.psycopg = JSON.parse(py.stdout.trim() || '{}') as Record<string, unknown>

  const [qa, qb] = keys(4000)
  const psql = await runCommand('psql', ['-X', '-q', '-At', fx.dsn], {
    env: fx.env,
    timeoutMs: 30_000,
    input: [
      `INSERT INTO accounts (id, balance, note) VALUES (${qa}, 1, 'psql'), (${qb}, 2, 'psql');`,
      "SELECT count(*) FROM accounts WHERE note = 'psql';",
      "COMMENT ON TABLE accounts IS 'psql';",
    ].join('\n'),
  })
  t.equal(psql.code, 0, `psql: ${psql.stderr}`)
  t.equal(psql.stdout.trim(), '2', 'psql: split, scatter and DDL')

  // Each client counts its own two rows, then every row so far (the clients run one after the other).
  t.same(results['node-postgres'], { split: 2, scatter: 2, 'scatter without parameters': 2, ddl: 'COMMENT' }, 'node-postgres')
  t.same(results['postgres.js'], { split: 2, scatter: 2, 'scatter without parameters': 4, ddl: 'COMMENT' }, 'postgres.js')
  t.same(results.psycopg, { split: 2, scatter: 2, 'scatter without parameters': 6, ddl: -1 }, `psycopg ${py.stderr}`)

  // Every row written here sits on its ring shard.
  for (const [index, shard] of fx.topo.shards.entries()) {
    const rows = await fx.topo.query(shard.primary, 'SELECT id::text AS id FROM accounts', 'app')
    t.ok(rows.every((r) => map.ring.shardFor(r.id as string) === index), `shard ${shard.name}: ${rows.map((r) => r.id).join(', ')} all its own`)
  }
})
