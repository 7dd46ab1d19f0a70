// COPY data cut into rows and sent to the shard of each row's key, as Postgres reads text, CSV and binary: the
// rows must come out byte for byte, however the client chunks them.
import t from 'tap'
import type { PgError } from '../src/protocol/PgError.js'
import { BinaryCopyRowRouter } from '../src/router/BinaryCopyRowRouter.js'
import { CopyRowRouter } from '../src/router/CopyRowRouter.js'
import { KeyEncodingError } from '../src/router/KeyEncoding.js'
import type { CopyShape } from '../src/router/StatementPlan.js'

const TEXT: CopyShape = { table: 'items', columns: ['id', 'label'], stdin: true, format: 'text', delimiter: '\t', quote: '"', escape: '"', nullText: '\\N', header: false }
const CSV: CopyShape = { ...TEXT, format: 'csv', delimiter: ',', nullText: '' }

/** Routes by the key's text: 'a…' to shard 0, anything else to shard 1; records the keys seen. */
function route(shape: CopyShape, data: string, chunk: number, keyIndex = 0): { shards: string[]; keys: string[]; rows: number } {
  const keys: string[] = []
  const router = new CopyRowRouter(shape, keyIndex, 'id', (k) => (keys.push(k), k.startsWith('a') ? 0 : 1), 2)
  const out = ['', '']
  const take = (parts: Buffer[][]) => parts.forEach((rows, i) => (out[i] += Buffer.concat(rows).toString('utf8')))
  const bytes = Buffer.from(data)
  for (let i = 0; i < bytes.length; i += chunk) take(router.push(bytes.subarray(i, i + chunk)))
  take(router.end())
  return { shards: out, keys, rows: router.rows }
}

t.test('text format: escapes, an escaped line end, the NULL marker elsewhere, CRLF; any chunking', async (t) => {
  const data = 'a1\tplain\nb2\ttab\\there\nb\\\\3\tback\\\\slash\na\\x344\tescaped\\\nline end\nb5\t\\N\r\n'
  for (const chunk of [1, 2, 3, 7, 1000]) {
    const r = route(TEXT, data, chunk)
    t.same(r.keys, ['a1', 'b2', 'b\\3', 'a44', 'b5'], `chunks of ${chunk}: keys decoded`)
    t.equal(r.shards[0], 'a1\tplain\na\\x344\tescaped\\\nline end\n', `chunks of ${chunk}: shard 0 gets its rows as sent`)
    t.equal(r.shards[1], 'b2\ttab\\there\nb\\\\3\tback\\\\slash\nb5\t\\N\r\n', `chunks of ${chunk}: shard 1 too`)
    t.equal(r.rows, 5)
  }
  t.same(route(TEXT, 'x\ta1\ny\tb\n', 4, 1).keys, ['a1', 'b'], 'the key in another column')
  t.same(route(TEXT, 'a1\tx\n\\.\nb2\tignored\n', 3).shards, ['a1\tx\n', ''], 'the end-of-data line ends the data')
  t.equal(route(TEXT, 'a1\tx\nb2\tno line end', 4).shards[1], 'b2\tno line end\n', 'a last row without a line end is a row')
  t.same(route({ ...TEXT, delimiter: '|' }, 'a|b\\|c\nb\\|x|y\n', 2).keys, ['a', 'b|x'], 'another delimiter, escaped in data')
  t.same(route({ ...TEXT, header: true }, 'id\tlabel\na1\tx\n', 5).shards, ['id\tlabel\na1\tx\n', 'id\tlabel\n'], 'HEADER: the header line goes to every shard')
})

t.test('CSV: quoted delimiters and line ends, doubled quotes, another escape, NULL and empty strings', async (t) => {
  const data = '"a,1","multi\nline, with ""quotes"""\nb2,plain\n"b""3",x\n'
  for (const chunk of [1, 2, 5, 1000]) {
    const r = route(CSV, data, chunk)
    t.same(r.keys, ['a,1', 'b2', 'b"3'], `chunks of ${chunk}: keys unquoted`)
    t.equal(r.shards[0], '"a,1","multi\nline, with ""quotes"""\n', `chunks of ${chunk}: a newline inside quotes stays in its row`)
    t.equal(r.shards[1], 'b2,plain\n"b""3",x\n')
  }
  const escaped = route({ ...CSV, escape: '\\' }, '"a\\"1","x\\\\"\nb,"\\\\"\n', 1)
  t.same(escaped.keys, ['a"1', 'b'], 'ESCAPE \\: an escaped quote is data')
  t.same(escaped.shards, ['"a\\"1","x\\\\"\n', 'b,"\\\\"\n'])
  t.same(route(CSV, '"",x\n', 3).keys, [''], 'a quoted empty string is a value, not NULL')
  t.same(route({ ...CSV, header: true }, 'id,label\na,1\n', 2).shards, ['id,label\na,1\n', 'id,label\n'])
})

t.test('rows pgshard cannot place are refused with the row number and a SQLSTATE', async (t) => {
  t.throws(() => route(TEXT, 'a1\tx\n\\N\ty\n', 100), { code: '23502', message: /COPY row 2 has no value \(NULL\) for the sharding key "id"/ })
  t.throws(() => route(CSV, 'a,1\n,2\n', 100), { code: '23502' }, 'CSV: an unquoted empty field is NULL')
  t.throws(() => route(TEXT, 'a1\tx\n\n', 100, 1), { code: '22P04', message: /missing data for column "id" in COPY row 2/ })
  t.throws(() => route(CSV, '"a,1\n', 100), { code: '22P04', message: /unterminated CSV quoted field/ })
  const bad = new CopyRowRouter(TEXT, 0, 'id', () => {
    throw Object.assign(new Error('x'), { code: 'never' })
  }, 2)
  t.throws(() => bad.push(Buffer.from('a\tb\n')), { message: 'x' }, 'other errors are not disguised')
})

/** A binary COPY stream: the header (with an extension of `ext` bytes), the tuples, and the trailer. */
function binaryCopy(tuples: (Buffer | null)[][], ext = 0, trailer = true): Buffer {
  const parts = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(4), int32(ext), Buffer.alloc(ext, 7)]
  for (const fields of tuples) {
    const count = Buffer.alloc(2)
    count.writeInt16BE(fields.length)
    parts.push(count)
    for (const f of fields) parts.push(f === null ? int32(-1) : Buffer.concat([int32(f.length), f]))
  }
  if (trailer) parts.push(Buffer.from([0xff, 0xff]))
  return Buffer.concat(parts)
}
function int32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}

/** Routes binary COPY data by an int4 key (even to shard 0, odd to shard 1) in chunks of `chunk` bytes. */
function routeBinary(data: Buffer, chunk: number, keyIndex = 0, columns = 2): { shards: Buffer[]; keys: number[]; rows: number } {
  const keys: number[] = []
  const router = new BinaryCopyRowRouter(columns, keyIndex, 'id', (v) => {
    const k = v.readInt32BE(0)
    keys.push(k)
    return k % 2 === 0 ? 0 : 1
  }, 2)
  const out: Buffer[][] = [[], []]
  const take = (parts: Buffer[][]) => parts.forEach((rows, i) => out[i]!.push(...rows.map((r) => Buffer.from(r))))
  for (let i = 0; i < data.length; i += chunk) take(router.push(data.subarray(i, i + chunk)))
  take(router.end())
  return { shards: out.map((rows) => Buffer.concat(rows)), keys, rows: router.rows }
}

t.test('binary format: tuples whole to the shard of their key, header and trailer to every shard; any chunking', async (t) => {
  const label = (s: string) => Buffer.from(s)
  const tuples = [[int32(2), label('two')], [int32(3), null], [int32(4), label('')], [int32(5), label('x'.repeat(300))]]
  const data = binaryCopy(tuples, 3)
  const even = binaryCopy([tuples[0]!, tuples[2]!], 3)
  const odd = binaryCopy([tuples[1]!, tuples[3]!], 3)
  for (const chunk of [1, 2, 5, 19, 23, 64, 10_000]) {
    const r = routeBinary(data, chunk)
    t.same(r.keys, [2, 3, 4, 5], `chunks of ${chunk}: keys read`)
    t.ok(r.shards[0]!.equals(even) && r.shards[1]!.equals(odd), `chunks of ${chunk}: each shard gets the header, its tuples as sent, the trailer`)
    t.equal(r.rows, 4)
  }
  t.ok(routeBinary(binaryCopy([], 0), 4).shards.every((s) => s.equals(binaryCopy([], 0))), 'no rows: every shard gets header and trailer')
  const key2 = routeBinary(binaryCopy([[label('a'), int32(6)], [label('b'), int32(7)]]), 3, 1)
  t.same(key2.keys, [6, 7], 'the key in another column')
  const noTrailer = routeBinary(binaryCopy([[int32(8), label('y')]], 0, false), 4)
  t.same([noTrailer.keys, noTrailer.rows], [[8], 1], 'the trailer may be left out (the COPY ends at CopyDone)')
  const after = routeBinary(Buffer.concat([binaryCopy([[int32(8), label('y')]]), Buffer.from('junk')]), 4)
  t.same(after.keys, [8], 'what follows the trailer is ignored')
})

t.test('binary format: data pgshard cannot place is refused with the row number and a SQLSTATE', async (t) => {
  const refused = (data: Buffer, chunk = 3) => {
    try {
      routeBinary(data, chunk)
      return null
    } catch (err) {
      return { code: (err as PgError).code, message: (err as Error).message }
    }
  }
  t.same(refused(Buffer.from('COPY data in text\n')), { code: '22P04', message: 'COPY file signature not recognized' })
  t.same(refused(binaryCopy([[int32(2), Buffer.from('a')], [null, Buffer.from('b')]])), {
    code: '23502', message: 'COPY row 2 has no value (NULL) for the sharding key "id": pgshard cannot tell its shard',
  })
  t.same(refused(binaryCopy([[int32(2)]])), { code: '22P04', message: 'row field count is 1, expected 2 (COPY row 1)' })
  t.same(refused(binaryCopy([[int32(2), Buffer.from('abc')]], 0, false).subarray(0, -2)), { code: '22P04', message: 'unexpected end of COPY data in row 1' })
  const badKey = new BinaryCopyRowRouter(1, 0, 'id', () => {
    throw new KeyEncodingError('invalid binary integer of 3 bytes for a integer sharding key', '22P03')
  }, 2)
  t.throws(() => badKey.push(binaryCopy([[Buffer.from('abc')]])), { code: '22P03', message: /\(COPY row 1, column "id"\)$/ })
})

t.test('keys pgshard makes: each row gets the next one as its last field, cut and routed in two steps, any chunking', async (t) => {
  const made = (keys: string[]) => ({ column: 'id', places: true, next: () => keys.shift()! })
  for (const chunk of [1, 3, 1000]) {
    const router = new CopyRowRouter({ ...CSV, columns: ['label'], header: true }, -1, 'id', (k) => Number(k) % 2, 2, made(['10', '11', '12']))
    const out = ['', '']
    const data = Buffer.from('label\r\n"x, y"\r\n"two\nlines"\r\nlast')
    let cut = 0
    for (let i = 0; i < data.length; i += chunk) {
      const rows = router.cut(data.subarray(i, i + chunk))
      cut += rows.length
      router.route(rows).forEach((r, s) => (out[s] += Buffer.concat(r).toString()))
    }
    router.end().forEach((r, s) => (out[s] += Buffer.concat(r).toString()))
    t.equal(cut, 3, `chunks of ${chunk}: the header and two rows cut before the end`)
    t.same(out, ['label,"id"\r\n"x, y","10"\r\nlast,"12"\n', 'label,"id"\r\n"two\nlines","11"\r\n'], `chunks of ${chunk}: key added before each line end, the header names it`)
  }
  const text = new CopyRowRouter({ ...TEXT, columns: ['label'] }, -1, 'id', () => 0, 1, made(['7']))
  t.same(text.push(Buffer.from('a\\tb\n')).map((r) => Buffer.concat(r).toString()), ['a\\tb\t7\n'], 'text format: after a tab')
  const keys = ['4', '5']
  const binary = new BinaryCopyRowRouter(1, -1, 'id', (v) => v.readInt32BE(0) % 2, 2, { keys: made(keys), encode: (k) => int32(Number(k)) })
  const parts = [binary.push(binaryCopy([[Buffer.from('p')], [null]]))]
  parts.push(binary.end())
  const [even, odd] = [0, 1].map((s) => Buffer.concat(parts.flatMap((p) => p[s]!)))
  const header = binaryCopy([], 0, false)
  t.same(even, Buffer.concat([header, binaryCopy([[Buffer.from('p'), int32(4)]]).subarray(header.length)]), 'binary: a field count one higher, the key last; header and trailer to every shard')
  t.same(odd, Buffer.concat([header, binaryCopy([[null, int32(5)]]).subarray(header.length)]))
})
