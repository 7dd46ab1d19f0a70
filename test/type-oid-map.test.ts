// TypeOidMap rewrites the type OIDs of the messages that carry them: a shard's own numbers become the default
// shard's in descriptions, and the other way round in a Parse's parameter types. Everything else stays as it was.
import t from 'tap'
import { parseTail } from '../src/protocol/FrontendMessages.js'
import { rowDescription } from '../src/protocol/ServerMessages.js'
import { TypeOidMap } from '../src/protocol/TypeOidMap.js'

const map = new TypeOidMap()
map.replace([[16388, 16395], [16387, 16394], [16500, 16500]])

t.test('pairs that differ are kept; an empty map translates nothing', async (t) => {
  t.equal(map.empty, false)
  t.same([map.clientOid(16388), map.clientOid(16500), map.clientOid(25)], [16395, 16500, 25])
  t.same([map.serverOid(16395), map.serverOid(16388)], [16388, 16388])
  const none = new TypeOidMap()
  none.replace([[16500, 16500]])
  t.equal(none.empty, true, 'equal numbers make no pair')
  const tail = parseTail('SELECT $1', [16395])
  t.equal(none.parseTail(tail), tail, 'the same buffer back')
})

t.test('RowDescription: only the type OID of each field changes', async (t) => {
  const fields = [
    { name: 'mood', tableOid: 16388, columnAttr: 2, typeOid: 16388, typeSize: 4, typeModifier: -1, format: 1 },
    { name: 'n', tableOid: 16388, columnAttr: 3, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
    { name: 'moods', tableOid: 16388, columnAttr: 4, typeOid: 16387, typeSize: -1, typeModifier: -1, format: 0 },
  ]
  const body = rowDescription(fields).subarray(5)
  const want = rowDescription(fields.map((f) => ({ ...f, typeOid: f.typeOid === 16388 ? 16395 : f.typeOid === 16387 ? 16394 : f.typeOid })))
  t.same(map.rowDescription(Buffer.from(body)), want.subarray(5), 'mood and mood[] renumbered; the table OID (16388 too) left alone')
  const truncated = Buffer.from(body.subarray(0, 10))
  t.same(map.rowDescription(Buffer.from(truncated)), truncated, 'a truncated body is left as it is')
})

t.test('ParameterDescription and a Parse tail', async (t) => {
  const params = Buffer.from([0, 3, 0, 0, 0x40, 0x04, 0, 0, 0, 23, 0, 0, 0x40, 0x03])
  const out = map.paramDescription(Buffer.from(params))
  t.same([out.readInt32BE(2), out.readInt32BE(6), out.readInt32BE(10)], [16395, 23, 16394])
  const tail = parseTail('SELECT $1, $2, $3', [16395, 0, 20])
  const server = map.parseTail(tail)
  t.not(server, tail, 'a copy: the client\u2019s tail is shared')
  t.same(server, parseTail('SELECT $1, $2, $3', [16388, 0, 20]))
  t.same(tail, parseTail('SELECT $1, $2, $3', [16395, 0, 20]), 'the original unchanged')
})

t.test('fields a merge decoded keep the shard\u2019s number beside the client\u2019s', async (t) => {
  const f = map.fields([{ name: 'mood', typeOid: 16388 }, { name: 'n', typeOid: 23 }])
  t.same(f, [{ name: 'mood', typeOid: 16395, serverTypeOid: 16388 }, { name: 'n', typeOid: 23 }])
})
