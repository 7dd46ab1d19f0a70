// `key = ANY(array)`, the way pgx, node-postgres users and ORMs ask for a set of keys: the array's elements pin
// the shards, whether the array is a parameter (text or binary) or a literal.
import t from 'tap'
import { arrayElements } from '../src/router/ArrayValue.js'

t.test('array values in text form', async (t) => {
  const texts = (s: string) => arrayElements({ value: s, format: 0, typeOid: 0 })?.map((e) => e.value)
  t.same(texts('{1,42,-7}'), ['1', '42', '-7'])
  t.same(texts('{ "a b" , NULL, "NULL", "q\\"uote", c\\,d }'), ['a b', null, 'NULL', 'q"uote', 'c,d'], 'quotes, NULL, escapes')
  t.same(texts('[0:1]={{1,2},{3,4}}'), ['1', '2', '3', '4'], 'bounds and nested arrays: every element')
  t.same(texts('{}'), [])
  t.equal(texts('not an array'), undefined)
  t.equal(texts('{"unterminated'), undefined)
})

t.test('array values in binary form (int8 elements, a NULL)', async (t) => {
  const header = Buffer.alloc(20)
  header.writeInt32BE(1, 0)
  header.writeInt32BE(1, 4)
  header.writeUInt32BE(20, 8)
  header.writeInt32BE(3, 12)
  header.writeInt32BE(1, 16)
  const el = (n: bigint) => {
    const b = Buffer.alloc(12)
    b.writeInt32BE(8, 0)
    b.writeBigInt64BE(n, 4)
    return b
  }
  const nul = Buffer.alloc(4)
  nul.writeInt32BE(-1, 0)
  const parsed = arrayElements({ value: Buffer.concat([header, el(1n), nul, el(42n)]), format: 1, typeOid: 1016 })!
  t.same(parsed.map((e) => (e.value === null ? null : (e.value as Buffer).readBigInt64BE(0))), [1n, null, 42n])
  t.ok(parsed.every((e) => e.format === 1 && e.typeOid === 20), 'each element keeps the element type')
  t.equal(arrayElements({ value: Buffer.concat([header, el(1n)]), format: 1, typeOid: 1016 }), null, 'a short array is unreadable')
})
