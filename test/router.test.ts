import t, { type Test } from 'tap'
import { ConfigSchema, type ConfigInput } from '../src/config/ConfigSchema.js'
import { threeShardConfig } from './harness/threeShardConfig.js'
import { FunctionVolatility, type CatalogFunction } from '../src/router/FunctionVolatility.js'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import type { BoundParam, Route, RoutingContext } from '../src/router/Route.js'
import { Router } from '../src/router/Router.js'
import { TableColumns } from '../src/router/TableColumns.js'
import { parseIdentifiers, ShardMap } from '../src/router/ShardMap.js'
import { analyzeStatement } from '../src/router/StatementAnalyzer.js'
import { initSqlParser } from '../src/router/SqlParser.js'
import type { ScatterPlan, StatementPlan, TableRef, ValueRef } from '../src/router/StatementPlan.js'

const input: ConfigInput = threeShardConfig({
  default_shard: 's1',
  tables: [
    { name: 'accounts', key: 'id', type: 'bigint' },
    { name: 'orders', key: 'Account_ID', type: 'integer' },
    { name: 'events', key: 'tenant', type: 'text', broadcast_writes: true },
    { name: 'devices', key: 'id', type: 'uuid' },
    { name: 'app.profiles', key: 'user_id', type: 'bigint' },
    { name: '"Mixed"."CaseT"', key: '"Key"', type: 'text' },
  ],
  reference_tables: ['countries', 'public.currencies'],
})
const config = ConfigSchema.parse(input)
const map = new ShardMap(config)
const router = new Router(map, new FunctionVolatility(config.routing))

/** The first integer at or above `from` that the ring places on `shard`. */
function keyOn(shard: number, from = 1): string {
  for (let i = from; ; i++) if (map.ring.shardFor(String(i)) === shard) return String(i)
}
function textOn(shard: number): string {
  for (let i = 0; ; i++) if (map.ring.shardFor(`tenant-${i}`) === shard) return `tenant-${i}`
}
const K0 = keyOn(0)
const K1 = keyOn(1)
const K2 = keyOn(2)
const K1b = keyOn(1, Number(K1) + 1)
const T0 = textOn(0)
const T2 = textOn(2)

const SCATTER: ScatterPlan = {
  shardSql: 'SELECT * FROM accounts',
  columns: [{ kind: 'value' }],
  visibleColumns: 1,
  groupBy: null,
  distinct: false,
  orderBy: [],
  limit: null,
  offset: null,
  having: null,
  sources: { relations: [{ name: 'accounts' }], join: { relation: 0 }, equalities: [], nested: [], correlated: [], calls: [], distinctArgs: [], derived: [] },
}

const accounts: TableRef = { name: 'accounts' }
const orders: TableRef = { name: 'orders', alias: 'o' }
const events: TableRef = { name: 'events' }
const countries: TableRef = { name: 'countries' }
const logs: TableRef = { name: 'logs' }
const lit = (literal: string): ValueRef => ({ literal })

function plan(p: Partial<StatementPlan>): StatementPlan {
  const kind = p.kind ?? 'select'
  return {
    kind,
    commandTag: p.commandTag ?? kind.toUpperCase(),
    tables: [],
    writtenTables: [],
    functions: [],
    writes: kind !== 'select' && kind !== 'show',
    pins: [],
    session: [],
    hints: [],
    multiStatement: false,
    paramCount: 0,
    ...p,
  }
}

const select = (tables: TableRef[], pins: StatementPlan['pins'] = [], extra: Partial<StatementPlan> = {}) =>
  plan({ kind: 'select', tables, pins, ...extra })
const pin = (table: TableRef, column: string, ...values: ValueRef[]) => ({ table, column, values })

const NO_TX: RoutingContext = { inTransaction: false, txReadOnly: false }
const textParams = (...values: (string | null)[]) => (n: number): BoundParam | undefined =>
  n >= 1 && n <= values.length ? { value: values[n - 1], format: 0, typeOid: 0 } : undefined
const none = () => undefined

interface Case {
  name: string
  plan: StatementPlan
  ctx?: Partial<RoutingContext>
  param?: (n: number) => BoundParam | undefined
  expect: Record<string, unknown>
}

function check(t: Test, cases: Case[], r: Router = router): void {
  for (const c of cases) {
    const route = r.route(c.plan, c.param ?? none, { ...NO_TX, ...c.ctx })
    t.match(route, c.expect, c.name)
  }
}

/** A case of a statement as the analyzer plans it, with its bound text parameters (parse with initSqlParser first). */
function sql(text: string, expect: Record<string, unknown>, params: (string | null)[] = [], ctx: Partial<RoutingContext> = {}): Case {
  return { name: text, plan: analyzeStatement(text), param: textParams(...params), expect, ctx }
}

/** A router whose catalog (pg_proc as the shards report it) holds these functions. */
function routerKnowing(functions: CatalogFunction[]): Router {
  const catalog = new FunctionVolatility()
  catalog.loadCatalog(functions)
  return new Router(map, catalog)
}

t.test('the shard map: names, keys, search_path', async (t) => {
  t.equal(map.defaultShard, 1, 'default_shard s1')
  t.equal(map.shardIndex('s2'), 2)
  t.equal(map.shardIndex('nope'), undefined)
  t.same(parseIdentifiers('App.Profiles'), ['app', 'profiles'], 'unquoted parts are lower-cased')
  t.same(parseIdentifiers('"Mixed"."Case""T"'), ['Mixed', 'Case"T'], 'quoted parts are kept, "" is a quote')
  t.match(map.shardedTable({ name: 'orders' }, ['public']), { key: 'account_id', keyType: 'integer' }, 'key column lower-cased')
  t.match(map.shardedTable({ name: 'accounts', schema: 'public' }, ['public']), { name: 'accounts' }, 'qualified public')
  t.equal(map.shardedTable({ name: 'accounts', schema: 'other' }, ['public']), undefined, 'another schema is another table')
  t.equal(map.shardedTable({ name: 'profiles' }, ['public']), undefined, 'app.profiles is not on the default search_path')
  t.match(map.shardedTable({ name: 'profiles' }, ['"$user"', 'app', 'public']), { schema: 'app', key: 'user_id' })
  t.match(map.shardedTable({ name: 'CaseT', schema: 'Mixed' }, ['public']), { key: 'Key' }, 'quoted config names')
  t.equal(map.shardedTable({ name: 'caset', schema: 'mixed' }, ['public']), undefined, 'quoted names are case-sensitive')
  t.ok(map.isReferenceTable(countries, ['public']))
  t.ok(map.isReferenceTable({ name: 'currencies' }, ['public']))
  t.notOk(map.isReferenceTable(logs, ['public']))
  t.throws(() => map.shardForKey(map.shardedTable(accounts, ['public'])!, { value: null, format: 0, typeOid: 0 }), { code: '23502' })
  t.equal(map.shardForHint(' 042'), map.ring.shardFor('42'), 'a hint that parses as an integer is an integer key')
  t.equal(map.shardForHint('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'), map.ring.shardFor('a0eebc999c0b4ef8bb6d6bb9bd380a11'), 'a uuid hint')
  t.equal(map.shardForHint('Alice'), map.ring.shardFor('Alice'), 'anything else is text')
})

t.test('hints', async (t) => {
  check(t, [
    { name: 'comment shard=NAME', plan: plan({ kind: 'select', hints: [{ kind: 'shard', value: 's2' }] }), expect: { kind: 'shard', shard: 2, reason: /hint shard=s2/ } },
    { name: 'comment shard=INDEX when no shard has that name', plan: plan({ hints: [{ kind: 'shard', value: '0' }] }), expect: { kind: 'shard', shard: 0 } },
    {
      name: 'unknown shard name lists the shards',
      plan: plan({ hints: [{ kind: 'shard', value: 'nope' }] }),
      expect: { kind: 'error', code: '42704', message: /unknown shard "nope".*s0, s1, s2/ },
    },
    { name: 'comment key= on an unpinned statement', plan: select([accounts], [], { hints: [{ kind: 'key', value: K2 }] }), expect: { kind: 'shard', shard: 2 } },
    { name: 'key= uses the statement\u2019s key type: integer spelling', plan: select([accounts], [], { hints: [{ kind: 'key', value: `00${K0}` }] }), expect: { kind: 'shard', shard: 0 } },
    {
      name: 'key= on a text-keyed table keeps the text as is',
      plan: select([events], [], { hints: [{ kind: 'key', value: T2 }] }),
      expect: { kind: 'shard', shard: 2 },
    },
    {
      name: 'a bad key= for an integer key is 22P02',
      plan: select([accounts], [], { hints: [{ kind: 'key', value: 'abc' }] }),
      expect: { kind: 'error', code: '22P02', message: /"abc"/ },
    },
    { name: 'SET pgshard.shard', plan: plan({}), ctx: { shardHint: 's0' }, expect: { kind: 'shard', shard: 0, reason: /SET pgshard.shard/ } },
    { name: 'SET pgshard.key', plan: select([accounts]), ctx: { keyHint: K2 }, expect: { kind: 'shard', shard: 2, reason: /SET pgshard.key/ } },
    {
      name: 'the comment wins over SET',
      plan: plan({ hints: [{ kind: 'shard', value: 's2' }] }),
      ctx: { shardHint: 's0' },
      expect: { kind: 'shard', shard: 2 },
    },
    {
      name: 'a hint cannot send a pinned key elsewhere',
      plan: select([accounts], [pin(accounts, 'id', lit(K1))], { hints: [{ kind: 'shard', value: 's0' }] }),
      expect: { kind: 'error', code: '0A000', message: /shard s0, but it pins accounts\.id to shard s1/ },
    },
    {
      name: 'a hint agreeing with the pin is fine',
      plan: select([accounts], [pin(accounts, 'id', lit(K1))], { hints: [{ kind: 'shard', value: 's1' }] }),
      expect: { kind: 'shard', shard: 1 },
    },
    {
      name: 'a hint cannot put an INSERT row on another shard',
      plan: plan({
        kind: 'insert',
        tables: [accounts],
        writtenTables: [accounts],
        insert: { text: '', table: accounts, columns: ['id'], columnsAt: null, rows: [{ values: [lit(K2)], start: 0, end: 0 }], valuesStart: 0, valuesEnd: 0 },
        hints: [{ kind: 'shard', value: 's0' }],
      }),
      expect: { kind: 'error', code: '0A000', message: /belongs to shard s2/ },
    },
    {
      name: 'a hint cannot restrict a reference-table write',
      plan: plan({ kind: 'update', tables: [countries], writtenTables: [countries], hints: [{ kind: 'shard', value: 's0' }] }),
      expect: { kind: 'error', code: '0A000', message: /reference table countries, which must change on every shard/ },
    },
    {
      name: 'a hint in a transaction that writes elsewhere',
      plan: plan({ kind: 'update', tables: [accounts], writtenTables: [accounts], hints: [{ kind: 'shard', value: 's2' }] }),
      ctx: { inTransaction: true, txShard: 0, txWriter: 0 },
      expect: { kind: 'error', code: '0A000', message: /transaction writes shard s0; this statement may write shard s2/ },
    },
    {
      name: 'a hint in a SERIALIZABLE transaction pinned elsewhere',
      plan: plan({ hints: [{ kind: 'shard', value: 's2' }] }),
      ctx: { inTransaction: true, txShard: 0, serializable: true },
      expect: { kind: 'error', code: '0A000', message: /pinned to shard s0.*needs shard s2/ },
    },
  ])
})

t.test('sharded tables: pinned keys', async (t) => {
  const binaryInt4 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeInt32BE(n)
    return b
  }
  check(t, [
    {
      name: 'WHERE id = $1 (text parameter)',
      plan: select([accounts], [pin(accounts, 'id', { param: 1 })]),
      param: textParams(K1),
      expect: { kind: 'shard', shard: 1, role: 'replica', reason: /accounts\.id pinned \u2192 s1/ },
    },
    {
      name: 'WHERE id = $1 (binary int4 parameter)',
      plan: select([accounts], [pin(accounts, 'id', { param: 1 })]),
      param: () => ({ value: binaryInt4(Number(K2)), format: 1, typeOid: 23 }),
      expect: { kind: 'shard', shard: 2 },
    },
    { name: 'WHERE id = \u2019 0042\u2019-style literal', plan: select([accounts], [pin(accounts, 'id', lit(` 00${K0}`))]), expect: { kind: 'shard', shard: 0 } },
    {
      name: 'WHERE id = -$1',
      plan: select([accounts], [pin(accounts, 'id', { param: 1, negate: true })]),
      param: textParams(`-${K2}`),
      expect: { kind: 'shard', shard: 2 },
    },
    {
      name: 'IN on two shards: scatter',
      plan: select([accounts], [pin(accounts, 'id', lit(K0), lit(K2))], { scatter: SCATTER }),
      expect: { kind: 'scatter', role: 'replica', reason: /touches shards s0, s2/ },
    },
    {
      name: 'IN on two shards without a scatter plan names the reason',
      plan: select([accounts], [pin(accounts, 'id', lit(K0), lit(K2))], { unmergeable: 'window function row_number()' }),
      expect: { kind: 'error', code: '0A000', message: /touches shards s0, s2 and cannot be merged across shards: window function row_number\(\)/ },
    },
    { name: 'IN on one shard', plan: select([accounts], [pin(accounts, 'id', lit(K1), lit(K1b))]), expect: { kind: 'shard', shard: 1 } },
    {
      name: 'two pins on one occurrence intersect (IN … AND =)',
      plan: select([accounts], [pin(accounts, 'id', lit(K0), lit(K1)), pin(accounts, 'id', lit(K1))]),
      expect: { kind: 'shard', shard: 1 },
    },
    {
      name: 'id = NULL matches no row: one shard',
      plan: select([accounts], [pin(accounts, 'id', { null: true })]),
      ctx: {},
      expect: { kind: 'shard', shard: 1, reason: /match no row/ },
    },
    {
      name: 'id = $1 bound to NULL and id IN (K2, NULL)',
      plan: select([accounts], [pin(accounts, 'id', { param: 1 }, lit(K2))]),
      param: textParams(null),
      expect: { kind: 'shard', shard: 2 },
    },
    { name: 'an unbound parameter', plan: select([accounts], [pin(accounts, 'id', { param: 3 })]), expect: { kind: 'error', code: '08P01', message: /\$3/ } },
    { name: 'a non-integer literal for an integer key', plan: select([accounts], [pin(accounts, 'id', lit('abc'))]), expect: { kind: 'error', code: '22P02', message: /bigint: "abc"/ } },
    {
      name: 'a pin on another column does not pin',
      plan: select([accounts], [pin(accounts, 'email', lit('x'))], { scatter: SCATTER }),
      expect: { kind: 'scatter', reason: /no condition on the sharding key accounts\.id/ },
    },
    { name: 'uuid key, any spelling', plan: select([{ name: 'devices' }], [pin({ name: 'devices' }, 'id', lit('{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}'))]), expect: { kind: 'shard', shard: map.ring.shardFor('a0eebc999c0b4ef8bb6d6bb9bd380a11') } },
    {
      name: 'join of two sharded tables pinned to one shard',
      plan: select([accounts, orders], [pin(accounts, 'id', lit(K1)), pin(orders, 'account_id', lit(K1))]),
      expect: { kind: 'shard', shard: 1, reason: /accounts\.id, orders\.account_id pinned/ },
    },
    {
      name: 'join with one sharded table unpinned and no scatter plan',
      plan: select([accounts, orders], [pin(accounts, 'id', lit(K1))], { unmergeable: 'join of sharded tables not on their keys' }),
      expect: { kind: 'error', code: '0A000', message: /no condition on the sharding key orders\.account_id/ },
    },
    {
      name: 'self-join: a pin on alias a does not pin b',
      plan: select([{ name: 'accounts', alias: 'a' }, { name: 'accounts', alias: 'b' }], [pin({ name: 'accounts', alias: 'a' }, 'id', lit(K1))], { unmergeable: 'cross-shard join' }),
      expect: { kind: 'error', code: '0A000', message: /no condition on the sharding key accounts\.id/ },
    },
    {
      name: 'self-join with both aliases pinned',
      plan: select(
        [{ name: 'accounts', alias: 'a' }, { name: 'accounts', alias: 'b' }],
        [pin({ name: 'accounts', alias: 'a' }, 'id', lit(K1)), pin({ name: 'accounts', alias: 'b' }, 'id', lit(K1b))],
      ),
      expect: { kind: 'shard', shard: 1 },
    },
    {
      name: 'self-join: the unaliased occurrence pinned, the aliased one not',
      plan: select([accounts, { name: 'accounts', alias: 'b' }], [pin(accounts, 'id', lit(K1))], { unmergeable: 'cross-shard join' }),
      expect: { kind: 'error', code: '0A000', message: /no condition on the sharding key accounts\.id/ },
    },
    {
      name: 'pinned sharded table joined with a reference table',
      plan: select([accounts, countries], [pin(accounts, 'id', lit(K2))]),
      expect: { kind: 'shard', shard: 2 },
    },
    {
      name: 'pinned to the default shard, joined with an unsharded table',
      plan: select([accounts, logs], [pin(accounts, 'id', lit(K1))]),
      expect: { kind: 'shard', shard: 1 },
    },
    {
      name: 'pinned elsewhere, joined with an unsharded table',
      plan: select([accounts, logs], [pin(accounts, 'id', lit(K2))]),
      expect: { kind: 'error', code: '0A000', message: /pins accounts\.id to shard s2, but unsharded table logs exists only on shard s1/ },
    },
    {
      name: 'unpinned and joined with an unsharded table',
      plan: select([accounts, logs], [], { scatter: SCATTER }),
      expect: { kind: 'error', code: '0A000', message: /unsharded table logs exists only on shard s1/ },
    },
    {
      name: 'search_path resolves an unqualified sharded table',
      plan: select([{ name: 'profiles' }], [pin({ name: 'profiles' }, 'user_id', lit(K0))]),
      ctx: { searchPath: ['app', 'public'] },
      expect: { kind: 'shard', shard: 0 },
    },
    {
      name: 'the same name off the search_path is an unsharded table',
      plan: select([{ name: 'profiles' }], [pin({ name: 'profiles' }, 'user_id', lit(K0))]),
      expect: { kind: 'shard', shard: 1, reason: /unsharded table profiles: default shard s1/ },
    },
  ])
})

t.test('sharded tables: unpinned reads scatter, unpinned writes need broadcast_writes', async (t) => {
  check(t, [
    { name: 'unpinned read scatters', plan: select([accounts], [], { scatter: SCATTER }), expect: { kind: 'scatter', plan: SCATTER, role: 'replica', reason: /scatter to 3 shards/ } },
    {
      name: 'unpinned read that cannot be merged',
      plan: select([accounts], [], { unmergeable: 'DISTINCT ON' }),
      expect: { kind: 'error', code: '0A000', message: /DISTINCT ON/, hint: /pin the key/ },
    },
    {
      name: 'SELECT … FOR UPDATE may scatter (outside a transaction) on the primary',
      plan: select([accounts], [], { writes: true, scatter: SCATTER }),
      expect: { kind: 'scatter', role: 'primary' },
    },
    { name: 'UPDATE pinned', plan: plan({ kind: 'update', tables: [accounts], writtenTables: [accounts], pins: [pin(accounts, 'id', lit(K2))] }), expect: { kind: 'shard', shard: 2, role: 'primary' } },
    {
      name: 'UPDATE unpinned',
      plan: plan({ kind: 'update', tables: [accounts], writtenTables: [accounts] }),
      expect: { kind: 'error', code: '0A000', message: /UPDATE on accounts has no condition on the sharding key accounts\.id/, hint: /WHERE id = .*broadcast_writes/ },
    },
    {
      name: 'UPDATE on two shards: the statement on each, summed',
      plan: plan({ kind: 'update', commandTag: 'UPDATE 0', tables: [accounts], writtenTables: [accounts], pins: [pin(accounts, 'id', lit(K0), lit(K2))] }),
      expect: { kind: 'broadcast', tag: 'sum', shards: [0, 2], reason: /UPDATE on accounts touches shards s0, s2: the statement on each of them/ },
    },
    {
      name: 'UPDATE on two shards reading the table again',
      plan: plan({ kind: 'update', commandTag: 'UPDATE 0', tables: [accounts, accounts], writtenTables: [accounts], pins: [pin(accounts, 'id', lit(K0), lit(K2))] }),
      expect: { kind: 'error', code: '0A000' },
    },
    { name: 'UPDATE unpinned with broadcast_writes', plan: plan({ kind: 'update', tables: [events], writtenTables: [events] }), expect: { kind: 'broadcast', role: 'primary', reason: /broadcast_writes/ } },
    {
      name: 'DELETE on two shards with broadcast_writes',
      plan: plan({ kind: 'delete', tables: [events], writtenTables: [events], pins: [pin(events, 'tenant', lit(T0), lit(T2))] }),
      expect: { kind: 'broadcast' },
    },
    {
      name: 'broadcast_writes does not cover reading another sharded table',
      plan: plan({ kind: 'delete', tables: [events, accounts], writtenTables: [events] }),
      expect: { kind: 'error', code: '0A000' },
    },
    { name: 'MERGE unpinned', plan: plan({ kind: 'merge', tables: [events], writtenTables: [events] }), expect: { kind: 'error', code: '0A000', message: /MERGE on events/ } },
    { name: 'COPY TO of a sharded table: every shard’s rows', plan: plan({ kind: 'copy_to', tables: [accounts], writes: false }), expect: { kind: 'copy_out', role: 'replica' } },
    { name: 'COPY (query) TO that must be merged', plan: plan({ kind: 'copy_to', tables: [accounts], writes: false, unmergeable: 'COPY (query) TO across shards, for a query that …' }), expect: { kind: 'error', code: '0A000', message: /cannot be merged across shards: COPY \(query\) TO/ } },
    {
      name: 'COPY FROM into a sharded table',
      plan: plan({ kind: 'copy_from', tables: [accounts], writtenTables: [accounts] }),
      expect: { kind: 'error', code: '0A000', message: /COPY FROM into sharded table accounts/ },
    },
    { name: 'COPY FROM into a reference table', plan: plan({ kind: 'copy_from', tables: [countries], writtenTables: [countries] }), expect: { kind: 'broadcast' } },
    { name: 'COPY FROM into an unsharded table', plan: plan({ kind: 'copy_from', tables: [logs], writtenTables: [logs] }), expect: { kind: 'shard', shard: 1 } },
  ])
})

t.test('INSERT into a sharded table', async (t) => {
  const text = `INSERT INTO accounts (id, name) VALUES (${K0}, 'a'), ($1, 'é'), (${K2}, 'c'), (${K0}, 'd') RETURNING id`
  const rowText = [`(${K0}, 'a')`, `($1, 'é')`, `(${K2}, 'c')`, `(${K0}, 'd')`]
  const bytes = Buffer.from(text)
  const rows = rowText.map((r, i) => {
    const start = bytes.indexOf(r, i === 0 ? 0 : bytes.indexOf(rowText[i - 1]) + 1)
    return { values: [i === 1 ? { param: 1 } : lit(r.slice(1, r.indexOf(','))), lit('x')] as ValueRef[], start, end: start + Buffer.byteLength(r) }
  })
  const insert = { text, table: accounts, columns: ['id', 'name'], columnsAt: null, rows, valuesStart: rows[0].start, valuesEnd: rows[3].end }
  const multi = plan({ kind: 'insert', commandTag: 'INSERT 0 4', tables: [accounts], writtenTables: [accounts], insert })
  const one = (v: ValueRef, columns = ['id', 'name']) =>
    plan({ kind: 'insert', tables: [accounts], writtenTables: [accounts], insert: { text: '', table: accounts, columns, columnsAt: null, rows: [{ values: [v, lit('x')], start: 0, end: 0 }], valuesStart: 0, valuesEnd: 0 } })
  check(t, [
    { name: 'single row', plan: one(lit(K2)), expect: { kind: 'shard', shard: 2, role: 'primary', reason: /accounts\.id in VALUES \u2192 s2/ } },
    { name: 'single row, parameter', plan: one({ param: 1 }), param: textParams(K0), expect: { kind: 'shard', shard: 0 } },
    { name: 'NULL key', plan: one({ null: true }), expect: { kind: 'error', code: '23502', message: /"id" of "accounts" is NULL/ } },
    { name: 'NULL key parameter', plan: one({ param: 1 }), param: textParams(null), expect: { kind: 'error', code: '23502' } },
    { name: 'key column missing from the column list', plan: one(lit('x'), ['name', 'email']), expect: { kind: 'error', code: '0A000', message: /must name its key column id/ } },
    {
      name: 'INSERT … SELECT',
      plan: plan({ kind: 'insert', tables: [accounts, logs], writtenTables: [accounts] }),
      expect: { kind: 'error', code: '0A000', message: /INSERT \u2026 SELECT/ },
    },
    {
      name: 'multi-row INSERT spanning shards is split',
      plan: multi,
      param: textParams(K1),
      expect: {
        kind: 'split',
        reason: /span shards s0, s1, s2/,
        parts: [
          { shard: 0, rows: 2, sql: `INSERT INTO accounts (id, name) VALUES (${K0}, 'a'), (${K0}, 'd') RETURNING id` },
          { shard: 1, rows: 1, sql: `INSERT INTO accounts (id, name) VALUES ($1, 'é') RETURNING id` },
          { shard: 2, rows: 1, sql: `INSERT INTO accounts (id, name) VALUES (${K2}, 'c') RETURNING id` },
        ],
      },
    },
    {
      name: 'multi-row INSERT spanning shards inside a transaction',
      plan: multi,
      param: textParams(K1),
      ctx: { inTransaction: true },
      expect: { kind: 'error', code: '0A000', message: /inside a transaction a multi-shard INSERT cannot be split/ },
    },
    {
      name: 'multi-row INSERT that also reads an unsharded table',
      plan: { ...multi, tables: [accounts, logs] },
      param: textParams(K1),
      expect: { kind: 'error', code: '0A000', message: /also reads logs/ },
    },
    { name: 'INSERT into an unsharded table', plan: plan({ kind: 'insert', tables: [logs], writtenTables: [logs] }), expect: { kind: 'shard', shard: 1, role: 'primary' } },
    { name: 'INSERT into a reference table', plan: plan({ kind: 'insert', tables: [countries], writtenTables: [countries] }), expect: { kind: 'broadcast', reason: /reference table countries/ } },
    {
      name: 'INSERT into a reference table from a sharded one',
      plan: plan({ kind: 'insert', tables: [countries, accounts], writtenTables: [countries] }),
      expect: { kind: 'error', code: '0A000', message: /may use only reference tables/ },
    },
  ])
  // Rows 1, 3 and 4 are on s0 and s2 only when $1 is bound to a key of s0: then two shards, still split.
  const r = router.route(multi, textParams(K0), NO_TX)
  t.match(r, { kind: 'split', parts: [{ shard: 0, rows: 3 }, { shard: 2, rows: 1 }] }, 'parts follow the bound values')
  const allOne = router.route(
    { ...multi, insert: { ...insert, rows: rows.map((row) => ({ ...row, values: [lit(K1), lit('x')] })) } },
    none,
    NO_TX,
  )
  t.match(allOne, { kind: 'shard', shard: 1 }, 'all rows on one shard: no split')
})

t.test('reference, unsharded and table-less statements; DDL', async (t) => {
  check(t, [
    { name: 'reference tables only: default shard', plan: select([countries, { name: 'currencies', schema: 'public' }]), expect: { kind: 'shard', shard: 1, role: 'replica', reason: /reference table countries, public\.currencies only/ } },
    { name: 'reference tables only in a pinned transaction', plan: select([countries]), ctx: { inTransaction: true, txReadOnly: true, txShard: 2 }, expect: { kind: 'shard', shard: 2 } },
    { name: 'UPDATE of a reference table', plan: plan({ kind: 'update', commandTag: 'UPDATE 0', tables: [countries], writtenTables: [countries] }), expect: { kind: 'broadcast', role: 'primary', reason: /UPDATE on reference table countries/ } },
    {
      name: 'a reference table write calling nextval(): refused, each shard would draw its own value',
      plan: plan({ kind: 'insert', commandTag: 'INSERT 0 1', tables: [countries], writtenTables: [countries], functions: ['nextval'] }),
      expect: { kind: 'error', code: '0A000', message: /INSERT writes reference table countries calling nextval\(\), which every shard would call on its own/, hint: /sharding\.made_columns/ },
    },
    {
      name: 'and random(): refused too',
      plan: plan({ kind: 'update', commandTag: 'UPDATE 0', tables: [countries], writtenTables: [countries], functions: ['upper', 'random'] }),
      expect: { kind: 'error', code: '0A000', message: /calling random\(\)/, hint: /compute the value first/ },
    },
    { name: 'a stable or immutable call (now(), upper()) is the same on every shard', plan: plan({ kind: 'update', commandTag: 'UPDATE 0', tables: [countries], writtenTables: [countries], functions: ['now', 'upper'] }), expect: { kind: 'broadcast' } },
    {
      name: 'a function the catalog pgshard read does not know: refused, with what to do',
      plan: plan({ kind: 'update', commandTag: 'UPDATE 0', tables: [countries], writtenTables: [countries], functions: ['slugify'] }),
      expect: { kind: 'error', code: '0A000', message: /calling slugify\(\)/, hint: /RELOAD \(or SIGHUP\) makes pgshard read the catalog again/ },
    },
    { name: 'unsharded table: default shard', plan: select([logs]), expect: { kind: 'shard', shard: 1, reason: /default shard s1/ } },
    { name: 'unsharded joined with reference', plan: select([logs, countries]), expect: { kind: 'shard', shard: 1 } },
    { name: 'SELECT 1', plan: plan({ kind: 'select' }), expect: { kind: 'shard', shard: 1, role: 'replica', reason: /no table/ } },
    { name: 'SELECT 1 in a transaction pinned to s2', plan: plan({ kind: 'select' }), ctx: { inTransaction: true, txShard: 2 }, expect: { kind: 'shard', shard: 2, role: 'primary' } },
    { name: 'SHOW', plan: plan({ kind: 'show' }), expect: { kind: 'shard', shard: 1, role: 'replica' } },
    { name: 'SET', plan: plan({ kind: 'set' }), expect: { kind: 'shard', shard: 1, role: 'primary' } },
    { name: 'COMMIT in a pinned transaction', plan: plan({ kind: 'transaction', tx: 'commit' }), ctx: { inTransaction: true, txShard: 0 }, expect: { kind: 'shard', shard: 0 } },
    { name: 'DDL on a sharded table', plan: plan({ kind: 'ddl', commandTag: 'CREATE INDEX', tables: [accounts], writtenTables: [accounts] }), expect: { kind: 'broadcast', reason: /DDL on sharded\/reference table accounts/ } },
    { name: 'DDL on a reference table', plan: plan({ kind: 'ddl', tables: [countries], writtenTables: [countries] }), expect: { kind: 'broadcast' } },
    { name: 'DDL on an unsharded table', plan: plan({ kind: 'ddl', tables: [logs], writtenTables: [logs] }), expect: { kind: 'shard', shard: 1, role: 'primary' } },
    { name: 'DDL naming no table', plan: plan({ kind: 'ddl', commandTag: 'CREATE SCHEMA' }), expect: { kind: 'broadcast', reason: /naming no table/ } },
    {
      name: 'DDL naming sharded and unsharded tables',
      plan: plan({ kind: 'ddl', tables: [accounts, logs], writtenTables: [accounts] }),
      expect: { kind: 'error', code: '0A000', message: /unsharded table logs \(only on shard s1\)/ },
    },
    { name: 'DDL on a sharded table inside a transaction', plan: plan({ kind: 'ddl', tables: [accounts], writtenTables: [accounts] }), ctx: { inTransaction: true }, expect: { kind: 'error', code: '0A000', message: /a read-write transaction writes at most one shard \(cross_shard_transactions: reject\); this statement needs every shard/ } },
  ])
})

t.test('a read-write transaction reads any shard and writes one (without two-phase commit)', async (t) => {
  const update = (k: string) => plan({ kind: 'update', tables: [accounts], writtenTables: [accounts], pins: [pin(accounts, 'id', lit(k))] })
  check(t, [
    {
      name: 'a read for another shard: that shard joins',
      plan: select([accounts], [pin(accounts, 'id', lit(K1))]),
      ctx: { inTransaction: true, txShard: 0, txWriter: 0 },
      expect: { kind: 'shard', shard: 1, role: 'primary' },
    },
    { name: 'its first write, on another shard than it read', plan: update(K1), ctx: { inTransaction: true, txShard: 0 }, expect: { kind: 'shard', shard: 1, write: true } },
    { name: 'a write on the shard it writes, attached elsewhere', plan: update(K1), ctx: { inTransaction: true, txShard: 0, txWriter: 1 }, expect: { kind: 'shard', shard: 1, write: true } },
    {
      name: 'a write on a second shard',
      plan: update(K1),
      ctx: { inTransaction: true, txShard: 1, txWriter: 0 },
      expect: { kind: 'error', code: '0A000', message: /^transaction writes shard s0; this statement may write shard s1 \(.*\); cross-shard transactions are not supported: a transaction reads any shard but writes one$/ },
    },
    {
      name: 'a read calling a volatile function counts as a write',
      plan: select([accounts], [pin(accounts, 'id', lit(K1))], { functions: ['nextval'] }),
      ctx: { inTransaction: true, txShard: 0, txWriter: 0 },
      expect: { kind: 'error', code: '0A000', message: /may write shard s1/ },
    },
    {
      name: 'set_config (row-level security) is not a write',
      plan: select([], [], { functions: ['set_config'] }),
      ctx: { inTransaction: true, txShard: 0 },
      expect: { kind: 'shard', shard: 0, write: undefined },
    },
    {
      name: 'a reference-table write in a transaction that writes a shard names that shard',
      plan: plan({ kind: 'update', tables: [countries], writtenTables: [countries] }),
      ctx: { inTransaction: true, txShard: 0, txWriter: 1 },
      expect: { kind: 'error', code: '0A000', message: /^transaction writes shard s1; this statement needs every shard/ },
    },
    {
      name: 'a SERIALIZABLE transaction stays on its shard',
      plan: select([accounts], [pin(accounts, 'id', lit(K1))]),
      ctx: { inTransaction: true, txShard: 0, serializable: true },
      expect: {
        kind: 'error',
        code: '0A000',
        message: /^transaction is pinned to shard s0 by its first statement; this statement needs shard s1 \(.*\); cross-shard transactions are not supported$/,
      },
    },
    { name: 'a statement for the same shard', plan: select([accounts], [pin(accounts, 'id', lit(K0))]), ctx: { inTransaction: true, txShard: 0 }, expect: { kind: 'shard', shard: 0, role: 'primary' } },
    { name: 'a scatter read in a transaction on a shard', plan: select([accounts], [], { scatter: SCATTER }), ctx: { inTransaction: true, txShard: 0, txWriter: 0 }, expect: { kind: 'scatter', role: 'primary' } },
    {
      name: 'a locking scatter (FOR UPDATE) would write every shard',
      plan: select([accounts], [], { scatter: SCATTER, writes: true }),
      ctx: { inTransaction: true, txShard: 0 },
      expect: { kind: 'error', code: '0A000', message: /a read-write transaction writes at most one shard \(cross_shard_transactions: reject\); this statement needs every shard/ },
    },
    {
      name: 'a scatter in a SERIALIZABLE transaction not yet pinned',
      plan: select([accounts], [], { scatter: SCATTER }),
      ctx: { inTransaction: true, serializable: true },
      expect: { kind: 'error', code: '0A000', message: /inside a transaction block this statement needs every shard/ },
    },
    {
      name: 'a scatter in a READ ONLY transaction, pinned or not',
      plan: select([accounts], [], { scatter: SCATTER }),
      ctx: { inTransaction: true, txReadOnly: true, txShard: 0 },
      expect: { kind: 'scatter', role: 'replica' },
    },
    {
      name: 'a statement for another shard in a READ ONLY transaction: that shard joins it',
      plan: select([accounts], [pin(accounts, 'id', lit(K1))]),
      ctx: { inTransaction: true, txReadOnly: true, txShard: 0 },
      expect: { kind: 'shard', shard: 1, role: 'replica' },
    },
    { name: 'a broadcast in a transaction', plan: plan({ kind: 'update', tables: [countries], writtenTables: [countries] }), ctx: { inTransaction: true, txShard: 1 }, expect: { kind: 'error', code: '0A000' } },
    { name: 'an unsharded table read while on another shard: its shard joins', plan: select([logs]), ctx: { inTransaction: true, txShard: 0 }, expect: { kind: 'shard', shard: 1 } },
    { name: 'an unsharded table read in a SERIALIZABLE one', plan: select([logs]), ctx: { inTransaction: true, txShard: 0, serializable: true }, expect: { kind: 'error', code: '0A000', message: /needs shard s1/ } },
  ])
})

t.test('roles: replica only for provably read-only statements', async (t) => {
  const pinned = (extra: Partial<StatementPlan>) => select([accounts], [pin(accounts, 'id', lit(K0))], extra)
  check(t, [
    { name: 'plain read', plan: pinned({}), expect: { role: 'replica' } },
    { name: 'known read-only functions', plan: pinned({ functions: ['count', 'lower', 'now', 'pg_get_userbyid', 'jsonb_extract_path_text'] }), expect: { role: 'replica' } },
    { name: 'nextval is volatile', plan: pinned({ functions: ['count', 'nextval'] }), expect: { role: 'primary' } },
    { name: 'an unknown function counts as volatile', plan: pinned({ functions: ['my_func'] }), expect: { role: 'primary' } },
    { name: 'in a read-write transaction', plan: pinned({}), ctx: { inTransaction: true }, expect: { role: 'primary' } },
    { name: 'in a READ ONLY transaction', plan: pinned({}), ctx: { inTransaction: true, txReadOnly: true }, expect: { role: 'replica' } },
    { name: 'in a SERIALIZABLE READ ONLY transaction (a standby cannot run it)', plan: pinned({}), ctx: { inTransaction: true, txReadOnly: true, serializable: true }, expect: { role: 'primary' } },
    { name: 'role hint replica cannot move a SERIALIZABLE read', plan: pinned({ hints: [{ kind: 'role', value: 'replica' }] }), ctx: { serializable: true }, expect: { role: 'primary' } },
    { name: 'role hint primary', plan: pinned({ hints: [{ kind: 'role', value: 'primary' }] }), expect: { role: 'primary' } },
    { name: 'SET pgshard.role = primary', plan: pinned({}), ctx: { roleHint: 'primary' }, expect: { role: 'primary' } },
    { name: 'role hint replica despite an unknown function', plan: pinned({ functions: ['my_func'], hints: [{ kind: 'role', value: 'replica' }] }), expect: { role: 'replica' } },
    { name: 'role hint replica cannot move a write', plan: plan({ kind: 'update', tables: [accounts], writtenTables: [accounts], pins: [pin(accounts, 'id', lit(K0))], hints: [{ kind: 'role', value: 'replica' }] }), expect: { role: 'primary' } },
    { name: 'role hint replica cannot leave a read-write transaction', plan: pinned({}), ctx: { inTransaction: true, roleHint: 'replica' }, expect: { role: 'primary' } },
    { name: 'a writing CTE in a SELECT', plan: pinned({ writes: true, writtenTables: [logs] }), expect: { kind: 'error' } },
  ])
  const primaryReads = new Router(map, new FunctionVolatility(), { readFrom: 'primary' })
  check(t, [
    { name: 'read_from: primary', plan: pinned({}), expect: { role: 'primary' } },
    { name: 'read_from: primary, role hint replica', plan: pinned({ hints: [{ kind: 'role', value: 'replica' }] }), expect: { role: 'replica' } },
  ], primaryReads)
  const learned = new FunctionVolatility({ stable_functions: ['My_Report'], volatile_functions: ['lower'] })
  learned.loadCatalog([
    { proname: 'tenant_of', provolatile: 's' },
    { proname: 'audit', provolatile: 's' },
    { proname: 'audit', provolatile: 'v' },
  ])
  const withCatalog = new Router(map, learned)
  check(t, [
    { name: 'a catalog-stable function', plan: pinned({ functions: ['tenant_of'] }), expect: { role: 'replica' } },
    { name: 'an overload that is volatile makes the name volatile', plan: pinned({ functions: ['audit'] }), expect: { role: 'primary' } },
    { name: 'stable_functions from the config', plan: pinned({ functions: ['my_report'] }), expect: { role: 'replica' } },
    { name: 'volatile_functions from the config override the built-ins', plan: pinned({ functions: ['lower'] }), expect: { role: 'primary' } },
  ], withCatalog)
  t.equal(learned.volatility('TENANT_OF'), 'stable', 'names compare case-insensitively')
  t.equal(learned.volatility('nextval'), 'volatile')
  t.equal(new FunctionVolatility().volatility('unheard_of'), 'volatile', 'unknown → volatile')
  t.equal(learned.firstVolatile(['count', 'audit', 'lower']), 'audit')
})

t.test('canonical keys and the router agree', async (t) => {
  // The router must place a key exactly where canonicalKey + the ring place it, however it arrives.
  for (const k of [K0, K1, K2, '-5', '9223372036854775807']) {
    const expected = map.ring.shardFor(canonicalKey('bigint', k, 0, 0))
    const viaLiteral = router.route(select([accounts], [pin(accounts, 'id', lit(k))]), none, NO_TX) as Extract<Route, { kind: 'shard' }>
    const b = Buffer.alloc(8)
    b.writeBigInt64BE(BigInt(k))
    const viaBinary = router.route(select([accounts], [pin(accounts, 'id', { param: 1 })]), () => ({ value: b, format: 1, typeOid: 20 }), NO_TX) as Extract<Route, { kind: 'shard' }>
    t.equal(viaLiteral.shard, expected, `literal ${k}`)
    t.equal(viaBinary.shard, expected, `binary int8 ${k}`)
  }
})

t.test('analyzed statements: co-located joins, reference tables, subqueries, aggregates from the catalog', async (t) => {
  await initSqlParser()
  const withAggregates = routerKnowing([
    { proname: 'my_agg', provolatile: 'i', prokind: 'a' },
    { proname: 'lower', provolatile: 'i', prokind: 'f' },
  ])
  check(t, [
    sql('SELECT * FROM accounts ORDER BY id LIMIT 10', { kind: 'scatter', plan: { shardSql: 'SELECT *, id FROM accounts ORDER BY id LIMIT 10' } }),
    sql('SELECT a.id, o.total FROM accounts a JOIN orders o ON o.account_id = a.id', { kind: 'scatter' }),
    sql('SELECT count(*) FROM accounts a, orders o WHERE a.id = o.account_id AND o.total > 5', { kind: 'scatter' }),
    sql('SELECT a.id FROM accounts a FULL JOIN orders o ON o.account_id = a.id', { kind: 'scatter' }),
    sql('SELECT 1 FROM accounts a JOIN accounts b USING (id) JOIN orders o ON o.account_id = b.id', { kind: 'scatter' }),
    sql(`SELECT a.id FROM accounts a JOIN orders o ON o.account_id = a.id WHERE a.id = ${K2}`, { kind: 'shard', shard: 2 }),
    sql('SELECT a.id FROM accounts a JOIN orders o ON o.total = a.id', {
      kind: 'error', code: '0A000', message: /a join across shards: orders is not joined on its sharding key to accounts \(orders\.account_id = accounts\.id\)/,
      hint: /^add orders\.account_id = accounts\.id to the join/,
    }),
    sql('SELECT 1 FROM accounts a JOIN orders o ON account_id = a.id', { kind: 'error', code: '0A000', message: /a join across shards/, hint: /both columns qualified/ }),
    sql('SELECT 1 FROM events e JOIN devices d ON d.id = e.tenant', { kind: 'error', code: '0A000', message: /keys of different types/ }),
    sql('SELECT a.id, c.name FROM accounts a JOIN countries c ON c.code = a.country', { kind: 'scatter' }),
    sql('SELECT a.id, c.name FROM accounts a LEFT JOIN countries c ON c.code = a.country', { kind: 'scatter' }),
    sql('SELECT c.name, a.id FROM countries c LEFT JOIN accounts a ON a.country = c.code', {
      kind: 'error', code: '0A000', message: /an outer join across shards that keeps rows of reference table countries/,
    }),
    sql('SELECT c.name FROM accounts a FULL JOIN countries c ON c.code = a.country', { kind: 'error', code: '0A000', message: /outer join/ }),
    sql('SELECT a.id, g FROM accounts a, generate_series(1, 3) g', { kind: 'scatter' }),
    sql('SELECT g FROM generate_series(1, 3) g LEFT JOIN accounts a ON a.id = g', { kind: 'error', message: /keeps rows of generate_series\(\)/ }),
    sql('SELECT id FROM accounts WHERE country IN (SELECT code FROM countries)', { kind: 'scatter' }),
    sql('SELECT id FROM accounts WHERE id IN (SELECT account_id FROM orders)', { kind: 'scatter' }),
    sql('SELECT a.id FROM accounts a WHERE EXISTS (SELECT 1 FROM orders o WHERE o.account_id = a.id)', { kind: 'scatter' }),
    sql(`SELECT a.id FROM accounts a WHERE a.id = ${K2} AND EXISTS (SELECT 1 FROM orders o WHERE o.account_id = a.id)`, { kind: 'shard', shard: 2 }),
    sql(`SELECT a.id, (SELECT count(*) FROM orders o WHERE o.account_id = a.id) FROM accounts a WHERE a.id IN (${K1}, ${K1})`, { kind: 'shard', shard: 1 }),
    sql(`SELECT "a"."id", "o"."data" FROM "accounts" "a" LEFT JOIN LATERAL (SELECT json_agg("o"."total") AS "data" FROM (SELECT * FROM "orders" "o" WHERE "o"."account_id" = "a"."id" ORDER BY "o"."total") "o") "o" ON true WHERE "a"."id" = ${K1} LIMIT 1`, { kind: 'shard', shard: 1 }),
    sql(`UPDATE accounts SET owner = (SELECT max(U0.total)::text FROM orders U0 WHERE U0.account_id = (accounts.id)) WHERE accounts.id = ${K2}`, { kind: 'shard', shard: 2 }),
    sql(`DELETE FROM accounts WHERE accounts.id = ${K1} AND NOT EXISTS (SELECT 1 FROM orders U0 WHERE U0.account_id = accounts.id)`, { kind: 'shard', shard: 1 }),
    // Subqueries that refer to nothing around them are read first, across shards, and their answers written in.
    sql(`UPDATE accounts SET balance = (SELECT max(o.total) FROM orders o) WHERE id = ${K2}`, { kind: 'evaluate', reason: /a subquery over sharded table orders, read first on its own/, refused: /a write must stay on one shard/ }),
    // Its expression over an aggregate is computed over the aggregate read first.
    sql(`UPDATE accounts SET owner = (SELECT max(o.total)::text FROM orders o) WHERE id = ${K2}`, { kind: 'evaluate' }),
    // Neither as written nor read first: refused for what the subquery does.
    sql(`UPDATE accounts SET owner = (SELECT (percentile_cont(0.5) WITHIN GROUP (ORDER BY o.total))::text FROM orders o) WHERE id = ${K2}`, { kind: 'evaluate' }),
    sql(`UPDATE accounts SET owner = (SELECT json_agg(o.total)::text FROM orders o) WHERE id = ${K2}`, { kind: 'error', message: /the aggregate json_agg\(\).*\(in a subquery over a sharded table, which pgshard reads first on its own\)$/ }),
    sql(`UPDATE accounts SET owner = (SELECT max(o.total)::text FROM orders o WHERE o.account_id = accounts.id) WHERE id = ${K2} AND EXISTS (SELECT 1 FROM orders o WHERE o.total > 1)`, { kind: 'evaluate', subqueries: [{ sql: 'SELECT 1 FROM orders o WHERE o.total > 1', form: 'exists' }] }),
    sql(`SELECT a.id FROM accounts a WHERE a.id = ${K2} AND EXISTS (SELECT 1 FROM orders o WHERE o.account_id = a.id) AND EXISTS (SELECT 1 FROM orders o WHERE o.total > 1)`, { kind: 'evaluate' }),
    sql('SELECT id FROM accounts WHERE owner IN (SELECT account_id FROM orders)', { kind: 'evaluate', subqueries: [{ sql: 'SELECT account_id FROM orders', form: 'in' }] }),
    sql('SELECT id FROM accounts a WHERE EXISTS (SELECT 1 FROM orders o WHERE o.account_id = a.owner)', { kind: 'error', code: '0A000', message: /a subquery over sharded table orders in a read across shards, tied to accounts\.owner by orders\.account_id, which are not both sharding keys/ }),
    sql('SELECT id, (SELECT max(x) FROM accounts) FROM accounts', { kind: 'evaluate', parts: ['SELECT id, (', ') FROM accounts'], subqueries: [{ sql: 'SELECT max(x) FROM accounts', form: 'scalar' }] }),
    sql('SELECT id FROM accounts WHERE id IN (SELECT id FROM logs)', { kind: 'error', message: /unsharded table logs exists only on shard s1/ }),
    sql('SELECT a.id FROM accounts a JOIN logs l ON l.id = a.id', { kind: 'error', message: /unsharded table logs/ }),
  ])
  check(t, [
    sql('SELECT my_agg(x) FROM accounts', { kind: 'error', code: '0A000', message: /the aggregate my_agg\(\) in a read across shards/ }),
    sql(`SELECT my_agg(x) FROM accounts WHERE id = ${K0}`, { kind: 'shard', shard: 0 }),
    sql('SELECT lower(name), count(*) FROM accounts GROUP BY 1', { kind: 'scatter' }),
    sql('SELECT id FROM accounts WHERE x > (SELECT my_agg(v) FROM countries)', { kind: 'scatter' }),
    sql('SELECT new_fn(x) FROM accounts', {
      kind: 'error', code: '0A000', message: /the function new_fn\(\) in a read across shards: it is not in the catalog/, hint: /RELOAD/,
    }),
    sql(`SELECT new_fn(x) FROM accounts WHERE id = ${K0}`, { kind: 'shard', shard: 0 }),
    sql('SELECT id FROM accounts WHERE new_fn(x) > 1', { kind: 'scatter' }),
  ], withAggregates)
  // The catalog read again (RELOAD) knows it.
  check(t, [sql('SELECT new_fn(x) FROM accounts', { kind: 'scatter' })], routerKnowing([{ proname: 'new_fn', provolatile: 's', prokind: 'f' }]))
})

t.test('several statements in one query go together: DDL on every shard never carries a statement for one shard', async (t) => {
  await initSqlParser()
  const apart = { kind: 'error', code: '0A000', message: /a query of several statements runs CREATE on every shard .* and INSERT where its rows are .*: run together, each would run in the other's place/, hint: /separate queries/ }
  check(t, [
    sql(`CREATE TABLE accounts (id bigint); INSERT INTO accounts (id) VALUES (${K1})`, apart),
    sql(`INSERT INTO accounts (id) VALUES (${K1}); CREATE INDEX ON accounts (id)`, { ...apart, message: /runs CREATE on every shard .* and INSERT where its rows are/ }),
    sql(`CREATE INDEX ON accounts (id); UPDATE accounts SET name = 'x' WHERE id = ${K2}`, { kind: 'error', message: /and UPDATE where its rows are/ }),
    sql("CREATE TABLE countries (code text); INSERT INTO countries VALUES ('FR')", { kind: 'broadcast' }),
    sql('CREATE TABLE accounts (id bigint); CREATE INDEX ON accounts (id); SET search_path = public', { kind: 'broadcast' }),
    sql(`UPDATE accounts SET name = 'x' WHERE id = ${K2}; SELECT 1`, { kind: 'shard', shard: 2 }),
    sql(`UPDATE accounts SET name = 'x' WHERE id = ${K2}; SELECT name FROM accounts WHERE id = ${K2}`, { kind: 'shard', shard: 2 }),
    sql(`UPDATE accounts SET name = 'x' WHERE id = ${K2}; SELECT count(*) FROM accounts WHERE id = ${K0}`, {
      kind: 'error', code: '0A000', message: /a query of several statements that runs on shards s0, s2 reads sharded rows .*: the shards' rows would not be merged/,
    }),
    sql(`SELECT name FROM accounts WHERE id IN (${K0}, ${K2}); SELECT 1`, { kind: 'error', code: '0A000', message: /touches shards s0, s2 and cannot be merged across shards: several statements in one query/ }),
  ])
})

t.test('analyzed statements: count(DISTINCT key) and subqueries in FROM across shards', async (t) => {
  await initSqlParser()
  const withCatalog = routerKnowing([{ proname: 'my_agg', provolatile: 'i', prokind: 'a' }, { proname: 'lower', provolatile: 'i', prokind: 'f' }])
  check(t, [
    sql('SELECT count(DISTINCT id) FROM accounts', { kind: 'scatter' }),
    sql('SELECT a.country, count(DISTINCT a.id) FROM accounts a LEFT JOIN countries c ON c.code = a.country GROUP BY a.country', { kind: 'scatter' }),
    sql('SELECT count(DISTINCT o.account_id) FROM accounts a JOIN orders o ON o.account_id = a.id', { kind: 'scatter' }),
    sql('SELECT count(DISTINCT id) FROM accounts WHERE balance > 0', { kind: 'scatter', plan: { shardSql: 'SELECT count(DISTINCT id) FROM accounts WHERE balance > 0', columns: [{ kind: 'aggregate', fn: 'count' }] } }),
    sql('SELECT count(DISTINCT name), count(*) FROM accounts WHERE balance > 0', {
      kind: 'scatter',
      plan: {
        shardSql: 'SELECT count(DISTINCT name), count(*), name FROM accounts WHERE balance > 0 GROUP BY name',
        columns: [{ kind: 'aggregate', fn: 'count', distinctColumn: 2 }, { kind: 'aggregate', fn: 'count' }, { kind: 'value' }],
      },
    }),
    sql('SELECT a.country, count(DISTINCT c.code) FILTER (WHERE c.code > $1) FROM accounts a JOIN countries c ON c.code = a.country GROUP BY a.country HAVING count(DISTINCT a.name) > 1 ORDER BY 2', {
      kind: 'scatter',
      plan: { shardSql: 'SELECT a.country, count(DISTINCT c.code) FILTER (WHERE c.code > $1), count(DISTINCT a.name), c.code, a.name FROM accounts a JOIN countries c ON c.code = a.country GROUP BY a.country, c.code, a.name' },
    }),
    sql('SELECT count(DISTINCT lower(a.name)), count(DISTINCT date_trunc(\'day\', a.created)) FROM accounts a', {
      kind: 'scatter',
      plan: { shardSql: "SELECT count(DISTINCT lower(a.name)), count(DISTINCT date_trunc('day', a.created)), lower(a.name), date_trunc('day', a.created) FROM accounts a GROUP BY lower(a.name), date_trunc('day', a.created)" },
    }),
    sql(`SELECT count(DISTINCT name) FROM accounts WHERE id = ${K1}`, { kind: 'shard', shard: 1 }),
    sql('SELECT max(DISTINCT name) FROM accounts', { kind: 'scatter' }),
  ], withCatalog)
  const derivedJoin = /a join across shards of subquery s, which reads sharded tables but outputs none of their sharding keys/
  check(t, [
    sql('SELECT DISTINCT d.i FROM (SELECT a.id AS i, c.name FROM accounts a LEFT JOIN countries c ON c.code = a.country WHERE c.code = $1) d ORDER BY d.i LIMIT 2', { kind: 'scatter' }),
    sql('SELECT n FROM (SELECT lower(name) AS n FROM accounts) s ORDER BY n', { kind: 'scatter' }),
    sql(`SELECT n FROM (SELECT name AS n FROM accounts WHERE id = ${K2}) s`, { kind: 'shard', shard: 2 }),
    sql('SELECT s.id, r.n FROM (SELECT id, country FROM accounts) s JOIN (SELECT code, count(*) AS n FROM countries GROUP BY code) r ON r.code = s.country', { kind: 'scatter' }),
    sql('SELECT x FROM (SELECT id AS x FROM (SELECT id FROM accounts) a) b', { kind: 'scatter' }),
    sql('SELECT k, n FROM (SELECT country AS k, count(*) AS n FROM accounts GROUP BY country) s', {
      kind: 'evaluate', refused: /GROUP BY in a subquery in FROM over sharded tables, in a read across shards: each shard would apply it to its own rows only/,
    }),
    // LIMIT or OFFSET picks the subquery's rows: it runs first, its rows shared out (spread: reads a sharded table).
    sql('SELECT x FROM (SELECT id AS x FROM accounts ORDER BY id LIMIT 5) s', { kind: 'scatter', plan: { limited: [{ derived: 0, spread: true }] } }),
    sql('SELECT a.id FROM (SELECT code FROM countries ORDER BY code LIMIT 2) c JOIN accounts a ON a.country = c.code', { kind: 'scatter', plan: { limited: [{ derived: 0, spread: false }] } }),
    sql('SELECT o.total FROM (SELECT * FROM accounts ORDER BY balance DESC LIMIT 3) a JOIN orders o ON o.account_id = a.id', { kind: 'scatter', plan: { limited: [{ spread: true }] } }),
    sql('SELECT o.total FROM (SELECT * FROM accounts ORDER BY balance DESC LIMIT 3) a JOIN orders o ON o.id = a.id', { kind: 'evaluate', refused: /subquery a is not joined on its sharding key/ }),
    sql('SELECT x FROM (SELECT y AS x FROM (SELECT id AS y FROM accounts ORDER BY id LIMIT 5) i) s', { kind: 'evaluate', refused: /LIMIT or OFFSET in a subquery in FROM/ }),
    sql('SELECT x FROM (SELECT id AS x FROM accounts ORDER BY id LIMIT 5 FOR UPDATE) s', { kind: 'error', message: /LIMIT or OFFSET in a subquery in FROM/ }),
    // A UNION in FROM: each SELECT a level of its own; UNION exact when a column holds the key in every SELECT.
    sql('SELECT s.k FROM (SELECT id AS k FROM accounts WHERE balance > 0 UNION SELECT account_id FROM orders) s JOIN orders o ON o.account_id = s.k', { kind: 'scatter' }),
    sql('SELECT * FROM (SELECT name FROM accounts UNION ALL SELECT name FROM countries WHERE code IN (SELECT country FROM accounts)) s', { kind: 'error', message: /SELECT 2 of subquery s, which reads no sharded table/ }),
    // A subquery over reference tables whose WHERE reads a sharded table is not the same on every shard.
    sql('SELECT a.id FROM accounts a JOIN (SELECT code FROM countries c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.status = c.code)) c ON c.code = a.country', {
      kind: 'error', code: '0A000', message: /a subquery over sharded table orders in a read across shards, tied to countries\.code by orders\.status/,
    }),
    sql('SELECT * FROM (SELECT id, name FROM accounts UNION ALL SELECT total, id::text FROM orders) s', { kind: 'scatter' }),
    sql('SELECT * FROM (SELECT name FROM accounts UNION SELECT status FROM orders) s', { kind: 'error', code: '0A000', message: /UNION in subquery s across shards, whose SELECTs do not all output their sharding key in one column: equal rows may be on two shards/ }),
    sql('SELECT * FROM (SELECT a.id FROM orders o LEFT JOIN accounts a ON a.id = o.account_id UNION SELECT id FROM accounts) s', { kind: 'error', message: /do not all output their sharding key/ }),
    sql('SELECT * FROM (SELECT id FROM accounts UNION SELECT id FROM devices) s', { kind: 'error', message: /do not all output their sharding key/ }),
    sql('SELECT * FROM (SELECT id FROM accounts UNION ALL SELECT 1) s', { kind: 'error', message: /SELECT 2 of subquery s, which reads no sharded table, in a read across shards: every shard would return its rows/ }),
    sql("SELECT * FROM (SELECT code FROM countries UNION SELECT 'zz') c JOIN accounts a ON a.country = c.code", { kind: 'scatter' }),
    sql('SELECT * FROM (SELECT country, count(*) FROM accounts GROUP BY country UNION ALL SELECT name, 1 FROM accounts) s', { kind: 'error', message: /GROUP BY in a subquery in FROM over sharded tables/ }),
    sql('SELECT * FROM (SELECT id AS k FROM accounts UNION SELECT account_id FROM orders) s JOIN accounts a ON a.id = s.k', { kind: 'scatter' }),
    sql('SELECT * FROM (SELECT id AS k FROM accounts UNION ALL SELECT id FROM orders) s JOIN accounts a ON a.id = s.k', { kind: 'error', message: /subquery s, which reads sharded tables but outputs none of their sharding keys/ }),
    sql('COPY (SELECT x FROM (SELECT id AS x FROM accounts ORDER BY id LIMIT 5) s) TO STDOUT', { kind: 'error', code: '0A000', message: /with a subquery whose LIMIT or OFFSET picks rows: each shard would pick its own first rows/ }),
    sql('SELECT count(*) FROM (SELECT id AS x FROM accounts ORDER BY id LIMIT 5 OFFSET 2) s', { kind: 'scatter' }),
    // Grouped by a key, each shard computes its groups whole: aggregates the merge could not regroup run too.
    sql("SELECT account_id, string_agg(total::text, ',' ORDER BY id), json_agg(id) FROM orders GROUP BY account_id ORDER BY count(*) DESC LIMIT 3", { kind: 'scatter', plan: { groupBy: null, sources: { wholeGroups: { unmergeable: /string_agg\(x ORDER BY …\) by other than x itself/ } } } }),
    sql('SELECT a.id, percentile_cont(0.5) WITHIN GROUP (ORDER BY o.total) FROM accounts a JOIN orders o ON o.account_id = a.id GROUP BY a.id HAVING count(*) > 2', { kind: 'scatter' }),
    sql('SELECT status, json_agg(id) FROM orders GROUP BY status', { kind: 'error', code: '0A000', message: /a read across shards grouped by what is not a sharding key, which pgshard cannot merge: the aggregate json_agg\(\)/ }),
    sql('SELECT o.account_id, json_agg(a.name) FROM countries c LEFT JOIN accounts a ON a.country = c.code LEFT JOIN orders o ON o.account_id = a.id GROUP BY o.account_id', { kind: 'error', message: /an outer join across shards that keeps rows of reference table countries|grouped by what is not a sharding key/ }),
    // count(*) of a subquery grouped by what is not a key: pgshard counts its merged rows; by a key: the shards count.
    sql('SELECT count(*) FROM (SELECT DISTINCT name FROM accounts LIMIT 5) s', { kind: 'scatter', plan: { countRows: { name: 'count', plan: { distinct: true } } } }),
    sql('SELECT count(*) AS n FROM (SELECT country, sum(balance) FROM accounts GROUP BY country) s', { kind: 'scatter', plan: { countRows: { name: 'n', plan: { groupBy: [0] } } } }),
    sql('SELECT count(*) FROM (SELECT account_id, count(*) FROM orders GROUP BY account_id) s', { kind: 'scatter', plan: { countRows: undefined, shardSql: 'SELECT count(*) FROM (SELECT account_id, count(*) FROM orders GROUP BY account_id) s' } }),
    sql('SELECT count(*) FROM (SELECT a.country FROM accounts a JOIN orders o ON o.id = a.id GROUP BY a.country) s', { kind: 'error', message: /orders is not joined on its sharding key to accounts/ }),
    sql('COPY (SELECT count(*) FROM (SELECT DISTINCT name FROM accounts) s) TO STDOUT', { kind: 'error', code: '0A000', message: /COPY \(query\) TO across shards, for a query that does more than filter and pick columns/ }),
    sql('SELECT x FROM (SELECT my_agg(id) AS x FROM accounts) s', { kind: 'error', message: /the aggregate my_agg\(\) in a read across shards/ }),
    sql('SELECT x FROM (SELECT new_fn(id) AS x FROM accounts) s', { kind: 'error', message: /the function new_fn\(\) in a read across shards: it is not in the catalog/ }),
    // A CTE named once in FROM is read as its subquery; named twice, or recursive, it stays refused.
    sql('WITH t AS (SELECT account_id, sum(total) AS s FROM orders GROUP BY account_id) SELECT a.name, t.s FROM accounts a JOIN t ON t.account_id = a.id', { kind: 'scatter' }),
    sql('WITH t AS (SELECT account_id, sum(total) AS s FROM orders GROUP BY account_id) SELECT * FROM t WHERE s > (SELECT avg(s) FROM t)', { kind: 'error', message: /a WITH query \(CTE\) across shards/ }),
    sql('WITH t AS (SELECT country, count(*) AS n FROM accounts GROUP BY country) SELECT * FROM t', { kind: 'error', message: /GROUP BY in a subquery in FROM over sharded tables/ }),
    sql('WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r JOIN accounts a ON a.id = r.n', { kind: 'error', message: /a WITH query \(CTE\) across shards/ }),
    sql('WITH t AS (SELECT id FROM accounts) SELECT count(*) FROM accounts WHERE id IN (SELECT id FROM t)', { kind: 'error', message: /a subquery over sharded table accounts in a read across shards/ }),
    // Through a subquery's output column the sharding key joins like a table's (as it is, renamed, *, alias list).
    sql('SELECT 1 FROM (SELECT id FROM accounts) s JOIN accounts a ON a.id = s.id', { kind: 'scatter' }),
    sql('SELECT 1 FROM accounts a JOIN (SELECT account_id AS k, count(*) FROM orders GROUP BY 1) o ON o.k = a.id', { kind: 'scatter' }),
    sql('SELECT 1 FROM (SELECT * FROM accounts) s JOIN (SELECT o.account_id FROM orders o) o ON o.account_id = s.id', { kind: 'scatter' }),
    sql('SELECT 1 FROM (SELECT id, name FROM accounts) AS s(x, y) JOIN orders o ON o.account_id = s.x', { kind: 'scatter' }),
    sql('SELECT 1 FROM (SELECT x FROM (SELECT id AS x FROM accounts) i) s JOIN orders o ON o.account_id = s.x', { kind: 'scatter' }),
    sql('SELECT count(*) FROM (SELECT DISTINCT id_0 FROM (SELECT a.id AS id_0, a.name AS name_1 FROM accounts a) r) t', { kind: 'scatter' }),
    sql('SELECT 1 FROM (SELECT id FROM accounts) s, (SELECT account_id FROM orders) o', { kind: 'evaluate', refused: /a join across shards: subquery o is not joined on its sharding key to subquery s \(o\.account_id = s\.id\)/ }),
    sql('SELECT 1 FROM (SELECT id, name FROM accounts) AS s(name, id) JOIN orders o ON o.account_id = s.id', { kind: 'evaluate', refused: /subquery s is not joined on its sharding key to orders \(s\.name = orders\.account_id\)/ }),
    sql('SELECT 1 FROM (SELECT name FROM accounts) s JOIN orders o ON o.account_id = s.name', { kind: 'evaluate', refused: derivedJoin }),
    sql('SELECT 1 FROM (SELECT id::text AS k FROM accounts) s JOIN orders o ON o.account_id::text = s.k', { kind: 'evaluate', refused: derivedJoin }),
    sql('SELECT 1 FROM (SELECT id FROM devices) s JOIN (SELECT id FROM accounts) a ON a.id::text = s.id::text', { kind: 'evaluate', refused: /not joined on its sharding key/ }),
    sql('SELECT 1 FROM (SELECT id FROM devices) s JOIN accounts a ON a.id = s.id', { kind: 'evaluate', refused: /a join across shards of accounts\.id \(bigint\) with s\.id \(uuid\): keys of different types/ }),
    sql('SELECT 1 FROM (SELECT code FROM countries) c LEFT JOIN (SELECT id, country FROM accounts) s ON s.country = c.code', {
      kind: 'evaluate', refused: /an outer join across shards that keeps rows of a subquery over no sharded table/,
    }),
    sql('SELECT x FROM (SELECT a.id AS x FROM accounts a WHERE a.id IN (SELECT account_id FROM orders)) s', { kind: 'scatter' }),
    sql('SELECT x FROM (SELECT a.id AS x FROM accounts a WHERE a.balance IN (SELECT total FROM orders)) s', { kind: 'evaluate' }),
    sql('SELECT n FROM (SELECT account_id, count(*) AS n FROM orders GROUP BY account_id) s ORDER BY n DESC LIMIT 3', { kind: 'scatter' }),
    sql('SELECT count(DISTINCT s.id) FROM (SELECT id FROM accounts) s', { kind: 'scatter', plan: { shardSql: 'SELECT count(DISTINCT s.id), s.id FROM (SELECT id FROM accounts) s GROUP BY s.id' } }),
  ], withCatalog)
})

t.test('analyzed statements: a filter on a subquery\u2019s column pins the table inside when it could be written there', async (t) => {
  await initSqlParser()
  const withCatalog = routerKnowing([{ proname: 'row_number', provolatile: 'i', prokind: 'w' }])
  const unpinned = (what: RegExp) => ({ kind: 'error', code: '0A000', message: what })
  check(t, [
    sql(`SELECT * FROM (SELECT * FROM accounts WHERE balance > 0) s WHERE s.id = ${K2}`, { kind: 'shard', shard: 2 }),
    sql(`SELECT * FROM (SELECT a.id AS k, a.balance FROM accounts a) s WHERE k = ${K0}`, { kind: 'shard', shard: 0 }),
    sql('SELECT * FROM (SELECT o.account_id, o.total FROM orders o) AS s (acct, total) WHERE acct = $1', { kind: 'shard', shard: 1 }, [K1]),
    sql(`SELECT * FROM (SELECT a.* FROM accounts a JOIN countries c ON c.code = a.country) s WHERE s.id IN (${K1}, ${K1b})`, { kind: 'shard', shard: 1 }),
    sql(`SELECT * FROM (SELECT * FROM (SELECT * FROM accounts) x) y WHERE y.id = ${K2}`, { kind: 'shard', shard: 2 }),
    sql(`SELECT * FROM (SELECT o.account_id, count(*) AS n FROM orders o GROUP BY o.account_id) s WHERE s.account_id = ${K0}`, { kind: 'shard', shard: 0 }),
    sql(`SELECT * FROM (SELECT o.account_id AS a, count(*) AS n FROM orders o GROUP BY 1) s WHERE a = ${K0}`, { kind: 'shard', shard: 0 }),
    sql(`SELECT * FROM (SELECT DISTINCT ON (o.account_id) o.account_id, o.total FROM orders o ORDER BY o.account_id, o.total) s WHERE s.account_id = ${K2}`, { kind: 'shard', shard: 2 }),
    sql(`SELECT * FROM (SELECT o.account_id, row_number() OVER (PARTITION BY o.account_id ORDER BY o.total) rn FROM orders o) s WHERE account_id = ${K2} AND rn = 1`, { kind: 'shard', shard: 2 }),
    sql(`SELECT * FROM (SELECT id FROM accounts UNION ALL SELECT account_id FROM orders) s (k) WHERE k = ${K1}`, { kind: 'shard', shard: 1 }),
    sql(`SELECT a.id, s.total FROM accounts a JOIN (SELECT * FROM orders) s ON s.account_id = a.id WHERE a.id = ${K0}`, { kind: 'shard', shard: 0 }),
    sql(`SELECT * FROM accounts a WHERE a.id = ${K0} AND EXISTS (SELECT 1 FROM (SELECT o.account_id FROM orders o) s WHERE s.account_id = ${K0})`, { kind: 'shard', shard: 0 }),
    // The rows the subquery makes for the value would change: it stays a read of every shard (refused or merged).
    sql(`SELECT * FROM (SELECT a.id, a.balance FROM accounts a ORDER BY a.balance LIMIT 3) s WHERE s.id = ${K0}`, { kind: 'scatter', plan: { limited: [{ spread: true }] } }),
    sql(`SELECT * FROM (SELECT o.account_id, count(*) AS n FROM orders o GROUP BY o.total, o.account_id, ROLLUP (o.id)) s WHERE s.account_id = ${K0}`, unpinned(/GROUP BY in a subquery in FROM/)),
    sql(`SELECT * FROM (SELECT o.account_id, max(o.total) AS m FROM orders o GROUP BY o.total) s WHERE s.account_id = ${K0}`, { kind: 'evaluate', refused: /GROUP BY in a subquery in FROM/ }),
    sql(`SELECT * FROM (SELECT DISTINCT ON (o.total) o.account_id FROM orders o) s WHERE s.account_id = ${K0}`, unpinned(/DISTINCT in a subquery in FROM/)),
    sql(`SELECT * FROM (SELECT o.account_id, row_number() OVER (ORDER BY o.total) rn FROM orders o) s WHERE account_id = ${K2}`, unpinned(/a window function in a subquery in FROM/)),
    sql(`SELECT * FROM (SELECT a.id + 0 AS id FROM accounts a) s WHERE s.id = ${K0}`, { kind: 'scatter' }),
    sql(`SELECT * FROM (SELECT a.id AS x, a.balance AS id FROM accounts a) s WHERE s.id = ${K0}`, { kind: 'scatter' }),
    sql(`SELECT * FROM (SELECT a.id, a.balance FROM accounts a) AS s (x) WHERE s.id = ${K0}`, { kind: 'scatter' }),
    sql(`SELECT * FROM (SELECT id FROM accounts UNION SELECT id FROM accounts ORDER BY 1 LIMIT 2) s WHERE s.id = ${K0}`, unpinned(/LIMIT or OFFSET of a set operation in subquery s/)),
    sql(`SELECT * FROM (SELECT id FROM accounts INTERSECT SELECT id FROM accounts) s WHERE s.id = ${K0}`, { kind: 'shard', shard: 0 }),
    sql('SELECT * FROM (SELECT id FROM accounts INTERSECT SELECT account_id FROM orders) s', { kind: 'scatter' }),
    sql('SELECT * FROM (SELECT name FROM accounts INTERSECT SELECT status FROM orders) s', unpinned(/INTERSECT in subquery s across shards, whose SELECTs do not all output their sharding key in one column/)),
    // At the top: INTERSECT and EXCEPT with a key column, a UNION under UNION ALL too.
    sql('SELECT id FROM accounts INTERSECT SELECT account_id FROM orders ORDER BY 1', { kind: 'scatter', plan: { sources: { keyedBy: 'INTERSECT' } } }),
    sql('SELECT id, name FROM accounts EXCEPT ALL SELECT id, name FROM accounts WHERE balance > 0', { kind: 'scatter' }),
    sql('SELECT name FROM accounts EXCEPT SELECT name FROM accounts WHERE balance > 0', unpinned(/EXCEPT in the statement across shards, whose SELECTs do not all output their sharding key in one column/)),
    sql('SELECT id FROM accounts EXCEPT SELECT id FROM devices', unpinned(/EXCEPT in the statement across shards/)),
    sql("SELECT code FROM countries EXCEPT SELECT country FROM accounts", unpinned(/SELECT 1 of the EXCEPT, which reads no sharded table, in a read across shards/)),
    sql('SELECT id FROM accounts UNION ALL (SELECT id FROM accounts UNION SELECT account_id FROM orders)', { kind: 'scatter', plan: { sources: { keyedBy: 'UNION' } } }),
    sql('SELECT name FROM accounts UNION ALL (SELECT name FROM accounts UNION SELECT name FROM accounts)', unpinned(/UNION in the statement across shards/)),
    sql(`SELECT * FROM (SELECT id FROM accounts UNION ALL SELECT id + 0 FROM accounts) s WHERE s.id = ${K0}`, { kind: 'scatter' }),
    sql(`SELECT * FROM (SELECT a.*, c.* FROM accounts a JOIN countries c ON c.code = a.country) s WHERE s.id = ${K0}`, { kind: 'scatter' }),
  ], withCatalog)
})

t.test('analyzed statements: INSERT … SELECT whose rows take their key from a constant or a pinned key', async (t) => {
  await initSqlParser()
  const unroutable = { kind: 'error', code: '0A000', message: /this INSERT … SELECT cannot be routed/, hint: /select the key as a constant or as the pinned key .* when its query stands on its own \(not over a WITH query of the INSERT\) and writes nothing/ }
  check(t, [
    sql(`INSERT INTO orders (account_id, total) SELECT a.id, a.balance FROM accounts a WHERE a.id = ${K2}`, { kind: 'shard', shard: 2 }),
    sql(`INSERT INTO accounts (id, owner) SELECT s.id, s.owner FROM accounts s WHERE s.id = ${K0}`, { kind: 'shard', shard: 0 }),
    sql('INSERT INTO orders (total, account_id) SELECT sum(o.total), $1 FROM orders o WHERE o.account_id = $1', { kind: 'shard', shard: 0 }, [K0]),
    sql(`INSERT INTO orders (account_id, total) SELECT ${K1}, 1 FROM countries c`, { kind: 'shard', shard: 1 }),
    sql(`INSERT INTO orders (account_id, total) SELECT ${K1}, o.total FROM orders o WHERE o.account_id = ${K2}`, { kind: 'error', code: '0A000', message: /touches shards s1, s2: a write must stay on one shard/ }),
    sql(`INSERT INTO orders (account_id, total) SELECT a.id, 1 FROM accounts a WHERE a.id IN (${K0}, ${K2})`, { kind: 'error', code: '0A000', message: /touches shards s0, s2/ }),
    // With RETURNING or ON CONFLICT, which COPY cannot take: its rows read first, then inserted as VALUES.
    sql('INSERT INTO orders (account_id, total) SELECT a.id, 1 FROM accounts a RETURNING id', { kind: 'evaluate', subqueries: [{ sql: 'SELECT a.id, 1 FROM accounts a', form: 'values' }] }),
    sql('INSERT INTO orders (account_id, total) SELECT a.id, 1 FROM accounts a ON CONFLICT DO NOTHING', { kind: 'evaluate' }),
    sql('INSERT INTO orders (account_id, total) SELECT 5, 1 WHERE false RETURNING id', { kind: 'shard' }),
    // Into a reference table: from reference tables every shard inserts the same rows itself; from a sharded table
    // they are read first.
    sql('INSERT INTO countries (code) SELECT code FROM currencies ON CONFLICT DO NOTHING RETURNING code', { kind: 'broadcast' }),
    sql('INSERT INTO countries (code) SELECT DISTINCT a.country FROM accounts a ON CONFLICT DO NOTHING RETURNING code', { kind: 'evaluate', subqueries: [{ form: 'values' }] }),
    sql('WITH s AS (SELECT id FROM accounts) INSERT INTO orders (account_id, total) SELECT id, 1 FROM s', unroutable),
    sql('INSERT INTO orders (account_id, total) WITH d AS (DELETE FROM orders RETURNING account_id) SELECT account_id, 1 FROM d', { kind: 'error', code: '0A000' }),
    sql('INSERT INTO orders (account_id, total) SELECT a.id, 1 FROM accounts a; SELECT 1', { kind: 'error', code: '0A000', message: /a query of several statements with an INSERT into sharded table orders runs only where all its statements go together/, hint: /send the INSERT as a query of its own/ }),
  ])
})

t.test('analyzed statements: INSERT … SELECT whose keys come from its rows is split by key as a COPY of its query\'s rows', async (t) => {
  await initSqlParser()
  const split = (columns: string[] | null, query: string) => ({ kind: 'copy_split', key: 'account_id', copy: { table: 'orders', columns, format: 'text' }, source: `COPY (${query}) TO STDOUT` })
  check(t, [
    sql('INSERT INTO orders (account_id, total) SELECT a.id, 1 FROM accounts a', split(['account_id', 'total'], 'SELECT a.id, 1 FROM accounts a')),
    sql(`insert into orders (account_id, total) select a.balance, 1 from accounts a where a.id = ${K0};`, split(['account_id', 'total'], `select a.balance, 1 from accounts a where a.id = ${K0}`)),
    sql(`INSERT INTO public.orders AS o (total, account_id) (SELECT 1, e.tenant FROM events e WHERE e.tenant = 'x')`, { ...split(['total', 'account_id'], `(SELECT 1, e.tenant FROM events e WHERE e.tenant = 'x')`), copy: { table: '"public"."orders"' } }),
    sql(`INSERT INTO orders SELECT * FROM orders WHERE account_id = ${K0} + 1`, split(null, `SELECT * FROM orders WHERE account_id = ${K0} + 1`)),
    sql('INSERT INTO orders (account_id, total) SELECT g, g FROM generate_series(1, 10) g', split(['account_id', 'total'], 'SELECT g, g FROM generate_series(1, 10) g')),
    sql('INSERT INTO orders (account_id, total) VALUES (1, 2) ORDER BY 1', split(['account_id', 'total'], 'VALUES (1, 2) ORDER BY 1')),
    sql('INSERT INTO orders (account_id, total) SELECT g, g FROM generate_series(1, 10) g', {
      kind: 'error', code: '0A000', message: /takes its keys \(account_id\) from its SELECT, so its rows may go to several shards, which pgshard does only outside a transaction block/,
    }, [], { inTransaction: true }),
  ])
})

t.test('analyzed statements: window functions across shards when every window partitions by a sharding key', async (t) => {
  await initSqlParser()
  const withCatalog = routerKnowing([{ proname: 'row_number', provolatile: 'i', prokind: 'w' }, { proname: 'array_agg', provolatile: 'i', prokind: 'a' }])
  const unpartitioned = { kind: 'error', code: '0A000', message: /a window function in a read across shards whose windows are not all partitioned by a sharding key/, hint: /PARTITION BY the sharding key/ }
  const derived = { kind: 'error', code: '0A000', message: /a window function in a subquery in FROM over sharded tables/ }
  check(t, [
    sql('SELECT id, row_number() OVER (PARTITION BY id ORDER BY balance) FROM accounts ORDER BY id LIMIT 3', { kind: 'scatter' }),
    sql('SELECT id, array_agg(balance) OVER w FROM accounts WINDOW w AS (PARTITION BY id)', { kind: 'scatter' }),
    sql('SELECT o.id, sum(o.total) OVER (PARTITION BY a.id) FROM accounts a JOIN orders o ON o.account_id = a.id', { kind: 'scatter' }),
    sql('SELECT id, row_number() OVER (ORDER BY balance) FROM accounts', unpartitioned),
    sql('SELECT id, row_number() OVER (PARTITION BY country) FROM accounts', unpartitioned),
    sql('SELECT id, row_number() OVER (PARTITION BY id), count(*) OVER () FROM accounts', { kind: 'scatter', plan: { totals: [{ column: 2, fn: 'count' }] } }),
    sql('SELECT id, row_number() OVER (PARTITION BY id), count(*) OVER (ORDER BY id) FROM accounts', unpartitioned),
    sql('SELECT c.code, row_number() OVER (PARTITION BY a.id) FROM countries c LEFT JOIN accounts a ON a.country = c.code', {
      kind: 'error', message: /an outer join across shards that keeps rows of reference table countries/,
    }),
    sql('SELECT a.id, row_number() OVER (PARTITION BY o.account_id) FROM accounts a LEFT JOIN orders o ON o.account_id = a.id', unpartitioned),
    sql(`SELECT id, row_number() OVER (ORDER BY balance) FROM accounts WHERE id = ${K2}`, { kind: 'shard', shard: 2 }),
    sql('SELECT * FROM (SELECT id, row_number() OVER (PARTITION BY id ORDER BY balance DESC) AS rn FROM accounts) s WHERE rn = 1', { kind: 'scatter' }),
    sql('SELECT * FROM (SELECT o.account_id, row_number() OVER (PARTITION BY o.account_id ORDER BY o.total) AS rn FROM accounts a JOIN orders o ON o.account_id = a.id) s WHERE rn <= 2', { kind: 'scatter' }),
    sql('SELECT * FROM (SELECT id, row_number() OVER (PARTITION BY country) AS rn FROM accounts) s WHERE rn = 1', derived),
    sql('SELECT * FROM (SELECT a.id, o.account_id, count(*) AS n FROM accounts a LEFT JOIN orders o ON o.account_id = a.id GROUP BY o.account_id, a.id) s', { kind: 'scatter' }),
    sql('SELECT * FROM (SELECT o.account_id, count(*) AS n FROM accounts a LEFT JOIN orders o ON o.account_id = a.id GROUP BY o.account_id) s', {
      kind: 'evaluate', refused: /GROUP BY in a subquery in FROM over sharded tables/,
    }),
  ], withCatalog)
})

t.test('INSERT … OVERRIDING USER VALUE into a sharded or reference table: refused, each shard would number it', async (t) => {
  await initSqlParser()
  const refused = { kind: 'error', code: '0A000', message: /OVERRIDING USER VALUE into (accounts|countries): each shard would number its identity columns itself/ }
  check(t, [
    sql(`INSERT INTO accounts (id, name) OVERRIDING USER VALUE VALUES (${K1}, 'x')`, refused),
    sql("INSERT INTO countries (code) OVERRIDING USER VALUE VALUES ('fr')", refused),
    sql('INSERT INTO accounts (id) OVERRIDING USER VALUE SELECT id FROM accounts WHERE id = 5', refused),
    sql("INSERT INTO logs (id, msg) OVERRIDING USER VALUE VALUES (1, 'x')", { kind: 'shard', shard: 1, reason: /unsharded/ }),
    sql(`INSERT INTO accounts (id, name) OVERRIDING SYSTEM VALUE VALUES (${K1}, 'x')`, { kind: 'shard', shard: 1 }),
  ])
})

t.test('analyzed statements: GROUP BY an output alias across shards, when the catalog shows no column of that name', async (t) => {
  await initSqlParser()
  const columns = new TableColumns()
  const read = Date.now()
  columns.load([
    { table: { schema: 'public', name: 'orders' }, columns: ['id', 'Account_ID', 'customer_id', 'status', 'ctid'] },
    { table: { schema: 'public', name: 'countries' }, columns: ['code', 'name'] },
  ], read)
  const withColumns = new Router(map, new FunctionVolatility(config.routing), { columns })
  const sequelize = 'SELECT "customer_id" AS "customerId", count("id") AS "n" FROM "orders" AS "Order" GROUP BY "customerId"'
  check(t, [
    sql(sequelize, { kind: 'scatter', plan: { groupBy: [0] } }),
    sql('SELECT lower(o.status) AS name, count(*) FROM orders o JOIN countries c ON c.code = o.status GROUP BY name', {
      kind: 'error', code: '0A000', message: /GROUP BY name in a read across shards: countries has a column name, which Postgres groups by/, hint: /GROUP BY 1/,
    }),
    sql('SELECT lower(status) AS ctid, count(*) FROM orders GROUP BY ctid', { kind: 'error', message: /orders has a column ctid/ }),
    sql('SELECT lower(label) AS day, count(*) FROM accounts GROUP BY day', {
      kind: 'error', message: /unless accounts has a column of that name, and pgshard has not read accounts's columns/, hint: /RELOAD/,
    }),
  ], withColumns)
  check(t, [sql(sequelize, { kind: 'error', message: /pgshard has not read orders's columns/ })], router)
  const orders = (...names: string[]) => [{ table: { schema: 'public', name: 'orders' }, columns: ['id', 'customer_id', ...names] }]
  columns.load(orders(), read)
  columns.forget([{ name: 'orders' }], read + 1)
  const unknown = { kind: 'error', message: /has not read orders's columns since it was made or changed/ }
  check(t, [sql(sequelize, unknown)], withColumns)
  columns.load(orders(), read + 5_000)
  check(t, [sql(sequelize, unknown)], withColumns)
  columns.load(orders('customerId'), read + 6_000)
  check(t, [sql(sequelize, { kind: 'error', message: /orders has a column customerId/ })], withColumns)
  columns.forget([{ name: 'orders' }], read + 7_000)
  columns.load(orders('customerId'), read + 7_000)
  check(t, [sql(sequelize, unknown)], withColumns)
  columns.load(orders('customerId'), read + 17_001)
  check(t, [sql(sequelize, { kind: 'error', message: /orders has a column customerId/ })], withColumns)
  columns.forget([{ name: 'orders' }], read + 18_000)
  columns.load(orders(), read + 19_000)
  check(t, [sql(sequelize, { kind: 'scatter' })], withColumns)
})

t.test('analyzed statements: assigning a sharding key, INSERT rows with expressions', async (t) => {
  await initSqlParser()
  const K0b = keyOn(0, Number(K0) + 1)
  check(t, [
    sql('UPDATE accounts SET id = $1 WHERE id = $2', { kind: 'error', code: '0A000', message: /UPDATE sets sharding key accounts\.id to a value owned by shard s2, but the statement runs on shard s0/, hint: /DELETE it and INSERT it again/ }, [K2, K0]),
    sql('UPDATE accounts SET id = $1 WHERE id = $2', { kind: 'shard', shard: 0 }, [K0b, K0]),
    sql(`UPDATE accounts SET name = 'x', id = id WHERE id = ${K0}`, { kind: 'shard', shard: 0 }),
    sql(`UPDATE accounts a SET (name, id) = ('x', ${K2}) WHERE a.id = ${K0}`, { kind: 'error', message: /owned by shard s2/ }),
    sql(`UPDATE accounts SET id = id + 1 WHERE id = ${K0}`, { kind: 'error', code: '0A000', message: /sets sharding key accounts\.id to an expression/ }),
    sql(`UPDATE orders o SET account_id = a.id FROM accounts a WHERE o.account_id = ${K0} AND a.id = o.account_id`, { kind: 'error', message: /orders\.account_id to an expression/ }),
    sql("UPDATE events SET tenant = 'x'", { kind: 'error', code: '0A000', message: /UPDATE sets sharding key events\.tenant on several shards/ }),
    sql("UPDATE events SET note = 'x'", { kind: 'broadcast' }),
    sql(`/* pgshard: shard=s0 */ UPDATE accounts SET id = ${K2} WHERE name = 'x'`, { kind: 'error', message: /owned by shard s2, but the statement runs on shard s0/ }),
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (id) DO UPDATE SET id = excluded.id, name = excluded.name`, { kind: 'shard', shard: 0 }),
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (id, name) DO UPDATE SET id = ${K2}`, { kind: 'error', message: /INSERT sets sharding key accounts\.id to a value owned by shard s2/ }),
    sql(`WITH u AS (UPDATE accounts SET id = ${K2} WHERE id = ${K0} RETURNING id) SELECT * FROM u`, { kind: 'error', message: /owned by shard s2/ }),
    sql(`UPDATE accounts SET id = ${K0} WHERE id = ${K0}`, { kind: 'shard', shard: 0 }),
    sql(`UPDATE accounts SET id = NULL WHERE id = ${K0}`, { kind: 'error', code: '23502' }),
    sql("INSERT INTO accounts (id) VALUES (nextval('s'))", { kind: 'error', code: '0A000', message: /row 1 gives its key column id by an expression/ }),
    sql("/* pgshard: shard=s2 */ INSERT INTO accounts (id) VALUES (nextval('s')), ($1)", { kind: 'shard', shard: 2 }, [K2]),
    sql("/* pgshard: shard=s2 */ INSERT INTO accounts (id) VALUES (nextval('s')), ($1)", { kind: 'error', message: /belongs to shard s0/ }, [K0]),
    sql(`INSERT INTO accounts (id, created) VALUES (${K1}, now())`, { kind: 'shard', shard: 1 }),
  ])
  // SQL PREPARE / EXECUTE: the EXECUTE is routed by the prepared query's plan, its arguments bound to $n.
  const prepared = analyzeStatement('PREPARE q (int8) AS SELECT * FROM accounts WHERE id = $1').prepared!
  const execute = analyzeStatement(`EXECUTE q(${K2})`).session[0]
  const args = execute?.kind === 'execute' ? execute.args : []
  const bound = (n: number): BoundParam | undefined => {
    const a = args[n - 1]
    return a && 'literal' in a ? { value: a.literal, format: 0, typeOid: 0 } : undefined
  }
  t.match(router.route(prepared, bound, NO_TX), { kind: 'shard', shard: 2 }, 'EXECUTE q(key) goes to the key’s shard')
  t.match(router.route(analyzeStatement('PREPARE c AS SELECT count(*) FROM accounts').prepared!, none, NO_TX), { kind: 'scatter' })
  const text = `INSERT INTO accounts (id, created, name) VALUES (${K0}, now(), $1 || 'x'), (${K2}, DEFAULT, 'y'), ($2, now(), 'z')`
  const route = router.route(analyzeStatement(text), textParams('p', K0b), NO_TX)
  t.same(route, {
    kind: 'split',
    parts: [
      { shard: 0, sql: `INSERT INTO accounts (id, created, name) VALUES (${K0}, now(), $1 || 'x'), ($2, now(), 'z')`, rows: 2 },
      { shard: 2, sql: `INSERT INTO accounts (id, created, name) VALUES (${K2}, DEFAULT, 'y')`, rows: 1 },
    ],
    rowShards: [0, 2, 0],
    reason: 'INSERT rows of accounts span shards s0, s2: one INSERT per shard',
  }, 'rows whose other values are expressions still split by their keys')
})

t.test('analyzed statements: an existence test asks every shard and ORs the answers; anything beyond it is read first', async (t) => {
  await initSqlParser()
  const exists = (sql: string) => analyzeStatement(sql).scatter?.existence
  t.equal(exists("SELECT EXISTS (SELECT 1 FROM accounts WHERE name = 'x') AS e"), 'value', 'SQLAlchemy exists()')
  t.equal(exists('SELECT 1 AS "row_exists" FROM (SELECT 1 AS dummy_column) "dummy_table" WHERE EXISTS (SELECT 1 FROM "accounts" "A" WHERE (("A"."name" = $1))) LIMIT 1'), 'filter', 'TypeORM exists()')
  t.equal(exists("SELECT 'y' WHERE EXISTS (SELECT DISTINCT name FROM accounts WHERE lower(name) = 'x' LIMIT 1)"), 'filter', 'DISTINCT, LIMIT and calls in WHERE keep rows alone')
  check(t, [
    sql("SELECT EXISTS (SELECT 1 FROM accounts WHERE name = 'x')", { kind: 'scatter', plan: { existence: 'value', groupBy: [], columns: [{ kind: 'aggregate', fn: 'bool_or' }] } }),
    sql(`SELECT EXISTS (SELECT 1 FROM accounts a WHERE a.id = ${K2})`, { kind: 'shard', shard: 2 }),
    // The subquery combines rows, reads another table, or skips rows: its answer on a shard is not its share, so
    // it is read first across shards, and its answer written in.
    sql("SELECT EXISTS (SELECT 1 FROM accounts WHERE name = 'x' OFFSET 1)", { kind: 'evaluate' }),
    sql('SELECT EXISTS (SELECT name FROM accounts GROUP BY name HAVING count(*) > 1)', { kind: 'evaluate' }),
    sql('SELECT EXISTS (SELECT count(*) FROM accounts)', { kind: 'evaluate' }),
    sql('SELECT EXISTS (SELECT 1 FROM accounts a JOIN countries c ON c.code = a.name)', { kind: 'evaluate' }),
    sql('SELECT EXISTS (SELECT 1 FROM accounts a WHERE a.name IN (SELECT name FROM accounts))', { kind: 'evaluate' }),
    // The outer query is more than one row of constants, or does more than take the answer: the same.
    sql("SELECT NOT EXISTS (SELECT 1 FROM accounts WHERE name = 'x')", { kind: 'evaluate' }),
    sql("SELECT EXISTS (SELECT 1 FROM accounts WHERE name = 'x') AND EXISTS (SELECT 1 FROM accounts WHERE name = 'y')", { kind: 'evaluate' }),
    sql("SELECT 1 WHERE EXISTS (SELECT 1 FROM accounts WHERE name = 'x') AND EXISTS (SELECT 1 FROM accounts WHERE name = 'y')", { kind: 'evaluate' }),
    sql("SELECT count(*) WHERE EXISTS (SELECT 1 FROM accounts WHERE name = 'x')", { kind: 'evaluate' }),
    sql("SELECT generate_series(1, 3) WHERE EXISTS (SELECT 1 FROM accounts WHERE name = 'x')", { kind: 'evaluate' }),
    sql("SELECT 1 FROM countries WHERE EXISTS (SELECT 1 FROM accounts WHERE name = 'x')", { kind: 'evaluate' }),
    sql("SELECT d.x FROM (VALUES (1), (2)) d (x) WHERE EXISTS (SELECT 1 FROM accounts WHERE name = 'x')", { kind: 'evaluate' }),
    sql("SELECT 1 WHERE EXISTS (SELECT 1 FROM accounts WHERE name = 'x') OFFSET 1", { kind: 'evaluate' }),
  ])
})

t.test('analyzed statements: a composite type is a type on every shard, not an unsharded table', async (t) => {
  await initSqlParser()
  check(t, [
    sql('CREATE TYPE pair AS (a int, b int)', { kind: 'broadcast', reason: /naming no table/ }),
    sql("CREATE TYPE mood AS ENUM ('sad', 'ok')", { kind: 'broadcast', reason: /naming no table/ }),
    sql('ALTER TYPE pair ADD ATTRIBUTE c text', { kind: 'broadcast', reason: /naming no table/ }),
    sql('ALTER TYPE pair RENAME ATTRIBUTE a TO x', { kind: 'broadcast', reason: /naming no table/ }),
    sql('DROP TYPE pair', { kind: 'broadcast', reason: /naming no table/ }),
    sql('ALTER TABLE logs RENAME COLUMN a TO b', { kind: 'shard', shard: 1 }),
  ])
})

t.test('analyzed statements: ON CONFLICT on a sharded table must name its sharding key', async (t) => {
  await initSqlParser()
  const leavesOut = /ON CONFLICT \(name\) on sharded table accounts leaves out its sharding key id: each shard checks only its own rows/
  check(t, [
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (name) DO NOTHING`, { kind: 'error', code: '0A000', message: leavesOut, hint: /include id, or look the row up by its key first/ }),
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (name) DO UPDATE SET name = excluded.name`, { kind: 'error', message: leavesOut }),
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (lower(name)) DO NOTHING`, { kind: 'error', message: /ON CONFLICT on an expression on sharded table accounts leaves out its sharding key id/ }),
    sql(`WITH w AS (INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (name) DO NOTHING RETURNING id) SELECT * FROM w`, { kind: 'error', message: leavesOut }),
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (name) DO NOTHING; SELECT 1`, { kind: 'error', message: leavesOut }),
    sql(`INSERT INTO orders (id, account_id) VALUES (1, ${K0}) ON CONFLICT (id) DO NOTHING`, { kind: 'error', message: /ON CONFLICT \(id\) on sharded table orders leaves out its sharding key account_id/ }),
    // The key in the target (alone, with other columns, or as the expression `(id)`): conflicting rows share the shard.
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (name, id) DO UPDATE SET name = excluded.name`, { kind: 'shard', shard: 0 }),
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT ((id), lower(name)) DO NOTHING`, { kind: 'shard', shard: 0 }),
    // No target, or a constraint by name: pgshard cannot see its columns (documented).
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT DO NOTHING`, { kind: 'shard', shard: 0 }),
    sql(`INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT ON CONSTRAINT accounts_name_key DO NOTHING`, { kind: 'shard', shard: 0 }),
    // Reference tables have every row on every shard; a shard hint asks for uniqueness on that shard.
    sql("INSERT INTO countries (code, name) VALUES ('fr', 'France') ON CONFLICT (name) DO NOTHING", { kind: 'broadcast' }),
    sql(`/* pgshard: shard=s0 */ INSERT INTO accounts (id, name) VALUES (${K0}, 'a') ON CONFLICT (name) DO NOTHING`, { kind: 'shard', shard: 0 }),
  ])
})

t.test('LOCK TABLE of sharded or reference tables: every shard in a READ ONLY transaction (pg_dump), refused in others', async (t) => {
  await initSqlParser()
  const lock = analyzeStatement('LOCK TABLE accounts, countries IN ACCESS SHARE MODE')
  const readOnly: RoutingContext = { inTransaction: true, txReadOnly: true, txShard: 0 }
  t.match(router.route(lock, none, readOnly), { kind: 'broadcast', role: 'replica', tag: 'first', reason: /^LOCK TABLE accounts, countries in a READ ONLY transaction: every shard$/ })
  t.equal((router.route(lock, none, readOnly) as { shards?: number[] }).shards, undefined, 'every shard, not some')
  t.match(router.route(lock, none, { ...readOnly, serializable: true }), { kind: 'broadcast', role: 'primary' }, 'SERIALIZABLE: the primaries')
  t.match(router.route(lock, none, { inTransaction: true, txReadOnly: false, txShard: 0 }), { kind: 'error', code: '0A000' }, 'a read-write transaction cannot take it on every shard')
  t.match(router.route(analyzeStatement('LOCK TABLE accounts, logs'), none, readOnly), { kind: 'error', code: '0A000', message: /unsharded table logs \(only on shard s1\)/ })
  t.match(router.route(analyzeStatement('LOCK TABLE logs'), none, { inTransaction: true, txReadOnly: true }), { kind: 'shard', shard: 1 }, 'an unsharded table: its shard alone')
})

t.test('two_phase: a read-write transaction may go on to other shards and write several, COPY FROM included', async (t) => {
  await initSqlParser()
  const twoPhase = new Router(map, new FunctionVolatility(config.routing), { crossShardTransactions: 'two_phase' })
  const tx: RoutingContext = { inTransaction: true, txReadOnly: false, txShard: 0 }
  const insert = `INSERT INTO accounts (id, name) VALUES (${K0}, 'a'), (${K1}, 'b')`
  check(t, [
    { name: 'a key on another shard: that shard joins, on its primary', plan: select([accounts], [pin(accounts, 'id', lit(K1))]), ctx: tx, expect: { kind: 'shard', shard: 1, role: 'primary' } },
    { name: 'a read of every shard, on the primaries', plan: select([accounts], [], { scatter: SCATTER }), ctx: tx, expect: { kind: 'scatter', role: 'primary' } },
    { name: 'a reference table write: every shard', plan: plan({ kind: 'update', tables: [countries], writtenTables: [countries] }), ctx: tx, expect: { kind: 'broadcast' } },
    { name: 'a multi-row INSERT across shards: split', plan: analyzeStatement(insert), ctx: tx, expect: { kind: 'split' } },
    { name: 'LOCK TABLE: every primary', plan: analyzeStatement('LOCK TABLE accounts'), ctx: tx, expect: { kind: 'broadcast', role: 'primary', reason: /two-phase transaction/ } },
    { name: 'COPY FROM STDIN into a sharded table: split by key, inside the transaction', plan: analyzeStatement('COPY accounts FROM STDIN'), ctx: tx, expect: { kind: 'copy_split' } },
    { name: 'binary COPY FROM STDIN too', plan: analyzeStatement('COPY accounts FROM STDIN (FORMAT binary)'), ctx: tx, expect: { kind: 'copy_split' } },
    { name: 'outside a transaction nothing changes', plan: select([accounts], [pin(accounts, 'id', lit(K1))]), expect: { kind: 'shard', shard: 1, role: 'replica' } },
  ], twoPhase)
  check(t, [
    { name: 'reject (the default): a read of another shard joins it', plan: select([accounts], [pin(accounts, 'id', lit(K1))]), ctx: tx, expect: { kind: 'shard', shard: 1 } },
    { name: 'reject: a write there after one here is refused', plan: plan({ kind: 'delete', tables: [accounts], writtenTables: [accounts], pins: [pin(accounts, 'id', lit(K1))] }), ctx: { ...tx, txWriter: 0 }, expect: { kind: 'error', code: '0A000', message: /cross-shard transactions are not supported/ } },
    { name: 'reject: the multi-row INSERT is refused', plan: analyzeStatement(insert), ctx: tx, expect: { kind: 'error', code: '0A000' } },
    { name: 'reject: COPY FROM in a transaction is refused', plan: analyzeStatement('COPY accounts FROM STDIN'), ctx: tx, expect: { kind: 'error', code: '0A000', message: /unless sharding.cross_shard_transactions is two_phase/ } },
  ])
})

t.test('VACUUM and ANALYZE of sharded or reference tables: every shard; VACUUM and CONCURRENTLY outside a transaction block', async (t) => {
  await initSqlParser()
  const vacuum = analyzeStatement('VACUUM ANALYZE accounts')
  t.match(router.route(vacuum, none, NO_TX), { kind: 'broadcast', role: 'primary' }, 'VACUUM of a sharded table: every shard (refused before as a write without its key)')
  t.equal(vacuum.outsideTransactionBlock, true, 'VACUUM cannot run inside BEGIN: each shard runs it without one')
  t.equal(vacuum.commandTag, 'VACUUM')
  const analyze = analyzeStatement('ANALYZE countries')
  t.match(router.route(analyze, none, NO_TX), { kind: 'broadcast' }, 'ANALYZE of a reference table: every shard')
  t.equal(analyze.commandTag, 'ANALYZE')
  t.notOk(analyze.outsideTransactionBlock, 'ANALYZE may run in a transaction block')
  t.match(router.route(analyzeStatement('VACUUM'), none, NO_TX), { kind: 'broadcast', reason: /naming no table/ }, 'the whole database: every shard')
  t.match(router.route(analyzeStatement('VACUUM logs'), none, NO_TX), { kind: 'shard', shard: 1 }, 'an unsharded table: its shard')
  for (const sql of ['CREATE INDEX CONCURRENTLY i ON accounts (name)', 'DROP INDEX CONCURRENTLY i', 'REINDEX TABLE CONCURRENTLY accounts']) {
    t.equal(analyzeStatement(sql).outsideTransactionBlock, true, sql)
  }
  for (const sql of ['CREATE INDEX i ON accounts (name)', 'DROP INDEX i', 'REINDEX TABLE accounts']) t.notOk(analyzeStatement(sql).outsideTransactionBlock, sql)
})

t.test('a query of several statements with an INSERT into a sharded table: where they all go, if one shard', async (t) => {
  await initSqlParser()
  const both = `INSERT INTO accounts (id, name) VALUES (${K0}, 'a'); UPDATE accounts SET name = 'b' WHERE id = ${K0}; SELECT 1`
  t.match(router.route(analyzeStatement(both), none, NO_TX), { kind: 'shard', shard: 0, reason: /every statement of the query \u2192 s0/ }, 'refused before: the INSERT alone routes')
  const apart = `INSERT INTO accounts (id, name) VALUES (${K0}, 'a'); INSERT INTO accounts (id, name) VALUES (${K1}, 'b')`
  t.match(router.route(analyzeStatement(apart), none, NO_TX), { kind: 'error', code: '0A000', message: /they do not go to one shard \(accounts\.id in VALUES \u2192 s0; accounts\.id in VALUES \u2192 s1\)/, hint: /a query of its own/ })
  t.match(router.route(analyzeStatement("INSERT INTO accounts (name) VALUES ('x'); SELECT 1"), none, NO_TX), { kind: 'error', code: '0A000', message: /must name its key column id/ }, 'a statement refused alone: its own reason')
})

t.test('a read of system catalogs only: the default shard, but in a transaction held on another shard, that one', async (t) => {
  await initSqlParser()
  const catalog = analyzeStatement("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid WHERE c.relname = 'accounts'")
  t.match(router.route(catalog, none, NO_TX), { kind: 'shard', shard: 1, catalog: true, reason: /system catalog .* only: shard s1/ }, 'the default shard (s1 here)')
  t.match(router.route(catalog, none, { inTransaction: true, txReadOnly: false, txShard: 2, serializable: true }), { kind: 'shard', shard: 2, catalog: true }, 'a transaction held on s2 (SERIALIZABLE) reads its catalog')
  t.match(router.route(catalog, none, { inTransaction: true, txReadOnly: false, txShard: 2 }), { kind: 'shard', shard: 1, catalog: true }, 'another read-write one reads the default shard’s, which joins it')
  t.match(router.route(catalog, none, { inTransaction: true, txReadOnly: true, txShard: 2 }), { kind: 'shard', shard: 1 }, 'one that may span shards (pg_dump’s) keeps to the default shard: oids differ between shards')
  t.match(router.route(analyzeStatement('SELECT * FROM information_schema.columns'), none, NO_TX), { catalog: true })
  t.notMatch(router.route(analyzeStatement('SELECT * FROM pg_class, logs'), none, NO_TX), { catalog: true }, 'with a table of the application’s: not a catalog read')
  t.notMatch(router.route(analyzeStatement('SELECT nextval(relname) FROM pg_class'), none, NO_TX), { catalog: true }, 'nor one calling a volatile function')
})

t.test('an INSERT that leaves out a key drawn from a sequence: keys are drawn, of the transaction\u2019s shard when it cannot leave it', async (t) => {
  await initSqlParser()
  const withSeq = ConfigSchema.parse({
    ...input,
    sharding: { ...input.sharding, tables: [{ name: 'customers', key: 'id', type: 'bigint', key_sequence: 'app.customers_seq' }, { name: 'users', key: 'id', type: 'uuid', key_uuid: true }, ...input.sharding!.tables!] },
  })
  const seqMap = new ShardMap(withSeq)
  const reject = new Router(seqMap, new FunctionVolatility(withSeq.routing))
  const twoPhase = new Router(seqMap, new FunctionVolatility(withSeq.routing), { crossShardTransactions: 'two_phase' })
  const insert = analyzeStatement('INSERT INTO customers (name) VALUES ($1), ($2) RETURNING id')
  const outside = reject.route(insert, none, NO_TX)
  t.match(outside, { kind: 'keys', key: 'id', from: { sequence: 'app.customers_seq', shard: 1 }, shard: undefined, oneShard: false, reason: /keys from sequence app\.customers_seq \(shard s1\), the shards of the keys/ })
  if (outside.kind === 'keys') {
    t.equal(outside.insert.rows.length, 2)
    t.same([K0, K1, K2].map((k) => outside.shardOf(k)), [0, 1, 2], 'keys placed by the map')
  }
  const held: RoutingContext = { inTransaction: true, txReadOnly: false, txShard: 2, txWriter: 2 }
  t.match(reject.route(insert, none, held), { kind: 'keys', shard: 2, oneShard: true }, 'a transaction that writes s2: keys of s2')
  t.match(reject.route(insert, none, { ...held, txWriter: undefined }), { kind: 'keys', shard: undefined, oneShard: true }, 'one that only read s2 so far: keys of any one shard')
  t.match(reject.route(insert, none, { ...held, txWriter: undefined, serializable: true }), { kind: 'keys', shard: 2, oneShard: true }, 'a SERIALIZABLE one held on s2: keys of s2')
  t.match(reject.route(insert, none, { inTransaction: true, txReadOnly: false }), { kind: 'keys', shard: undefined, oneShard: true }, 'its first statement: keys of one shard')
  t.match(twoPhase.route(insert, none, held), { kind: 'keys', shard: undefined, oneShard: false }, 'a two-phase transaction: anywhere')
  t.match(twoPhase.route(insert, none, { ...held, pinnedBy: 'a WITH HOLD cursor' }), { kind: 'keys', shard: 2, oneShard: true }, 'a pinned session: its shard')
  t.match(reject.route(analyzeStatement("INSERT INTO customers (id, name) VALUES (7, 'x')"), none, NO_TX), { kind: 'shard' }, 'a key given: routed by it')
  t.match(reject.route(analyzeStatement("INSERT INTO customers (id, name) VALUES (DEFAULT, 'x'), (DEFAULT, 'y')"), none, NO_TX), { kind: 'keys', keyIndex: 0, reason: /gives DEFAULT for id/ }, 'DEFAULT in every row: drawn')
  t.match(outside, { keyIndex: null }, 'left out: the column is added')
  const uuid = reject.route(analyzeStatement('INSERT INTO users (name) VALUES ($1) RETURNING id'), none, held)
  t.match(uuid, { kind: 'keys', from: 'uuid', shard: 2, oneShard: true, reason: /random UUIDs, keys of shard s2/ }, 'a uuid key pgshard makes')
  if (uuid.kind === 'keys') t.equal(uuid.shardOf('0E1B6C2A-9C1F-4B2E-8D3A-1F2E3D4C5B6A'), uuid.shardOf('0e1b6c2a9c1f4b2e8d3a1f2e3d4c5b6a'), 'placed as the canonical UUID')
  t.match(reject.route(analyzeStatement("INSERT INTO devices (name) VALUES ('x')"), none, NO_TX), { kind: 'error', hint: /key_uuid: true/ }, 'a uuid table without it: the hint names key_uuid')
  t.match(reject.route(analyzeStatement("INSERT INTO customers (name) VALUES ('x'); SELECT 1"), none, NO_TX), { kind: 'error', code: '0A000', message: /do not go to one shard \(INSERT into customers leaves out id: keys from sequence/ }, 'among other statements in one query: refused')
  t.match(reject.route(analyzeStatement('INSERT INTO customers DEFAULT VALUES RETURNING id'), none, NO_TX), { kind: 'keys', keyIndex: null }, 'DEFAULT VALUES (ActiveRecord, SQLAlchemy): the key is made')
  t.match(reject.route(analyzeStatement('INSERT INTO accounts DEFAULT VALUES'), none, NO_TX), { kind: 'error', code: '0A000', hint: /key_sequence/ }, 'DEFAULT VALUES into a table whose keys pgshard does not make: refused')
  t.match(reject.route(analyzeStatement("INSERT INTO customers VALUES (DEFAULT, 'x')"), none, NO_TX), { kind: 'error', code: '0A000', hint: /name the columns/ }, 'VALUES without a column list: told to name the columns')
  t.match(reject.route(analyzeStatement("INSERT INTO accounts (name) VALUES ('x')"), none, NO_TX), { kind: 'error', code: '0A000', hint: /key_sequence/ }, 'a table without one: refused, with a hint')
})

t.test('sequences are on every shard: their DDL and setval() go to every shard, nextval() to the default one', async (t) => {
  await initSqlParser()
  const everywhere = { kind: 'broadcast', tag: 'first' }
  check(t, [
    sql('CREATE SEQUENCE public.accounts_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1', everywhere),
    sql('ALTER SEQUENCE public.accounts_id_seq OWNED BY public.accounts.id', everywhere),
    sql('ALTER SEQUENCE logs_id_seq OWNER TO app', everywhere),
    sql('ALTER SEQUENCE logs_id_seq RENAME TO logs_seq', everywhere),
    sql('GRANT USAGE ON SEQUENCE logs_id_seq TO app', everywhere),
    sql('DROP SEQUENCE IF EXISTS logs_id_seq, other_seq', everywhere),
    sql("ALTER TABLE ONLY public.accounts ALTER COLUMN id SET DEFAULT nextval('public.accounts_id_seq'::regclass)", everywhere),
    sql("SELECT pg_catalog.setval('public.accounts_id_seq', 1000, true)", { ...everywhere, reason: /setval\(\): the sequence on every shard/ }),
    sql("SELECT nextval('logs_id_seq')", { kind: 'shard', shard: 1 }),
    sql('CREATE TABLE logs (id serial PRIMARY KEY)', { kind: 'shard', shard: 1 }),
    sql('GRANT SELECT ON logs TO app', { kind: 'shard', shard: 1 }),
  ])
})

t.test('an UPDATE or DELETE without a pinned key finds its rows\u2019 shards first, then goes to them', async (t) => {
  await initSqlParser()
  const inContext = (text: string, expect: Record<string, unknown>, ctx?: Partial<RoutingContext>): Case => ({ name: `${text} ${JSON.stringify(ctx ?? {})}`, plan: analyzeStatement(text), param: none, expect, ctx })
  check(t, [
    inContext("UPDATE accounts SET name = 'x' WHERE owner = 'y'", { kind: 'locate', probe: "SELECT 1 FROM accounts WHERE owner = 'y'\nLIMIT 1", reason: /the shards that hold its rows are found first/ }),
    inContext('DELETE FROM accounts AS a WHERE a.balance < $1 RETURNING a.id', { kind: 'locate', probe: 'SELECT 1 FROM accounts AS a WHERE a.balance < $1\nLIMIT 1' }),
    inContext("UPDATE accounts SET name = 'x' WHERE owner = 'y'", { kind: 'shard', shard: 2 }, { located: [2] }),
    inContext("UPDATE accounts SET name = 'x' WHERE owner = 'y'", { kind: 'error', code: '0A000', message: /has no condition on the sharding key id, and may change rows on shards s0, s2: a write without its key runs on one shard/, hint: /serial id of a sharded table repeats across shards/ }, { located: [0, 2] }),
    inContext("UPDATE accounts SET name = 'x' WHERE owner = 'y'", { kind: 'shard', shard: 1 }, { located: [] }),
    inContext(`UPDATE accounts SET id = ${K0} WHERE owner = 'y'`, { kind: 'error', message: /to a value owned by shard s0, but the statement runs on shard s2/ }, { located: [2] }),
    inContext("DELETE FROM accounts WHERE owner = 'y'", { kind: 'error', code: '0A000', message: /transaction writes shard s0; this statement may write shard s2/ }, { located: [2], inTransaction: true, txWriter: 0, txShard: 0 }),
    inContext('UPDATE events SET n = 1', { kind: 'broadcast', reason: /broadcast_writes, every shard/ }),
    // Joined to a reference table, each shard writes its own rows: on every shard, once the catalog says the write
    // names no row by a column each shard keeps unique (this router has read none).
    inContext("UPDATE accounts SET name = 'x' FROM countries c WHERE c.code = accounts.country", { kind: 'error', message: /a write on several shards is refused while pgshard has not read accounts in the shards' catalogs/ }),
    // Its rows found by each shard would take that shard's orders for the whole table: the subquery is read first.
    inContext("DELETE FROM accounts WHERE id IN (SELECT account_id FROM orders WHERE total > 5)", { kind: 'evaluate', subqueries: [{ form: 'in' }] }),
  ])
})

t.test('a write without its key found on several shards: each of them, unless it names rows by a column each shard keeps unique', async (t) => {
  await initSqlParser()
  const columns = new TableColumns()
  const read = Date.now()
  columns.load([{ table: { schema: 'public', name: 'orders' }, columns: ['id', 'account_id', 'status', 'total', 'code'], unique: ['id', 'code'] }], read)
  const withColumns = new Router(map, new FunctionVolatility(config.routing), { columns })
  const found = { located: [0, 2] }
  const at = (sql: string, ctx: Partial<RoutingContext> = found, r = withColumns) => r.route(analyzeStatement(sql), none, { ...NO_TX, ...ctx })
  t.match(at("UPDATE orders SET total = 0 WHERE status = 'x'"), { kind: 'broadcast', tag: 'sum', shards: [0, 2], reason: /touches shards s0, s2: the statement on each of them, all or nothing/ }, 'a bulk update by a column no shard keeps unique')
  t.match(at("DELETE FROM orders o WHERE o.status IN ('x', 'y') AND o.total > 3"), { kind: 'broadcast', shards: [0, 2] })
  const byUnique = /may change rows on shards s0, s2: a write without its key runs on one shard when it names rows by id, which each shard keeps unique on its own/
  t.match(at('DELETE FROM orders WHERE id = 5'), { kind: 'error', code: '0A000', message: byUnique, hint: /sharding\.made_columns draws it/ })
  t.match(at("UPDATE orders SET total = 1 WHERE status = 'x' AND code IN ('a', 'b')"), { kind: 'error', message: /names rows by code/ }, 'another unique column')
  const unknown = /a write without its key runs on one shard while pgshard has not read orders in the shards' catalogs since it, or an index on it, was made \(a read follows within seconds; RELOAD reads at once\)/
  t.match(at("UPDATE orders SET total = 1 WHERE status = 'x'", found, router), { kind: 'error', message: unknown }, 'a table the catalog does not know: refused')
  t.match(at('SELECT id FROM orders WHERE status = $1 LIMIT 1 FOR UPDATE'.replace('$1', "'x'")), { kind: 'error', message: /may lock rows on shards s0, s2/ }, 'a locking read: refused (each shard would lock its own first rows)')
  columns.forgetUnique([{ name: 'orders' }], read + 1)
  t.match(at("UPDATE orders SET total = 0 WHERE status = 'x'"), { kind: 'error', message: unknown }, 'after CREATE INDEX on it, until a read: refused')
  columns.load([{ table: { schema: 'public', name: 'orders' }, columns: ['id', 'account_id', 'status', 'total', 'code'], unique: ['id', 'code', 'status'] }], read + 2)
  t.match(at("UPDATE orders SET total = 0 WHERE status = 'x'"), { kind: 'error', message: /names rows by status/ }, 'a read showing the new unique index')
  const drawnConfig = ConfigSchema.parse({ ...input, sharding: { ...input.sharding, made_columns: [{ table: 'orders', column: 'id', sequence: 'orders_id_seq' }] } })
  const drawn = new Router(new ShardMap(drawnConfig), new FunctionVolatility(drawnConfig.routing), { columns })
  t.match(at('DELETE FROM orders WHERE id = 5', found, drawn), { kind: 'broadcast', shards: [0, 2] }, 'ids pgshard draws are unique across shards')
  columns.load([{ table: { schema: 'public', name: 'orders' }, columns: ['id', 'account_id', 'status', 'total', 'code'], unique: ['id'], uniqueExpressions: true }], read + 3)
  t.match(at("UPDATE orders SET total = 0 WHERE status = 'x'"), { kind: 'error', message: /when a unique index of orders is over an expression or part of its rows/ }, 'a unique index over lower(email) or partial: refused')
})

t.test('made_columns: an INSERT that leaves out a drawn column gets its values first, on any table it lists', async (t) => {
  await initSqlParser()
  const drawnConfig = ConfigSchema.parse({
    ...input,
    sharding: { ...input.sharding, made_columns: [{ table: 'orders', column: 'id', sequence: 'orders_id_seq' }, { table: 'countries', column: 'id', sequence: 'countries_id_seq' }] },
  })
  const r = new Router(new ShardMap(drawnConfig), new FunctionVolatility(drawnConfig.routing))
  const route = (sql: string, ctx: RoutingContext = NO_TX) => r.route(analyzeStatement(sql), none, ctx)
  t.match(route(`INSERT INTO orders (account_id, total) VALUES (${K0}, 1), (${K2}, 2)`), { kind: 'keys', key: 'id', keyIndex: null, places: false, oneShard: false, from: { sequence: 'orders_id_seq', shard: 1 }, reason: /leaves out id: values from sequence orders_id_seq \(shard s1\)/ })
  t.match(route(`INSERT INTO orders (id, account_id) VALUES (DEFAULT, ${K0})`), { kind: 'keys', key: 'id', keyIndex: 0, places: false })
  t.match(route(`INSERT INTO orders (id, account_id) VALUES (7, ${K0})`), { kind: 'shard', shard: 0 }, 'the id given: routed by the key as before')
  t.match(route("INSERT INTO countries (code) VALUES ('FR')"), { kind: 'keys', key: 'id', places: false }, 'a reference table')
  t.match(route("INSERT INTO countries (id, code) VALUES (3, 'FR')"), { kind: 'broadcast' })
  t.match(route(`INSERT INTO orders (account_id) VALUES (${K0})`, { inTransaction: true, txReadOnly: false, txShard: 0 }), { kind: 'keys', places: false, oneShard: false }, 'in a transaction: the values place nothing')
  t.match(route("INSERT INTO accounts (id, owner) VALUES (1, 'x')"), { kind: 'shard' }, 'a table without drawn columns')
})

t.test('a call of a user function whose body names a sharded table, from a statement naming none: refused', async (t) => {
  await initSqlParser()
  const volatility = new FunctionVolatility()
  volatility.loadCatalog([
    { proname: 'account_total', provolatile: 's', prokind: 'f', prosrc: 'SELECT sum(balance) FROM public.Accounts WHERE id = $1' },
    { proname: 'label_of', provolatile: 'i', prokind: 'f', prosrc: "SELECT 'accounts_' || $1" },
    { proname: 'lower', provolatile: 'i', prokind: 'f', prosrc: null },
  ])
  const r = new Router(map, volatility)
  const route = (sql: string) => r.route(analyzeStatement(sql), none, NO_TX)
  t.match(route('SELECT account_total(5)'), { kind: 'error', code: '0A000', message: /account_total\(\) reads sharded table accounts/ })
  t.match(route('SELECT code, account_total(1) FROM countries'), { kind: 'error', code: '0A000' }, 'a statement reading a reference table only')
  t.match(route(`SELECT account_total(id) FROM accounts WHERE id = ${K2}`), { kind: 'shard', shard: 2 }, 'a statement pinned to a key')
  t.match(route("SELECT label_of('x'), lower('Y')"), { kind: 'shard' }, 'a body naming accounts_ only as part of a word')
  t.match(route('/* pgshard: shard=s0 */ SELECT account_total(5)'), { kind: 'shard', shard: 0 }, 'a hint says where')
})

t.test('DDL naming sharded and unsharded tables: the refusal says what to do instead', async (t) => {
  await initSqlParser()
  const route = (sql: string) => router.route(analyzeStatement(sql), none, NO_TX)
  t.match(route('CREATE VIEW account_totals AS SELECT a.id, sum(o.total) FROM accounts a JOIN orders o ON o.account_id = a.id GROUP BY a.id'), { kind: 'broadcast', reason: /views over them/ })
  t.match(route('CREATE VIEW account_logs AS SELECT a.id, l.line FROM accounts a JOIN logs l ON l.account = a.id'), { kind: 'error', code: '0A000', hint: /a view over sharded tables is made on every shard, so it may read only sharded and reference tables and views over them: logs is only on shard s1/ })
  t.match(route('CREATE MATERIALIZED VIEW totals AS SELECT count(*) FROM accounts'), { kind: 'error', hint: /would hold one shard.s rows: query the tables themselves/ })
  t.match(route('CREATE TABLE totals AS SELECT count(*) FROM accounts'), { kind: 'error', hint: /would hold one shard.s rows/ })
  t.match(route('GRANT SELECT ON accounts, logs TO app'), { kind: 'error', hint: /in separate statements/ })
})

t.test('a foreign key declared as a parent joins like the keys, and carries a pinned key across', async (t) => {
  const parents = new ShardMap(
    ConfigSchema.parse(
      threeShardConfig({
        tables: [
          { name: 'orders', key: 'customer_id', type: 'bigint' },
          { name: 'lineitems', key: 'customer_id', type: 'bigint', parents: [{ column: 'order_id', table: 'orders', references: 'id' }] },
          { name: 'notes', key: 'customer_id', type: 'bigint' },
        ],
      }),
    ),
  )
  const r = new Router(parents)
  const routeOf = (sql: string) => r.route(analyzeStatement(sql), () => undefined, { inTransaction: false, txReadOnly: false })
  const home = parents.ring.shardFor('4')
  t.match(routeOf('SELECT li.id, o.number FROM lineitems li JOIN orders o ON li.order_id = o.id'), { kind: 'scatter' }, 'a join on the foreign key: every shard, merged')
  t.match(routeOf('SELECT o.id FROM orders o WHERE EXISTS (SELECT 1 FROM lineitems li WHERE li.order_id = o.id)'), { kind: 'scatter' }, 'a subquery tied on it')
  t.match(routeOf('SELECT o.id, count(li.id) FROM orders o LEFT JOIN lineitems li ON o.id = li.order_id WHERE o.customer_id = 4 GROUP BY o.id'), { kind: 'shard', shard: home }, 'the parent pinned: its shard')
  t.match(routeOf('SELECT o.id FROM lineitems li JOIN orders o ON o.id = li.order_id WHERE li.customer_id = 4'), { kind: 'shard', shard: home }, 'the child pinned: its shard')
  t.match(routeOf('SELECT li.id FROM lineitems li JOIN orders o ON li.id = o.id'), { kind: 'error', message: /not joined on its sharding key/ }, 'another column of the child: refused')
  t.match(routeOf('SELECT n.id FROM notes n JOIN orders o ON n.order_id = o.id'), { kind: 'error', message: /not joined on its sharding key/ }, 'a foreign key not declared: refused')
})
