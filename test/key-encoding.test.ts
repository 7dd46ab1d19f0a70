import t from 'tap'
import { canonicalKey, KeyEncodingError, parseUuid, type KeyType } from '../src/router/KeyEncoding.js'
import { numericToBinary, parseNumeric } from '../src/router/merge/NumericValue.js'

const INT2 = 21
const INT4 = 23
const INT8 = 20
const TEXT = 25
const VARCHAR = 1043
const NUMERIC = 1700
const FLOAT8 = 701
const UUID = 2950

function int16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeInt16BE(n)
  return b
}
function int32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}
function int64(n: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigInt64BE(n)
  return b
}
function numericBinary(text: string): Buffer {
  return numericToBinary(parseNumeric(text)!)
}

type Case = [what: string, type: KeyType, value: string | Buffer, format: 0 | 1, oid: number, expected: string]

t.test('every spelling of a key value has one canonical form', async (t) => {
  const cases: Case[] = [
    ['plain integer', 'bigint', '42', 0, 0, '42'],
    ['leading zeros', 'bigint', '042', 0, 0, '42'],
    ['surrounding spaces (int8in allows them)', 'bigint', ' 42 \t', 0, 0, '42'],
    ['plus sign', 'bigint', '+42', 0, 0, '42'],
    ['negative zero', 'bigint', '-0', 0, 0, '0'],
    ['negative', 'integer', '-17', 0, INT4, '-17'],
    ['int64 minimum', 'bigint', '-9223372036854775808', 0, INT8, '-9223372036854775808'],
    ['int64 maximum', 'bigint', '9223372036854775807', 0, 0, '9223372036854775807'],
    ['text bytes of a Bind', 'bigint', Buffer.from('0042'), 0, 0, '42'],
    ['binary int2', 'bigint', int16(42), 1, INT2, '42'],
    ['binary int4', 'integer', int32(-42), 1, INT4, '-42'],
    ['binary int8', 'bigint', int64(12345678901n), 1, INT8, '12345678901'],
    ['binary int8 minimum', 'bigint', int64(-(2n ** 63n)), 1, INT8, '-9223372036854775808'],
    ['binary of unspecified type: width says int4', 'bigint', int32(42), 1, 0, '42'],
    ['binary of unspecified type: width says int8', 'integer', int64(42n), 1, 0, '42'],
    ['binary text-typed value for an integer key', 'bigint', Buffer.from('42'), 1, TEXT, '42'],
    ['numeric text with zero fraction', 'bigint', '42.000', 0, NUMERIC, '42'],
    ['binary numeric', 'bigint', numericBinary('12345678901234'), 1, NUMERIC, '12345678901234'],
    ['binary numeric with a scale', 'bigint', numericBinary('-7.00'), 1, NUMERIC, '-7'],
    ['uuid upper case with dashes', 'uuid', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 0, 0, 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['uuid in braces', 'uuid', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', 0, UUID, 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['uuid without dashes', 'uuid', 'a0eebc999c0b4ef8bb6d6bb9bd380a11', 0, 0, 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['uuid with a dash after every 4 digits', 'uuid', 'a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11', 0, 0, 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['uuid in braces without dashes', 'uuid', '{A0EEBC999C0B4EF8BB6D6BB9BD380A11}', 0, 0, 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['binary uuid', 'uuid', Buffer.from('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'hex'), 1, UUID, 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['binary uuid of unspecified type', 'uuid', Buffer.from('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'hex'), 1, 0, 'a0eebc999c0b4ef8bb6d6bb9bd380a11'],
    ['text as is (case and spaces kept)', 'text', 'Alice ', 0, 0, 'Alice '],
    ['text leading zeros kept', 'text', '042', 0, VARCHAR, '042'],
    ['text from UTF-8 bytes', 'text', Buffer.from('Zoë 北京'), 0, 0, 'Zoë 北京'],
    ['binary text', 'text', Buffer.from('Zoë'), 1, VARCHAR, 'Zoë'],
    ['binary int4 for a text key reads as its decimal', 'text', int32(42), 1, INT4, '42'],
  ]
  for (const [what, type, value, format, oid, expected] of cases) {
    t.equal(canonicalKey(type, value, format, oid), expected, what)
  }
})

t.test('bad key values are refused with the SQLSTATE Postgres would use', async (t) => {
  const cases: [what: string, type: KeyType, value: string | Buffer, format: 0 | 1, oid: number, code: string, mentions: string][] = [
    ['a word for an integer key', 'bigint', 'abc', 0, 0, '22P02', '"abc"'],
    ['a decimal for an integer key', 'integer', '4.2', 0, 0, '22P02', 'integer'],
    ['an exponent (int8in refuses it)', 'bigint', '1e3', 0, 0, '22P02', '"1e3"'],
    ['an empty string', 'bigint', '', 0, 0, '22P02', 'bigint'],
    ['a space inside the number', 'bigint', '- 1', 0, 0, '22P02', '"- 1"'],
    ['above int64', 'bigint', '9223372036854775808', 0, 0, '22003', 'out of range'],
    ['below int64', 'integer', '-9223372036854775809', 0, 0, '22003', 'out of range'],
    ['numeric with a fraction', 'bigint', '42.5', 0, NUMERIC, '22P02', '42.5'],
    ['binary numeric with a fraction', 'bigint', numericBinary('1.5'), 1, NUMERIC, '22P02', 'not an integer'],
    ['binary of 3 bytes', 'bigint', Buffer.from([1, 2, 3]), 1, 0, '22P03', '3 bytes'],
    ['binary float8 for an integer key', 'bigint', Buffer.alloc(8), 1, FLOAT8, '42804', 'float8'],
    ['uuid one digit short', 'uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1', 0, 0, '22P02', 'uuid'],
    ['uuid with a misplaced dash', 'uuid', 'a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11', 0, 0, '22P02', 'a0eebc9-'],
    ['uuid with a leading space', 'uuid', ' a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 0, 0, '22P02', 'uuid'],
    ['uuid with a trailing dash', 'uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-', 0, 0, '22P02', 'uuid'],
    ['uuid with an unclosed brace', 'uuid', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 0, 0, '22P02', 'uuid'],
    ['binary uuid of 15 bytes', 'uuid', Buffer.alloc(15), 1, UUID, '22P03', '15 bytes'],
    ['binary int8 for a uuid key', 'uuid', int64(1n), 1, INT8, '42804', 'int8'],
    ['binary float8 for a text key', 'text', Buffer.alloc(8), 1, FLOAT8, '42804', 'float8'],
  ]
  for (const [what, type, value, format, oid, code, mentions] of cases) {
    try {
      canonicalKey(type, value, format, oid)
      t.fail(`${what}: accepted`)
    } catch (err) {
      t.ok(err instanceof KeyEncodingError, `${what}: a KeyEncodingError`)
      t.equal((err as KeyEncodingError).code, code, `${what}: SQLSTATE ${code}`)
      t.match((err as Error).message, mentions, `${what}: message names it`)
    }
  }
})

t.test('a long bad value is shortened in the message', async (t) => {
  const long = 'x'.repeat(1000)
  t.throws(() => canonicalKey('bigint', long, 0, 0), { message: /x{64}…"/ })
})

t.test('parseUuid follows uuid_in', async (t) => {
  t.equal(parseUuid('00000000-0000-0000-0000-000000000000'), '00000000000000000000000000000000')
  t.equal(parseUuid('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'), 'a0eebc999c0b4ef8bb6d6bb9bd380a11')
  t.equal(parseUuid('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11x'), undefined)
  t.equal(parseUuid('g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), undefined)
  t.equal(parseUuid('a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11'), undefined)
})
