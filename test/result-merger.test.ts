import t, { type Test } from 'tap'
import type { BoundParam } from '../src/router/Route.js'
import type { MergeExpr, OrderKey, OutputColumn, ScatterPlan } from '../src/router/StatementPlan.js'
import { createFold } from '../src/router/merge/AggregateFold.js'
import { DistinctValueBudget, DistinctValueFold } from '../src/router/merge/DistinctValueFold.js'
import { MergeError, ResultMerger, type ColumnInfo } from '../src/router/merge/ResultMerger.js'
import { formatFloat4, formatFloat8 } from '../src/router/merge/FloatText.js'
import { numericFromBinary, numericToBinary, numericToText, parseNumeric } from '../src/router/merge/NumericValue.js'

// Every expected value below is what Postgres 15 answers for the same query over the union of the shards'
// rows (checked with psql while writing these cases).

const OID = { bool: 16, int8: 20, int2: 21, int4: 23, text: 25, float4: 700, float8: 701, varchar: 1043, bpchar: 1042, date: 1082, timestamp: 1114, timestamptz: 1184, interval: 1186, timetz: 1266, inet: 869, numeric: 1700, uuid: 2950, jsonb: 3802 }

type Cell = string | null
const col = (name: string, typeOid: number, format: 0 | 1 = 0): ColumnInfo => ({ name, typeOid, format })
const value: OutputColumn = { kind: 'value' }
const agg = (fn: 'count' | 'sum' | 'min' | 'max' | 'bool_and' | 'bool_or'): OutputColumn => ({ kind: 'aggregate', fn })
const avg = (sumColumn: number, countColumn: number): OutputColumn => ({ kind: 'aggregate', fn: 'avg', sumColumn, countColumn })
const asc = (column: number, nullsFirst = false): OrderKey => ({ column, descending: false, nullsFirst })
const desc = (column: number, nullsFirst = true): OrderKey => ({ column, descending: true, nullsFirst })
const none = () => undefined

function scatter(p: Partial<ScatterPlan> & { columns: OutputColumn[] }): ScatterPlan {
  const sources = { relations: [{ name: 't' }], join: { relation: 0 }, equalities: [], nested: [], correlated: [], calls: [], distinctArgs: [], derived: [] }
  return { shardSql: '', visibleColumns: p.columns.length, groupBy: null, distinct: false, orderBy: [], limit: null, offset: null, having: null, sources, ...p }
}

/** Pushes the shards' rows interleaved (one from each in turn), ends them all, returns the rows as text. */
function run(plan: ScatterPlan, columns: ColumnInfo[], shards: Cell[][][], param: (n: number) => BoundParam | undefined = none): Cell[][] {
  const merger = new ResultMerger(plan, columns, shards.length, param)
  const out: (Buffer | null)[][] = []
  const longest = Math.max(0, ...shards.map((s) => s.length))
  for (let i = 0; i < longest; i++) {
    shards.forEach((rows, s) => {
      if (i < rows.length) merger.push(s, rows[i].map((c) => (c === null ? null : Buffer.from(c))))
      if (i === rows.length - 1) merger.end(s)
    })
    out.push(...merger.take())
  }
  shards.forEach((rows, s) => rows.length === 0 && merger.end(s))
  out.push(...merger.take())
  return out.map((r) => r.map((c) => (c === null ? null : c.toString())))
}

interface Case {
  name: string
  plan: ScatterPlan
  columns: ColumnInfo[]
  shards: Cell[][][]
  param?: (n: number) => BoundParam | undefined
  expect: Cell[][]
}

function check(t: Test, cases: Case[]): void {
  for (const c of cases) t.same(run(c.plan, c.columns, c.shards, c.param), c.expect, c.name)
}

const one = (...v: Cell[]) => v.map((x) => [x])

t.test('rows and ORDER BY', async (t) => {
  check(t, [
    {
      name: 'no ordering: every row passes',
      plan: scatter({ columns: [value] }),
      columns: [col('x', OID.int4)],
      shards: [one('1', '2'), one(), one('3')],
      expect: one('1', '3', '2'),
    },
    {
      name: 'ORDER BY int8',
      plan: scatter({ columns: [value], orderBy: [asc(0)] }),
      columns: [col('x', OID.int8)],
      shards: [one('-9223372036854775808', '5', '40'), one('7', '30'), one('6', '9223372036854775807')],
      expect: one('-9223372036854775808', '5', '6', '7', '30', '40', '9223372036854775807'),
    },
    {
      name: 'ORDER BY DESC: NULLs first',
      plan: scatter({ columns: [value], orderBy: [desc(0)] }),
      columns: [col('x', OID.int4)],
      shards: [one(null, '10', '2'), one('11', '3'), one(null)],
      expect: one(null, null, '11', '10', '3', '2'),
    },
    {
      name: 'ORDER BY ASC: NULLs last; ASC NULLS FIRST',
      plan: scatter({ columns: [value, value], orderBy: [asc(0), asc(1, true)] }),
      columns: [col('x', OID.int4), col('y', OID.int4)],
      shards: [[['1', null], ['1', '5'], [null, '1']], [['1', '2'], [null, null]]],
      expect: [['1', null], ['1', '2'], ['1', '5'], [null, null], [null, '1']],
    },
    {
      name: 'text in C collation (byte order)',
      plan: scatter({ columns: [value], orderBy: [asc(0)] }),
      columns: [col('x', OID.text)],
      shards: [one('', 'a', 'ab', 'é'), one('B', 'a ', 'b')],
      expect: one('', 'B', 'a', 'a ', 'ab', 'b', 'é'),
    },
    {
      name: 'numeric, with NaN above Infinity',
      plan: scatter({ columns: [value], orderBy: [asc(0)] }),
      columns: [col('x', OID.numeric)],
      shards: [one('-Infinity', '0.000', '10.5', 'NaN'), one('-3', '9.75', 'Infinity')],
      expect: one('-Infinity', '-3', '0.000', '9.75', '10.5', 'Infinity', 'NaN'),
    },
    {
      name: 'float8, NaN above everything, -0 = 0',
      plan: scatter({ columns: [value], orderBy: [asc(0)] }),
      columns: [col('x', OID.float8)],
      shards: [one('-Infinity', '0', '1e+300', 'NaN'), one('-1.5', '-0', 'Infinity')],
      expect: one('-Infinity', '-1.5', '0', '-0', '1e+300', 'Infinity', 'NaN'),
    },
    {
      name: 'timestamptz across daylight saving, a BC year, infinity',
      plan: scatter({ columns: [value], orderBy: [asc(0)] }),
      columns: [col('t', OID.timestamptz)],
      shards: [one('0044-03-15 12:53:28+00:53:28 BC', '2024-03-31 01:59:59.5+01', 'infinity'), one('2024-03-31 01:30:00+01', '2024-03-31 03:15:00+02')],
      expect: one('0044-03-15 12:53:28+00:53:28 BC', '2024-03-31 01:30:00+01', '2024-03-31 01:59:59.5+01', '2024-03-31 03:15:00+02', 'infinity'),
    },
    {
      name: 'date: -infinity, BC, years past 9999',
      plan: scatter({ columns: [value], orderBy: [asc(0)] }),
      columns: [col('d', OID.date)],
      shards: [one('-infinity', '2024-01-01', 'infinity'), one('0001-01-01 BC', '10000-01-01')],
      expect: one('-infinity', '0001-01-01 BC', '2024-01-01', '10000-01-01', 'infinity'),
    },
    {
      name: 'timestamp DESC',
      plan: scatter({ columns: [value], orderBy: [desc(0)] }),
      columns: [col('t', OID.timestamp)],
      shards: [one('2024-05-01 10:00:00', '2024-05-01 09:59:59.999999'), one('2024-05-01 10:00:00.5')],
      expect: one('2024-05-01 10:00:00.5', '2024-05-01 10:00:00', '2024-05-01 09:59:59.999999'),
    },
    {
      name: 'uuid and bool',
      plan: scatter({ columns: [value, value], orderBy: [asc(1), asc(0)] }),
      columns: [col('u', OID.uuid), col('b', OID.bool)],
      shards: [[['0fffffff-0000-0000-0000-000000000000', 'f'], ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 't']], [['10000000-0000-0000-0000-000000000000', 'f']]],
      expect: [['0fffffff-0000-0000-0000-000000000000', 'f'], ['10000000-0000-0000-0000-000000000000', 'f'], ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 't']],
    },
    {
      name: 'bpchar ignores trailing blanks',
      plan: scatter({ columns: [value], orderBy: [asc(0)] }),
      columns: [col('c', OID.bpchar)],
      shards: [one('a   ', 'ab  '), one('a b ')],
      expect: one('a   ', 'a b ', 'ab  '),
    },
    {
      name: 'ties keep the shard order',
      plan: scatter({ columns: [value, value], orderBy: [asc(0)] }),
      columns: [col('k', OID.int4), col('shard', OID.text)],
      shards: [[['1', 's0'], ['2', 's0']], [['1', 's1'], ['2', 's1']]],
      expect: [['1', 's0'], ['1', 's1'], ['2', 's0'], ['2', 's1']],
    },
    {
      name: 'ORDER BY a hidden column',
      plan: scatter({ columns: [value, value], visibleColumns: 1, orderBy: [desc(1)] }),
      columns: [col('name', OID.text), col('hidden', OID.int4)],
      shards: [[['x', '3'], ['y', '1']], [['z', '2']]],
      expect: one('x', 'z', 'y'),
    },
  ])
})

t.test('LIMIT and OFFSET', async (t) => {
  const shards = [one('1', '4', '7'), one('2', '5', '8'), one('3', '6', '9')]
  const ordered = (p: Partial<ScatterPlan>) => scatter({ columns: [value], orderBy: [asc(0)], ...p })
  check(t, [
    { name: 'LIMIT 4', plan: ordered({ limit: { literal: '4' } }), columns: [col('x', OID.int4)], shards, expect: one('1', '2', '3', '4') },
    { name: 'OFFSET 2 LIMIT 3', plan: ordered({ limit: { literal: '3' }, offset: { literal: '2' } }), columns: [col('x', OID.int4)], shards, expect: one('3', '4', '5') },
    { name: 'OFFSET past the end', plan: ordered({ offset: { literal: '20' } }), columns: [col('x', OID.int4)], shards, expect: [] },
    { name: 'LIMIT $1 (text parameter)', plan: ordered({ limit: { param: 1 } }), columns: [col('x', OID.int4)], shards, param: () => ({ value: '2', format: 0, typeOid: 0 }), expect: one('1', '2') },
    {
      name: 'LIMIT $1 (binary int8 parameter)',
      plan: ordered({ limit: { param: 1 } }),
      columns: [col('x', OID.int4)],
      shards,
      param: () => ({ value: Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), format: 1, typeOid: 20 }),
      expect: one('1'),
    },
    { name: 'LIMIT NULL is no limit', plan: ordered({ limit: { null: true } }), columns: [col('x', OID.int4)], shards, expect: one('1', '2', '3', '4', '5', '6', '7', '8', '9') },
    { name: 'LIMIT 0', plan: ordered({ limit: { literal: '0' } }), columns: [col('x', OID.int4)], shards, expect: [] },
    { name: 'LIMIT without ORDER BY', plan: scatter({ columns: [value], limit: { literal: '2' } }), columns: [col('x', OID.int4)], shards, expect: one('1', '2') },
  ])
  t.throws(() => new ResultMerger(ordered({ limit: { literal: '-1' } }), [col('x', OID.int4)], 2, none), { code: '2201W', message: /LIMIT must not be negative/ })
  t.throws(() => new ResultMerger(ordered({ offset: { literal: '-1' } }), [col('x', OID.int4)], 2, none), { code: '2201X' })
  t.throws(() => new ResultMerger(ordered({ limit: { param: 2 } }), [col('x', OID.int4)], 2, none), { code: '08P01' })
})

t.test('each shard\u2019s part of the answer: the rows OFFSET skipped and LIMIT kept, in its own order', async (t) => {
  const shares = (p: Partial<ScatterPlan>, shards: Cell[][][]) => {
    const m = new ResultMerger(scatter({ columns: [value], ...p }), [col('x', OID.int4)], shards.length, none)
    shards.forEach((rows, s) => {
      for (const r of rows) m.push(s, r.map((c) => (c === null ? null : Buffer.from(c))))
      m.end(s)
    })
    return m.rowShares().map((x) => [x.skipped, x.kept])
  }
  const shards = [one('1', '4', '7', '8'), one('2', '5'), one('3', '6', '9')]
  t.same(shares({ orderBy: [asc(0)], limit: { literal: '4' }, offset: { literal: '2' } }, shards), [[1, 1], [1, 1], [0, 2]], 'OFFSET 2 skips 1 and 2; LIMIT 4 keeps 3 to 6')
  t.same(shares({ orderBy: [desc(0)], limit: { literal: '3' } }, shards.map((rows) => [...rows].reverse())), [[0, 2], [0, 0], [0, 1]], 'DESC (each shard sends its rows so): 9, 8, 7')
  t.same(shares({ orderBy: [asc(0)], offset: { literal: '7' } }, shards), [[3, 1], [2, 0], [2, 1]], 'OFFSET alone keeps the rest')
  t.same(shares({ orderBy: [asc(0)], limit: { literal: '0' } }, shards), [[0, 0], [0, 0], [0, 0]], 'LIMIT 0')
  t.same(shares({ limit: { literal: '5' } }, [one('1', '2', '3'), one('4', '5', '6'), []]), [[0, 3], [0, 2], [0, 0]], 'unordered: the rows in the order they came')
  t.same(shares({ orderBy: [asc(0)], limit: { literal: '3' } }, [one('1', '1'), one('1')]), [[0, 2], [0, 1]], 'ties go to the lower shard first')
})

t.test('array_agg: the shards\u2019 arrays one after another, or merged by their elements; text and binary', async (t) => {
  const agg = (order?: { descending: boolean; nullsFirst: boolean; distinct?: true }) => scatter({ columns: [{ kind: 'aggregate', fn: 'array_agg', ...(order ? { order } : {}) }] })
  const text = [col('a', 1009)]
  check(t, [
    { name: 'unordered: put together', plan: agg(), columns: text, shards: [[['{a,"b c"}']], [[null]], [['{NULL,"x,y"}']]], expect: [['{a,"b c",NULL,"x,y"}']] },
    { name: 'sub-arrays stay whole', plan: agg(), columns: [col('a', 1007)], shards: [[['{{1,2},{3,4}}']], [['{{5,6}}']]], expect: [['{{1,2},{3,4},{5,6}}']] },
    { name: 'ordered text: quotes and backslashes read for the order, written as they came', plan: agg({ descending: false, nullsFirst: false }), columns: text, shards: [[['{"a b",z,NULL}']], [['{"a\\"q",b}']]], expect: [['{"a b","a\\"q",b,z,NULL}']] },
    { name: 'ordered integers, descending', plan: agg({ descending: true, nullsFirst: true }), columns: [col('a', 1016)], shards: [[['{9,4,1}']], [['{NULL,10,4}']]], expect: [['{NULL,10,9,4,4,1}']] },
    { name: 'no rows: NULL', plan: agg(), columns: text, shards: [[[null]], [[null]]], expect: [[null]] },
    { name: 'DISTINCT: one of equal values of several shards', plan: agg({ descending: false, nullsFirst: false, distinct: true }), columns: [col('a', 1231)], shards: [[['{1.0,2,NULL}']], [['{1.00,3,NULL}']]], expect: [['{1.0,2,3,NULL}']] },
  ])
  const binary = (values: (number | null)[]) => {
    const header = Buffer.alloc(20)
    header.writeInt32BE(1, 0)
    header.writeInt32BE(values.includes(null) ? 1 : 0, 4)
    header.writeUInt32BE(OID.int4, 8)
    header.writeInt32BE(values.length, 12)
    header.writeInt32BE(1, 16)
    return Buffer.concat([header, ...values.map((v) => (v === null ? Buffer.from([255, 255, 255, 255]) : Buffer.from([0, 0, 0, 4, ...[24, 16, 8, 0].map((s) => (v >>> s) & 255)])))])
  }
  const m = new ResultMerger(agg({ descending: false, nullsFirst: false }), [col('a', 1007, 1)], 2, none)
  m.push(0, [binary([3, 8])])
  m.push(1, [binary([null, 5])])
  m.end(0)
  m.end(1)
  t.same(m.take()[0]![0], binary([3, 5, 8, null]), 'binary: one header, the elements in order, the NULL flag set')
  t.throws(() => new ResultMerger(agg({ descending: false, nullsFirst: false }), [col('a', 3807)], 2, none), { code: '0A000' }, 'jsonb[] cannot be ordered')
})

t.test('string_agg: the merged array\u2019s values joined with the delimiter, as text or bytea', async (t) => {
  const agg = (delimiter: ScatterPlan['limit'], order?: { descending: boolean; nullsFirst: boolean }) =>
    scatter({ columns: [{ kind: 'aggregate', fn: 'string_agg', ...(delimiter ? { delimiter } : {}), ...(order ? { order } : {}) }] })
  check(t, [
    { name: 'put together, NULLs skipped', plan: agg({ literal: ', ' }), columns: [col('s', 1009)], shards: [[['{a,NULL}']], [['{"b c"}']]], expect: [['a, b c']] },
    { name: 'ordered', plan: agg({ literal: '|' }, { descending: false, nullsFirst: false }), columns: [col('s', 1009)], shards: [[['{b,d}']], [['{a,c}']]], expect: [['a|b|c|d']] },
    { name: 'a NULL delimiter joins with nothing', plan: agg({ null: true }), columns: [col('s', 1015)], shards: [[['{x}']], [['{y}']]], expect: [['xy']] },
    { name: 'bpchar loses its trailing spaces, as cast to text', plan: agg({ literal: ',' }, { descending: false, nullsFirst: false }), columns: [col('s', 1014)], shards: [[['{"ab "}']], [['{"c  "}']]], expect: [['ab,c']] },
    { name: 'bytea in hex', plan: agg({ literal: '\\x2c' }, { descending: false, nullsFirst: false }), columns: [col('s', 1001)], shards: [[['{"\\\\x01"}']], [['{"\\\\x02"}']]], expect: [['\\x012c02']] },
    { name: 'only NULLs: NULL', plan: agg({ literal: ',' }), columns: [col('s', 1009)], shards: [[['{NULL}']], [[null]]], expect: [[null]] },
  ])
  const m = new ResultMerger(agg({ param: 1 }), [col('s', 1009, 1)], 1, () => ({ value: Buffer.from(';'), format: 1, typeOid: 25 }))
  t.same(m.outputColumns()[0]!.typeOid, OID.text, 'described as text, not as the shards\u2019 text[]')
})

t.test('COALESCE(aggregate, constant): the values of the shards whose aggregate had one, else the constant they computed', async (t) => {
  const plan = scatter({ columns: [value, { kind: 'aggregate', fn: 'max', presentColumn: 2 }, value], groupBy: [0], visibleColumns: 2, orderBy: [asc(0)] })
  const columns = [col('g', OID.int4), col('m', OID.text), col('present', OID.bool)]
  check(t, [
    { name: 'a shard without a value adds nothing', plan, columns, shards: [[['1', 'zzz', 'f'], ['2', 'b', 't']], [['1', 'a', 't'], ['2', 'zzz', 'f']]], expect: [['1', 'a'], ['2', 'b']] },
    { name: 'no shard with a value: the constant', plan, columns, shards: [[['1', 'zzz', 'f']], [['1', 'zzz', 'f']], []], expect: [['1', 'zzz']] },
  ])
  const binary = new ResultMerger(scatter({ columns: [{ kind: 'aggregate', fn: 'sum', presentColumn: 1 }, value], visibleColumns: 1 }), [col('s', OID.int8), col('p', OID.bool, 1)], 2, none)
  binary.push(0, [Buffer.from('100'), Buffer.from([0])])
  binary.push(1, [Buffer.from('7'), Buffer.from([1])])
  binary.end(0)
  binary.end(1)
  t.same(binary.take().map((r) => r.map(String)), [['7']], 'the flag in binary')
  t.throws(() => new ResultMerger(scatter({ columns: [{ kind: 'aggregate', fn: 'sum', presentColumn: 1 }, value], visibleColumns: 1 }), [col('s', OID.int8), col('p', OID.int4)], 2, none), { code: 'XX000' })
})

t.test('ranking windows over rows: numbered as the ordered merge emits them, peers sharing rank, before OFFSET', async (t) => {
  const order = [desc(1, false)]
  const plan = scatter({
    columns: [value, value, value, value],
    orderBy: order,
    windows: [{ column: 2, fn: 'rank', partition: [], order }, { column: 3, fn: 'row_number', partition: [], order }],
    offset: { literal: '1' },
    limit: { literal: '4' },
  })
  const columns = [col('id', OID.int4), col('score', OID.int4), col('r', OID.int8), col('n', OID.int8)]
  // Each shard's own numbers, which the merge replaces.
  const shards = [[['1', '90', '1', '1'], ['2', '70', '2', '2']], [['3', '90', '1', '1'], ['4', '80', '2', '2'], ['5', '70', '3', '3']]]
  check(t, [{ name: 'global numbers', plan, columns, shards, expect: [['3', '90', '1', '2'], ['4', '80', '3', '3'], ['2', '70', '4', '4'], ['5', '70', '4', '5']] }])
})

t.test('window totals: every row gets the total of the shards\u2019 totals, once every shard told its own', async (t) => {
  const plan = (p: Partial<ScatterPlan>) => scatter({ columns: [value, value, value], totals: [{ column: 1, fn: 'count' }, { column: 2, fn: 'max' }], ...p })
  const columns = [col('id', OID.int4), col('total', OID.int8), col('top', OID.int4)]
  const shards = [[['1', '2', '7'], ['4', '2', '7']], [['2', '3', '9'], ['5', '3', '9'], ['6', '3', '9']], []]
  check(t, [
    { name: 'ordered, with OFFSET and LIMIT', plan: plan({ orderBy: [asc(0)], limit: { literal: '3' }, offset: { literal: '1' } }), columns, shards, expect: [['2', '5', '9'], ['4', '5', '9'], ['5', '5', '9']] },
    { name: 'unordered: rows wait for every shard\u2019s total', plan: plan({}), columns, shards, expect: [['1', '5', '9'], ['2', '5', '9'], ['4', '5', '9'], ['5', '5', '9'], ['6', '5', '9']] },
    { name: 'DISTINCT sees the merged totals', plan: plan({ distinct: true, columns: [value, value, value] }), columns, shards: [[['1', '2', '7']], [['1', '3', '7']]], expect: [['1', '5', '7']] },
  ])
  const m = new ResultMerger(plan({}), columns, 2, none)
  m.push(0, ['1', '2', '7'].map((v) => Buffer.from(v)))
  t.same(m.take(), [], 'nothing before the other shard told its total')
  m.end(1)
  t.same(m.take().map((r) => r.map(String)), [['1', '2', '7']], 'a shard without rows adds nothing')
  const binary = new ResultMerger(scatter({ columns: [value], totals: [{ column: 0, fn: 'count' }] }), [col('n', OID.int8, 1)], 2, none)
  const int8 = (n: number) => Buffer.from(BigInt(n).toString(16).padStart(16, '0'), 'hex')
  binary.push(0, [int8(40)])
  binary.push(1, [int8(2)])
  t.same(binary.take().map((r) => r[0]!.readBigInt64BE(0)), [42n, 42n], 'binary int8')
})

t.test('the ordered merge streams and stops at the LIMIT', async (t) => {
  const m = new ResultMerger(scatter({ columns: [value], orderBy: [asc(0)], limit: { literal: '3' } }), [col('x', OID.int4)], 3, none)
  m.push(0, [Buffer.from('1')])
  m.push(0, [Buffer.from('2')])
  t.same(m.take(), [], 'nothing until every shard has a row waiting')
  t.equal(m.buffered(0), 2, 'two rows held for shard 0')
  m.push(1, [Buffer.from('5')])
  t.same(m.take(), [], 'shard 2 has not answered yet')
  m.end(2)
  t.same(m.take().map((r) => String(r[0])), ['1', '2'], 'an ended shard no longer holds the merge back')
  t.equal(m.done, false)
  m.push(1, [Buffer.from('6')])
  m.push(0, [Buffer.from('3')])
  t.same(m.take().map((r) => String(r[0])), ['3'], 'the third row')
  t.equal(m.done, true, 'done at the LIMIT, before the shards end')
  m.push(1, [Buffer.from('7')])
  t.same(m.take(), [], 'rows after the LIMIT are dropped')
  t.equal(m.buffered(1), 0, 'and not kept')

  const unordered = new ResultMerger(scatter({ columns: [value] }), [col('x', OID.int4)], 2, none)
  unordered.push(1, [Buffer.from('9')])
  t.same(unordered.take().map((r) => String(r[0])), ['9'], 'unordered rows are ready at once')
  unordered.end(0)
  t.equal(unordered.done, false)
  unordered.end(1)
  t.equal(unordered.done, true, 'done when every shard has ended')
})

t.test('aggregates', async (t) => {
  check(t, [
    { name: 'count(*) adds up', plan: scatter({ columns: [agg('count')] }), columns: [col('count', OID.int8)], shards: [one('3'), one('0'), one('5')], expect: one('8') },
    { name: 'count over no rows at all is 0', plan: scatter({ columns: [agg('count')] }), columns: [col('count', OID.int8)], shards: [[], []], expect: one('0') },
    { name: 'sum(int) partials (int8) add exactly', plan: scatter({ columns: [agg('sum')] }), columns: [col('sum', OID.int8)], shards: [one('9007199254740993'), one('1'), one(null)], expect: one('9007199254740994') },
    { name: 'sum(numeric) keeps the largest scale', plan: scatter({ columns: [agg('sum')] }), columns: [col('sum', OID.numeric)], shards: [one('1.50'), one('2.5'), one(null)], expect: one('4.00') },
    { name: 'sum over only NULLs is NULL', plan: scatter({ columns: [agg('sum')] }), columns: [col('sum', OID.numeric)], shards: [one(null), one(null)], expect: one(null) },
    { name: 'sum(float8)', plan: scatter({ columns: [agg('sum')] }), columns: [col('sum', OID.float8)], shards: [one('0.1'), one('0.2')], expect: one('0.30000000000000004') },
    { name: 'sum(numeric) with Infinity', plan: scatter({ columns: [agg('sum')] }), columns: [col('sum', OID.numeric)], shards: [one('Infinity'), one('1')], expect: one('Infinity') },
    {
      name: 'min and max, type-aware',
      plan: scatter({ columns: [agg('min'), agg('max'), agg('min'), agg('max')] }),
      columns: [col('min', OID.numeric), col('max', OID.numeric), col('min', OID.text), col('max', OID.timestamptz)],
      shards: [[['10', '9.5', 'b', '2024-03-31 03:15:00+02']], [['9.75', '10.25', 'B', '2024-03-31 01:30:00+01']], [[null, null, null, null]]],
      expect: [['9.75', '10.25', 'B', '2024-03-31 03:15:00+02']],
    },
    {
      name: 'bool_and and bool_or',
      plan: scatter({ columns: [agg('bool_and'), agg('bool_or')] }),
      columns: [col('a', OID.bool), col('o', OID.bool)],
      shards: [[['t', 'f']], [['f', null]], [[null, 't']]],
      expect: [['f', 't']],
    },
    // avg: the visible column is computed from the hidden sum and count columns.
    { name: 'avg(int) of 1, 2', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.int8), col('c', OID.int8)], shards: [[[null, '1', '1']], [[null, '2', '1']]], expect: one('1.5000000000000000') },
    { name: 'avg(int) of 1, 1, 1', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.int8), col('c', OID.int8)], shards: [[[null, '2', '2']], [[null, '1', '1']]], expect: one('1.00000000000000000000') },
    { name: 'avg(int) of 1, 2, 2', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.int8), col('c', OID.int8)], shards: [[[null, '3', '2']], [[null, '2', '1']]], expect: one('1.6666666666666667') },
    { name: 'avg(int) of -7, 2', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.int8), col('c', OID.int8)], shards: [[[null, '-7', '1']], [[null, '2', '1']]], expect: one('-2.5000000000000000') },
    { name: 'avg(int) of 10000000, 20000000', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.int8), col('c', OID.int8)], shards: [[[null, '10000000', '1']], [[null, '20000000', '1']]], expect: one('15000000.000000000000') },
    { name: 'avg(int) of 99999, 1', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.int8), col('c', OID.int8)], shards: [[[null, '99999', '1']], [[null, '1', '1']]], expect: one('50000.000000000000') },
    { name: 'avg(int) of 0, 0', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.int8), col('c', OID.int8)], shards: [[[null, '0', '1']], [[null, '0', '1']]], expect: one('0.00000000000000000000') },
    { name: 'avg(int8) of 12345678901234, 1', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.numeric), col('c', OID.int8)], shards: [[[null, '12345678901234', '1']], [[null, '1', '1']]], expect: one('6172839450617.5000') },
    { name: 'avg(numeric) of 0.001, 0.002', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.numeric), col('c', OID.int8)], shards: [[[null, '0.001', '1']], [[null, '0.002', '1']]], expect: one('0.00150000000000000000') },
    { name: 'avg(numeric) of 0.5, 0.25, 0.125', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.numeric), col('c', OID.int8)], shards: [[[null, '0.75', '2']], [[null, '0.125', '1']]], expect: one('0.29166666666666666667') },
    { name: 'avg(numeric) of 1.50, 2.5, NULL', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.numeric), col('c', OID.int8)], shards: [[[null, '1.50', '1']], [[null, '2.5', '1']], [[null, null, '0']]], expect: one('2.0000000000000000') },
    { name: 'avg(float8) of 1.5, 2, 4', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.float8), col('s', OID.float8), col('c', OID.int8)], shards: [[[null, '3.5', '2']], [[null, '4', '1']]], expect: one('2.5') },
    { name: 'avg over no rows is NULL', plan: scatter({ columns: [avg(1, 2), agg('sum'), agg('count')], visibleColumns: 1 }), columns: [col('avg', OID.numeric), col('s', OID.int8), col('c', OID.int8)], shards: [[[null, null, '0']], [[null, null, '0']]], expect: one(null) },
  ])
})

t.test('GROUP BY, HAVING, DISTINCT', async (t) => {
  const grouped = (p: Partial<ScatterPlan>) => scatter({ columns: [value, agg('count'), agg('sum')], groupBy: [0], orderBy: [asc(0)], ...p })
  const cols = [col('g', OID.text), col('n', OID.int8), col('s', OID.numeric)]
  const shards: Cell[][][] = [
    [['a', '2', '10'], ['b', '1', '1.5'], [null, '1', null]],
    [['a', '1', '5'], ['c', '4', '0'], [null, '2', '7']],
    [['b', '3', '2.25']],
  ]
  check(t, [
    { name: 'groups merged across shards, NULLs in one group (last in ASC)', plan: grouped({}), columns: cols, shards, expect: [['a', '3', '15'], ['b', '4', '3.75'], ['c', '4', '0'], [null, '3', '7']] },
    { name: 'HAVING count(*) > 3', plan: grouped({ having: { op: 'compare', cmp: '>', left: { op: 'column', column: 1 }, right: { op: 'const', value: '3' } } }), columns: cols, shards, expect: [['b', '4', '3.75'], ['c', '4', '0']] },
    {
      name: 'HAVING sum(s) >= $1 (text parameter, numeric compare)',
      plan: grouped({ having: { op: 'compare', cmp: '>=', left: { op: 'column', column: 2 }, right: { op: 'param', param: 1 } } }),
      columns: cols,
      shards,
      param: () => ({ value: '7.0', format: 0, typeOid: 0 }),
      expect: [['a', '3', '15'], [null, '3', '7']],
    },
    {
      name: 'HAVING NOT (sum(s) < 5): a NULL sum is unknown, so no row for it',
      plan: grouped({
        having: { op: 'not', arg: { op: 'compare', cmp: '<', left: { op: 'column', column: 2 }, right: { op: 'const', value: '5' } } },
      }),
      columns: cols,
      shards: [[['x', '1', null], ['y', '1', '9']]],
      expect: [['y', '1', '9']],
    },
    {
      name: 'HAVING sum(s) IS NULL OR count(*) = 4',
      plan: grouped({
        having: {
          op: 'or',
          args: [
            { op: 'is_null', arg: { op: 'column', column: 2 }, negated: false },
            { op: 'compare', cmp: '=', left: { op: 'column', column: 1 }, right: { op: 'const', value: '4' } },
          ],
        },
      }),
      columns: cols,
      shards: [...shards, [['d', '1', null]]],
      expect: [['b', '4', '3.75'], ['c', '4', '0'], ['d', '1', null]],
    },
    {
      name: 'ORDER BY count DESC, g LIMIT 2',
      plan: grouped({ orderBy: [desc(1), asc(0)], limit: { literal: '2' } }),
      columns: cols,
      shards,
      expect: [['b', '4', '3.75'], ['c', '4', '0']],
    },
    {
      name: 'GROUP BY numeric: 1.0 and 1.00 are one group',
      plan: scatter({ columns: [value, agg('count')], groupBy: [0], orderBy: [asc(0)] }),
      columns: [col('v', OID.numeric), col('n', OID.int8)],
      shards: [[['1.0', '1'], ['2', '1']], [['1.00', '2']]],
      expect: [['1.0', '3'], ['2', '1']],
    },
    {
      name: 'GROUP BY with a hidden group column',
      plan: scatter({ columns: [agg('count'), value], visibleColumns: 1, groupBy: [1], orderBy: [asc(1)] }),
      columns: [col('n', OID.int8), col('k', OID.int4)],
      shards: [[['1', '1'], ['2', '2']], [['5', '1']]],
      expect: one('6', '2'),
    },
    {
      name: 'DISTINCT across shards (NULLs are one value)',
      plan: scatter({ columns: [value, value], distinct: true, orderBy: [asc(0), asc(1)] }),
      columns: [col('a', OID.int4), col('b', OID.text)],
      shards: [[['1', 'x'], ['1', null], ['2', 'y']], [['1', 'x'], ['1', null], ['3', 'z']]],
      expect: [['1', 'x'], ['1', null], ['2', 'y'], ['3', 'z']],
    },
    {
      name: 'DISTINCT without ORDER BY streams first occurrences',
      plan: scatter({ columns: [value], distinct: true }),
      columns: [col('a', OID.float8)],
      shards: [one('0', 'NaN', '1'), one('-0', 'NaN', '2')],
      expect: one('0', 'NaN', '1', '2'),
    },
    {
      name: 'DISTINCT then OFFSET',
      plan: scatter({ columns: [value], distinct: true, orderBy: [asc(0)], offset: { literal: '1' } }),
      columns: [col('a', OID.int4)],
      shards: [one('1', '2'), one('1', '2', '3')],
      expect: one('2', '3'),
    },
    {
      name: 'DISTINCT count values of groups',
      plan: scatter({ columns: [agg('count'), value], visibleColumns: 1, groupBy: [1], distinct: true, orderBy: [asc(0)] }),
      columns: [col('n', OID.int8), col('k', OID.text)],
      shards: [[['1', 'a'], ['2', 'b']], [['1', 'c'], ['1', 'b']]],
      expect: one('1', '3'),
    },
  ])
})

t.test('binary format columns', async (t) => {
  const i4 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeInt32BE(n)
    return b
  }
  const i8 = (n: bigint) => {
    const b = Buffer.alloc(8)
    b.writeBigInt64BE(n)
    return b
  }
  const m = new ResultMerger(
    scatter({ columns: [value, agg('count'), avg(3, 4), agg('sum'), agg('count'), agg('max')], visibleColumns: 4, groupBy: [0], orderBy: [asc(0)] }),
    [col('k', OID.int4, 1), col('n', OID.int8, 1), col('avg', OID.numeric, 1), col('s', OID.int8, 1), col('c', OID.int8, 1), col('m', OID.timestamptz, 1)],
    2,
    none,
  )
  t.same(m.outputColumns(), [col('k', OID.int4, 1), col('n', OID.int8, 1), col('avg', OID.numeric, 1), col('s', OID.int8, 1)], 'hidden columns removed')
  m.push(0, [i4(2), i8(1n), null, i8(4n), i8(1n), i8(100n)])
  m.push(0, [i4(-1), i8(2n), null, i8(3n), i8(2n), i8(50n)])
  m.push(1, [i4(2), i8(2n), null, i8(5n), i8(2n), i8(300n)])
  m.end(0)
  m.end(1)
  const rows = m.take()
  t.same(rows.map((r) => r[0]!.readInt32BE(0)), [-1, 2], 'int4 groups ordered')
  t.same(rows.map((r) => r[1]!.readBigInt64BE(0)), [2n, 3n], 'count re-encoded as binary int8')
  t.same(rows.map((r) => numericToText(numericFromBinary(r[2]!))), ['1.5000000000000000', '3.0000000000000000'], 'avg as binary numeric')
  t.equal(rows[0].length, 4, 'visible columns only')

  const f = new ResultMerger(scatter({ columns: [agg('sum')] }), [col('s', OID.float8, 1)], 2, none)
  const d = (x: number) => {
    const b = Buffer.alloc(8)
    b.writeDoubleBE(x)
    return b
  }
  f.push(0, [d(0.1)])
  f.push(1, [d(0.2)])
  f.end(0)
  f.end(1)
  t.equal(f.take()[0][0]!.readDoubleBE(0), 0.1 + 0.2, 'binary float8 sum')

  const u = new ResultMerger(scatter({ columns: [value], orderBy: [desc(0)] }), [col('u', OID.uuid, 1)], 2, none)
  u.push(0, [Buffer.from('0f000000000000000000000000000000', 'hex')])
  u.push(1, [Buffer.from('a0000000000000000000000000000000', 'hex')])
  u.end(0)
  u.end(1)
  t.same(u.take().map((r) => r[0]!.toString('hex').slice(0, 2)), ['a0', '0f'], 'binary uuid ordered by bytes')

  const n = new ResultMerger(scatter({ columns: [agg('sum')] }), [col('s', OID.numeric, 1)], 2, none)
  n.push(0, [numericToBinary(parseNumeric('12345678.9012')!)])
  n.push(1, [numericToBinary(parseNumeric('-0.0088')!)])
  n.end(0)
  n.end(1)
  t.equal(numericToText(numericFromBinary(n.take()[0][0]!)), '12345678.8924', 'binary numeric sum')
})

t.test('float text as Postgres prints it (extra_float_digits 1)', async (t) => {
  const f8: [number, string][] = [
    [1e20, '1e+20'], [1e15, '1e+15'], [1e14, '100000000000000'], [123456789012345.6, '123456789012345.6'], [0.0001, '0.0001'],
    [0.00001, '1e-05'], [1.5e-5, '1.5e-05'], [-0, '-0'], [NaN, 'NaN'], [-Infinity, '-Infinity'], [1e301, '1e+301'], [0.1 + 0.2, '0.30000000000000004'],
  ]
  for (const [x, text] of f8) t.equal(formatFloat8(x), text, `float8 ${text}`)
  const f4: [number, string][] = [
    [1e6, '1e+06'], [1e5, '100000'], [123456, '123456'], [1234567, '1.234567e+06'], [0.0001, '0.0001'], [0.00001, '1e-05'],
    [3.14159265, '3.1415927'], [1e-40, '1e-40'], [16777217, '1.6777216e+07'],
  ]
  for (const [x, text] of f4) t.equal(formatFloat4(x), text, `float4 ${text}`)
  t.same(run(scatter({ columns: [agg('sum')] }), [col('s', OID.float4)], [one('0.1'), one('0.2')]), one('0.3'), 'sum(float4) adds in single precision')
})

t.test('HAVING operands: binary parameters, boolean columns, untyped constants', async (t) => {
  const int8 = Buffer.alloc(8)
  int8.writeBigInt64BE(2n)
  const cases: [string, MergeExpr, (n: number) => BoundParam | undefined, Cell[][]][] = [
    ['count(*) = $1 (binary int8 parameter)', { op: 'compare', cmp: '=', left: { op: 'param', param: 1 }, right: { op: 'column', column: 1 } }, () => ({ value: int8, format: 1, typeOid: 20 }), [['a', '2', 't']]],
    ['count(*) <> $1 (binary parameter of unspecified type)', { op: 'compare', cmp: '<>', left: { op: 'column', column: 1 }, right: { op: 'param', param: 1 } }, () => ({ value: int8, format: 1, typeOid: 0 }), [['b', '1', 'f']]],
    ['bool_and(x) as the condition', { op: 'column', column: 2 }, none, [['a', '2', 't']]],
    ['count(*) > 1.5 (numeric constant)', { op: 'compare', cmp: '>', left: { op: 'column', column: 1 }, right: { op: 'const', value: '1.5' } }, none, [['a', '2', 't']]],
    ['10 > 9 (two constants compare as numbers)', { op: 'compare', cmp: '>', left: { op: 'const', value: '10' }, right: { op: 'const', value: '9' } }, none, [['a', '2', 't'], ['b', '1', 'f']]],
    ["'10' > '9' when one is not a number compares text", { op: 'compare', cmp: '>', left: { op: 'const', value: '10x' }, right: { op: 'const', value: '9' } }, none, []],
    ['NULL = NULL is unknown', { op: 'compare', cmp: '=', left: { op: 'const', value: null }, right: { op: 'const', value: null } }, none, []],
    ['x <= 1 AND NOT bool_and(x) IS NOT NULL', { op: 'and', args: [{ op: 'compare', cmp: '<=', left: { op: 'column', column: 1 }, right: { op: 'const', value: '1' } }, { op: 'is_null', arg: { op: 'column', column: 2 }, negated: true }] }, none, [['b', '1', 'f']]],
  ]
  for (const [name, having, param, expect] of cases) {
    const plan = scatter({ columns: [value, agg('count'), agg('bool_and')], groupBy: [0], orderBy: [asc(0)], having })
    t.same(run(plan, [col('g', OID.text), col('n', OID.int8), col('b', OID.bool)], [[['a', '1', 't'], ['b', '1', 'f']], [['a', '1', 't']]], param), expect, name)
  }
})

t.test('numeric binary form round-trips', async (t) => {
  for (const text of ['0', '0.000', '1', '-1', '10000', '0.0001', '123456789.987654321', '-0.5', '1e-20', 'NaN', 'Infinity', '-Infinity', '99999999999999999999.99']) {
    const v = parseNumeric(text)!
    t.equal(numericToText(numericFromBinary(numericToBinary(v))), numericToText(v), text)
  }
})

t.test('SELECT *: the star takes the width the shards describe', async (t) => {
  const star: OutputColumn = { kind: 'star' }
  check(t, [
    {
      name: 'concatenation of any width',
      plan: scatter({ columns: [star] }),
      columns: [col('id', OID.int8), col('name', OID.text), col('n', OID.int4)],
      shards: [[['1', 'a', '5']], [['2', 'b', null]]],
      expect: [['1', 'a', '5'], ['2', 'b', null]],
    },
    {
      name: 'ORDER BY a hidden key after the star, LIMIT',
      plan: scatter({ columns: [star, value], visibleColumns: 1, orderBy: [desc(1)], limit: { literal: '3' } }),
      columns: [col('id', OID.int8), col('name', OID.text), col('id', OID.int8)],
      shards: [[['9', 'i', '9'], ['4', 'd', '4']], [['7', 'g', '7'], ['5', 'e', '5'], ['1', 'a', '1']]],
      expect: [['9', 'i'], ['7', 'g'], ['5', 'e']],
    },
    {
      name: 'columns before the star keep their place; aggregates after it are counted from the end',
      plan: scatter({ columns: [value, star, avg(2, 4), value, agg('count')], visibleColumns: 3, groupBy: [3], orderBy: [asc(0)] }),
      columns: [col('k', OID.int4), col('a', OID.text), col('b', OID.text), col('avg', OID.int8), col('k', OID.int4), col('count', OID.int8)],
      shards: [[['1', 'x', 'y', '10', '1', '2']], [['1', 'x', 'y', '5', '1', '1'], ['2', 'u', 'v', '4', '2', '4']]],
      expect: [['1', 'x', 'y', '5.0000000000000000'], ['2', 'u', 'v', '1.00000000000000000000']],
    },
  ])
  const merger = new ResultMerger(scatter({ columns: [star, value], visibleColumns: 1 }), [col('a', OID.int4), col('b', OID.text), col('h', OID.int4)], 2, none)
  t.same(merger.outputColumns().map((c) => c.name), ['a', 'b'], 'the client sees the star\'s columns, not the hidden ones')
  t.throws(() => new ResultMerger(scatter({ columns: [value, star, value] }), [col('a', OID.int4)], 2, none), { code: 'XX000' }, 'fewer columns than the plan needs')
})

t.test('what cannot be merged is refused with a clear error', async (t) => {
  const refuse = (name: string, make: () => unknown, code: string, message: RegExp) => {
    try {
      make()
      t.fail(`${name}: accepted`)
    } catch (err) {
      t.ok(err instanceof MergeError, `${name}: a MergeError`)
      t.equal((err as MergeError).code, code, `${name}: ${code}`)
      t.match((err as Error).message, message, `${name}: message`)
      if (/values of inet/.test((err as Error).message)) t.match((err as MergeError).hint, /cast the column/, `${name}: the hint says what to do`)
    }
  }
  refuse('ORDER BY inet', () => new ResultMerger(scatter({ columns: [value], orderBy: [asc(0)] }), [col('i', OID.inet)], 2, none), '0A000', /cannot order values of inet/)
  refuse('sum(interval) beyond its range', () => run(scatter({ columns: [agg('sum')] }), [col('s', OID.interval)], [one('178956970 years'), one('1 year')]), '22008', /^interval out of range$/)
  refuse('sum(inet)', () => new ResultMerger(scatter({ columns: [agg('sum')] }), [col('s', OID.inet)], 2, none), '0A000', /add up sums/)
  refuse('avg(inet)', () => new ResultMerger(scatter({ columns: [avg(1, 2), value, agg('count')] }), [col('a', OID.inet), col('s', OID.inet), col('n', OID.int8)], 2, none), '0A000', /average values of inet/)
  refuse('DISTINCT inet', () => new ResultMerger(scatter({ columns: [value], distinct: true }), [col('i', OID.inet)], 2, none), '0A000', /deduplicate \(DISTINCT\) values of inet when merging results from several shards$/)
  refuse('GROUP BY inet', () => new ResultMerger(scatter({ columns: [value, agg('count')], groupBy: [0] }), [col('i', OID.inet), col('n', OID.int8)], 2, none), '0A000', /group values of inet/)
  refuse('avg without its hidden columns', () => new ResultMerger(scatter({ columns: [{ kind: 'aggregate', fn: 'avg' }] }), [col('a', OID.numeric)], 2, none), 'XX000', /hidden sum and count/)
  refuse('a column count that does not match the plan', () => new ResultMerger(scatter({ columns: [value, value] }), [col('a', OID.int4)], 2, none), 'XX000', /returned 1 columns/)
  const m = new ResultMerger(scatter({ columns: [value], orderBy: [asc(0)] }), [col('t', OID.timestamp)], 2, none)
  refuse('a row of the wrong width', () => m.push(0, [Buffer.from('x'), null]), '08P01', /row of 2 columns/)
  refuse('a shard that does not exist', () => m.push(5, [null]), 'XX000', /no shard 5/)
  refuse('a non-ISO DateStyle', () => m.push(0, [Buffer.from('05/01/2024 10:00:00')]), '0A000', /DateStyle ISO/)
  m.end(1)
  refuse('a row after the end', () => m.push(1, [null]), 'XX000', /after the end/)
  const overflow = new ResultMerger(scatter({ columns: [agg('sum')] }), [col('s', OID.int8)], 2, none)
  overflow.push(0, [Buffer.from('9223372036854775807')])
  overflow.push(1, [Buffer.from('1')])
  overflow.end(0)
  refuse('a sum beyond int8', () => overflow.end(1), '22003', /out of range/)
  // count(*)::int2 per shard: each shard's count fits, their total does not, as Postgres would say of the total.
  const smallCount = new ResultMerger(scatter({ columns: [agg('count')] }), [col('n', OID.int2)], 2, none)
  smallCount.push(0, [Buffer.from('30000')])
  smallCount.push(1, [Buffer.from('30000')])
  smallCount.end(0)
  refuse('a count cast to int2 beyond its range', () => smallCount.end(1), '22003', /smallint out of range/)
  const having: MergeExpr = { op: 'compare', cmp: '>', left: { op: 'column', column: 0 }, right: { op: 'const', value: 'many' } }
  const h = new ResultMerger(scatter({ columns: [agg('count')], having }), [col('n', OID.int8)], 1, none)
  h.push(0, [Buffer.from('1')])
  refuse('a HAVING constant of the wrong type', () => h.end(0), '22P02', /"many"/)
  t.same(new ResultMerger(scatter({ columns: [value] }), [col('j', OID.jsonb)], 1, none).outputColumns(), [col('j', OID.jsonb)], 'a jsonb column only passed through is fine')
})

t.test('DISTINCT ON: the first row of each key in the merged order, NULL keys alike, before OFFSET and LIMIT', async (t) => {
  // Each shard already kept its first row per grp (ORDER BY grp, price DESC): shard 0 and 1 both have grp 1.
  const plan = scatter({ columns: [value, value, value], visibleColumns: 1, distinctOn: 1, orderBy: [asc(1, true), desc(2, false)] })
  const columns = [col('id', OID.int4), col('grp', OID.int4), col('price', OID.numeric)]
  const shards: Cell[][][] = [
    [['10', null, '5'], ['11', '1', '9.50'], ['12', '3', '1']],
    [['20', null, '7'], ['21', '1', '12'], ['22', '2', '4']],
  ]
  check(t, [
    { name: 'the higher price of each grp, NULL grp first', plan, columns, shards, expect: one('20', '21', '22', '12') },
    { name: 'with OFFSET 1 LIMIT 2', plan: { ...plan, offset: { literal: '1' }, limit: { literal: '2' } }, columns, shards, expect: one('21', '22') },
  ])
})

t.test('count(DISTINCT x) of a column that is not a key: a shard row per value, each value counted once', async (t) => {
  const distinct = (distinctColumn: number): OutputColumn => ({ kind: 'aggregate', fn: 'count', distinctColumn })
  check(t, [
    {
      name: 'values on several shards count once; a row whose shard count is 0 (FILTER, NULL) does not count',
      plan: scatter({ columns: [distinct(2), agg('count'), value], visibleColumns: 2 }),
      columns: [col('count', OID.int8), col('count', OID.int8), col('x', OID.text)],
      shards: [
        [['1', '3', 'a'], ['1', '1', 'b'], ['0', '2', null]],
        [['1', '2', 'b'], ['0', '5', 'c'], ['1', '1', 'd']],
        [],
      ],
      expect: [['3', '14']],
    },
    {
      name: 'numeric values equal in value count once (1.0 and 1.00), per group; count(DISTINCT x)::int4',
      plan: scatter({ columns: [value, distinct(2), value], visibleColumns: 2, groupBy: [0], orderBy: [asc(0)] }),
      columns: [col('g', OID.int4), col('count', OID.int4), col('x', OID.numeric)],
      shards: [
        [['1', '1', '1.0'], ['1', '1', '2'], ['2', '1', '5']],
        [['1', '1', '1.00'], ['2', '1', '6'], ['2', '1', '5.000']],
      ],
      expect: [['1', '2'], ['2', '2']],
    },
    {
      name: 'no rows: 0 (the planner gives an aggregate without GROUP BY an empty list)',
      plan: scatter({ columns: [distinct(1), value], visibleColumns: 1, groupBy: [] }),
      columns: [col('count', OID.int8), col('x', OID.int4)],
      shards: [[], []],
      expect: [['0']],
    },
  ])
  t.throws(() => new ResultMerger(scatter({ columns: [distinct(1), value], visibleColumns: 1 }), [col('count', OID.int8), col('x', OID.inet)], 2, none), { code: '0A000', message: /aggregate DISTINCT values of inet/ }, 'a type the merge cannot compare is refused before a row')

  const budget = new DistinctValueBudget(2)
  const foldColumns = [col('count', OID.int8), col('x', OID.int4)]
  const folds = [0, 1].map(() => new DistinctValueFold(createFold('count', 0, foldColumns), foldColumns, { index: 0, isCount: true }, 1, budget))
  folds[0]!.add([Buffer.from('1'), Buffer.from('7')])
  folds[0]!.add([Buffer.from('1'), Buffer.from('7')])
  folds[1]!.add([Buffer.from('1'), Buffer.from('7')])
  t.throws(() => folds[1]!.add([Buffer.from('1'), Buffer.from('8')]), { code: '54000', message: /more than 2 distinct values/ }, 'the values every group of a merge holds are bounded')
})

t.test('percentile_cont, percentile_disc and mode: the rows of each value added up over the shards, read off in order', async (t) => {
  // Columns: the aggregate (as each shard computed it), count(x), the fraction, x; a shard row per (group, x).
  const ordered = (fn: 'percentile_cont' | 'percentile_disc' | 'mode', descending = false): OutputColumn => ({
    kind: 'aggregate', fn, orderedSet: { count: 1, ...(fn === 'mode' ? {} : { fraction: 2 }), value: 3, descending },
  })
  const plan = (fn: 'percentile_cont' | 'percentile_disc' | 'mode', descending = false) => scatter({ columns: [ordered(fn, descending), value, value, value], visibleColumns: 1, groupBy: [] })
  const ints = (out: number) => [col('p', out), col('count', OID.int8), col('f', OID.float8), col('x', OID.int4)]
  // Over the shards: 1, 1, 2, 4, 4, 10; a NULL x and a FILTERed-out value (count 0) are no rows.
  const shards = (f: Cell): Cell[][][] => [
    [['1', '2', f, '1'], ['4', '1', f, '4'], [null, '0', f, null]],
    [['2', '1', f, '2'], ['4', '1', f, '4'], ['9', '0', f, '9'], ['10', '1', f, '10']],
  ]
  check(t, [
    { name: 'percentile_cont(0.5): between the 3rd and 4th rows', plan: plan('percentile_cont'), columns: ints(OID.float8), shards: shards('0.5'), expect: [['3']] },
    { name: 'percentile_cont(0.5) DESC', plan: plan('percentile_cont', true), columns: ints(OID.float8), shards: shards('0.5'), expect: [['3']] },
    { name: 'percentile_cont(0.9): 4 + 0.5 × 6', plan: plan('percentile_cont'), columns: ints(OID.float8), shards: shards('0.9'), expect: [['7']] },
    { name: 'percentile_cont(1) and (0): the last and first rows', plan: plan('percentile_cont'), columns: ints(OID.float8), shards: shards('1'), expect: [['10']] },
    { name: 'percentile_disc(0.5): the 3rd row', plan: plan('percentile_disc'), columns: ints(OID.int4), shards: shards('0.5'), expect: [['2']] },
    { name: 'percentile_disc(0.51): the 4th', plan: plan('percentile_disc'), columns: ints(OID.int4), shards: shards('0.51'), expect: [['4']] },
    { name: 'percentile_disc(0): the first', plan: plan('percentile_disc', true), columns: ints(OID.int4), shards: shards('0'), expect: [['10']] },
    { name: 'a NULL fraction: NULL', plan: plan('percentile_cont'), columns: ints(OID.float8), shards: shards(null), expect: [[null]] },
    { name: 'mode: 1 and 4 are as frequent, the first in the order wins', plan: plan('mode'), columns: ints(OID.int4), shards: shards(null), expect: [['1']] },
    { name: 'mode DESC', plan: plan('mode', true), columns: ints(OID.int4), shards: shards(null), expect: [['4']] },
    { name: 'no rows: NULL', plan: plan('percentile_disc'), columns: ints(OID.int4), shards: [[], []], expect: [[null]] },
    {
      name: 'percentile_cont of numeric and float4 values, cast to float8 as Postgres casts them',
      plan: scatter({
        columns: [0, 1].map((k) => ({ kind: 'aggregate', fn: 'percentile_cont', orderedSet: { count: 2, fraction: 3, value: 4 + k, descending: false } }) as OutputColumn).concat([value, value, value, value]),
        visibleColumns: 2,
        groupBy: [],
      }),
      columns: [col('p', OID.float8), col('q', OID.float8), col('count', OID.int8), col('f', OID.float8), col('x', OID.numeric), col('y', OID.float4)],
      shards: [[['0.1', '0.1', '1', '0.5', '0.1', '0.1']], [['0.2', '0.2', '1', '0.5', '0.2', '0.2']]],
      expect: [['0.15000000000000002', '0.15000000223517418']],
    },
  ])
  t.throws(() => new ResultMerger(plan('percentile_disc'), [col('p', OID.inet), col('count', OID.int8), col('f', OID.float8), col('x', OID.inet)], 2, none), { code: '0A000', message: /percentile_disc\(\) of values of inet/ }, 'values the merge cannot order are refused before a row')
  const merger = new ResultMerger(plan('percentile_cont'), ints(OID.float8), 1, none)
  merger.push(0, ['1', '1', '1.5', '1'].map((c) => Buffer.from(c)))
  t.throws(() => merger.end(0), { code: '22003', message: 'percentile value 1.5 is not between 0 and 1' }, 'a fraction out of range, as Postgres says it')
})

t.test('sum and avg of DISTINCT x of a column that is not a key: each value folded once, 0 included', async (t) => {
  const sum: OutputColumn = { kind: 'aggregate', fn: 'sum', distinctColumn: 3 }
  const average: OutputColumn = { kind: 'aggregate', fn: 'avg', sumColumn: 1, countColumn: 2, distinctColumn: 3 }
  const count: OutputColumn = { kind: 'aggregate', fn: 'count', distinctColumn: 3 }
  // Columns: sum(DISTINCT x), sum(DISTINCT x) AS avg, count(DISTINCT x), x; a shard row per (group, x).
  const columns = [col('sum', OID.int8), col('avg', OID.int8), col('count', OID.int8), col('x', OID.int4)]
  check(t, [
    {
      name: 'a value on two shards adds once; 0 is a value; a FILTERed-out value (NULL sum, count 0) adds nothing',
      plan: scatter({ columns: [sum, average, count, value], visibleColumns: 2 }),
      columns,
      shards: [
        [['5', '5', '1', '5'], ['0', '0', '1', '0'], [null, null, '0', '9']],
        [['5', '5', '1', '5'], ['2', '2', '1', '2'], ['9', '9', '1', '9']],
      ],
      // Distinct values 0, 2, 5, 9 (the 9 from the second shard): sum 16, avg 4.
      expect: [['16', '4.0000000000000000']],
    },
    {
      name: 'no values at all: NULL, as Postgres',
      plan: scatter({ columns: [sum, average, count, value], visibleColumns: 2, groupBy: [] }),
      columns,
      shards: [[], []],
      expect: [[null, null]],
    },
  ])
  const numericColumns = [col('sum', OID.numeric), col('x', OID.numeric)]
  check(t, [
    {
      name: 'numeric values equal in value (1.0, 1.00) add once',
      plan: scatter({ columns: [{ kind: 'aggregate', fn: 'sum', distinctColumn: 1 }, value], visibleColumns: 1 }),
      columns: numericColumns,
      shards: [[['1.0', '1.0'], ['2.5', '2.5']], [['1.00', '1.00']]],
      expect: [['3.5']],
    },
  ])
})

t.test('ranking windows over merged groups: peers share rank and dense_rank, partitions number apart, NULLs order', async (t) => {
  // Columns: g, count(*), rank, dense_rank, row_number (PARTITION BY h), h.
  const plan = scatter({
    columns: [value, agg('count'), value, value, value, value],
    visibleColumns: 5,
    groupBy: [0],
    orderBy: [asc(0)],
    windows: [
      { column: 2, fn: 'rank', partition: [], order: [desc(1, false)] },
      { column: 3, fn: 'dense_rank', partition: [], order: [desc(1, false)] },
      { column: 4, fn: 'row_number', partition: [5], order: [asc(0, true)] },
    ],
  })
  const columns = [col('g', OID.text), col('count', OID.int8), col('rank', OID.int8), col('dense_rank', OID.int8), col('row_number', OID.int8), col('h', OID.int4)]
  check(t, [
    {
      name: 'counts merged first (a: 3, b: 3, c: 1, d: 5), then numbered; the shards\u2019 own numbers are replaced',
      plan,
      columns,
      shards: [
        [['a', '2', '9', '9', '9', '1'], ['b', '3', '9', '9', '9', '1'], ['d', '5', '9', '9', '9', null]],
        [['a', '1', '9', '9', '9', '1'], ['c', '1', '9', '9', '9', null]],
      ],
      expect: [
        ['a', '3', '2', '2', '1'],
        ['b', '3', '2', '2', '2'],
        ['c', '1', '4', '3', '1'],
        ['d', '5', '1', '1', '2'],
      ],
    },
    { name: 'no groups: no rows', plan, columns, shards: [[], []], expect: [] },
  ])
  t.throws(() => new ResultMerger(plan, columns.map((c, i) => (i === 2 ? col('rank', OID.text) : c)), 2, none), { code: 'XX000' }, 'a window column the shards do not describe as an integer is an error before any row')
})
