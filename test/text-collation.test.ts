// Which rules a merge orders text by, from the database's catalog row or a COLLATE clause's name.
import t from 'tap'
import { BYTE_ORDER, databaseCollation, namedCollation } from '../src/router/merge/TextCollation.js'

const b = (s: string) => Buffer.from(s, 'utf8')
const order = (c: { compare(a: Buffer, b: Buffer): number }, words: string[]) => [...words].sort((x, y) => c.compare(b(x), b(y)))

t.test('a database\u2019s default collation', async (t) => {
  for (const collate of ['C', 'POSIX', 'C.UTF-8', 'C.utf8']) t.equal(databaseCollation({ provider: 'c', collate, locale: null }), BYTE_ORDER, `libc ${collate}: bytes`)
  t.equal(databaseCollation({ provider: null, collate: 'C', locale: null }), BYTE_ORDER, 'before Postgres 15 (no provider): libc')
  t.equal(databaseCollation({ provider: 'b', collate: 'C', locale: 'C.UTF-8' }), BYTE_ORDER, 'builtin C.UTF-8: code points, which bytes order')
  const icu = databaseCollation({ provider: 'i', collate: 'C', locale: 'en-US' })
  t.equal(icu.name, 'icu:en-US')
  t.same(order(icu, ['Zebra', 'apple', 'Banana', 'éclair', 'eclair']), ['apple', 'Banana', 'eclair', 'éclair', 'Zebra'], 'ICU en-US: case and accents after the letters')
  const libc = databaseCollation({ provider: 'c', collate: 'en_US.UTF-8', locale: null })
  t.equal(libc.name, 'libc:en_US.UTF-8 (as ICU en-US)', 'libc en_US.UTF-8: ordered as ICU en-US, and says so')
  t.same(order(libc, ['Zebra', 'apple', 'Banana']), ['apple', 'Banana', 'Zebra'])
  t.same(order(BYTE_ORDER, ['Zebra', 'apple', 'Banana']), ['Banana', 'Zebra', 'apple'], 'bytes: capitals first')
  t.not(icu.compare(b('\u00e9'), b('e\u0301')), 0, 'strings ICU calls equal are told apart by bytes, as Postgres does')
  t.equal(icu.compare(b('same'), b('same')), 0)
})

t.test('a COLLATE clause\u2019s name', async (t) => {
  const fallback = databaseCollation({ provider: 'i', collate: 'C', locale: 'en-US' })
  t.equal(namedCollation('default', fallback), fallback, '"default": the database\u2019s')
  for (const name of ['C', 'POSIX', 'ucs_basic', 'pg_c_utf8']) t.equal(namedCollation(name, fallback), BYTE_ORDER, `${name}: bytes`)
  t.equal(namedCollation('de-DE-x-icu', fallback)?.name, 'icu:de-DE', 'an ICU collation of the catalog')
  t.equal(namedCollation('und-x-icu', fallback)?.name, 'icu:und')
  t.equal(namedCollation('en_US', fallback)?.name, 'libc:en_US (as ICU en-US)', 'a libc collation of the catalog')
  t.equal(namedCollation('nocase', fallback), undefined, 'one made with CREATE COLLATION: unknown')
})
