// withParamsWritten: a Bind's parameters as constants in the statement's text, for a query the shards run inside
// COPY (query) TO STDOUT, which takes no parameters.
import t from 'tap'
import { PgError } from '../src/protocol/PgError.js'
import { withParamsWritten } from '../src/proxy/StatementParams.js'

const bind = (params: (string | null)[], types: number[] = [], formats: number[] = []) => ({
  params: params.map((p) => (p === null ? null : Buffer.from(p))),
  formats,
  types,
  resultFormats: [],
})

t.test('text values become quoted constants, cast to the type Parse named', async (t) => {
  t.equal(withParamsWritten('SELECT $1, $2', undefined), 'SELECT $1, $2', 'no Bind: the text as it is')
  t.equal(withParamsWritten("SELECT g, $1 FROM t WHERE a = $2 AND b = '$1'", bind(["it's", '5'])), "SELECT g, 'it''s' FROM t WHERE a = '5' AND b = '$1'", 'untyped: plain constants; $1 inside a string stays')
  t.equal(withParamsWritten('SELECT $1, $2, $3', bind(['7', null, 'x'], [20, 1184, 18])), "SELECT ('7'::int8), (NULL::timestamptz), ('x'::\"char\")", 'typed: cast, NULL too; "char" quoted')
  t.equal(withParamsWritten('SELECT 1 - $1', bind(['-5'], [705])), "SELECT 1 - '-5'", 'type unknown: untyped')
  t.equal(withParamsWritten('SELECT $1', bind(['a\\b'])), "SELECT E'a\\\\b'", 'a backslash reads the same whatever standard_conforming_strings is')
  t.equal(withParamsWritten('SELECT $1 || $10', bind(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'])), "SELECT 'a' || 'j'", '$10 is not $1 followed by 0')
})

t.test('what cannot be written is refused with 0A000', async (t) => {
  t.throws(() => withParamsWritten('SELECT $1', bind(['x'], [16500])), new PgError('0A000', 'parameter $1 is of type oid 16500 (a type created on the shards: an enum, an extension\'s type), which pgshard cannot write into this statement\'s text'))
  t.throws(() => withParamsWritten('SELECT $1, $2', bind(['x', 'y'], [], [0, 1])), { code: '0A000', message: /parameter \$2 is in binary format/ })
  t.equal(withParamsWritten('SELECT $1', bind([null], [], [1])), 'SELECT NULL', 'a NULL has no format to read')
})
