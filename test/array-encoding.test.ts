import t from 'tap'
import { decodeFloat8Array, encodeArray, textElements, unquoted } from '../src/router/merge/ArrayEncoding.js'

t.test('an array the merge makes is quoted as array_out quotes it', async (t) => {
  const text = encodeArray([Buffer.from('a b'), Buffer.from(''), null, Buffer.from('NULL'), Buffer.from('x"y\\z'), Buffer.from('plain')], 25, 0)
  t.equal(text.toString(), '{"a b","",NULL,"NULL","x\\"y\\\\z",plain}')
  t.same(textElements(text).map((e) => (e === null ? null : unquoted(e).toString())), ['a b', '', null, 'NULL', 'x"y\\z', 'plain'], 'and read back item by item')
  const binary = encodeArray([Buffer.from([0, 0, 0, 7]), null], 23, 1)
  t.same([binary.readInt32BE(0), binary.readInt32BE(4), binary.readUInt32BE(8), binary.readInt32BE(12), binary.readInt32BE(16)], [1, 1, 23, 2, 1], 'binary: one dimension, a NULL, its element type, 2 elements from 1')
  t.same(encodeArray([], 701, 1).readInt32BE(0), 0, 'an empty array has no dimension')
})

t.test('the fractions the shards answer, text or binary; malformed ones are an error, not a crash', async (t) => {
  t.same(decodeFloat8Array(Buffer.from('{0.5,NULL,0.99}'), 0), [0.5, null, 0.99])
  t.same(decodeFloat8Array(Buffer.from('{}'), 0), [])
  const binary = Buffer.alloc(20 + 12 + 4)
  binary.writeInt32BE(1, 0)
  binary.writeInt32BE(1, 4)
  binary.writeUInt32BE(701, 8)
  binary.writeInt32BE(2, 12)
  binary.writeInt32BE(1, 16)
  binary.writeInt32BE(8, 20)
  binary.writeDoubleBE(0.25, 24)
  binary.writeInt32BE(-1, 32)
  t.same(decodeFloat8Array(binary, 1), [0.25, null])
  t.throws(() => decodeFloat8Array(binary.subarray(0, 28), 1), { code: '22P03' }, 'cut short')
  t.throws(() => decodeFloat8Array(Buffer.from('{{0.5},{0.9}}'), 0), { code: '0A000' }, 'two dimensions')
  t.throws(() => decodeFloat8Array(Buffer.from('0.5'), 0), { code: '22P02' }, 'not an array')
})
