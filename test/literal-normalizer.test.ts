import t from 'tap'
import { highestParam, normalizeLiterals, restoreLiterals } from '../src/router/LiteralNormalizer.js'
import { initSqlParser, parseSql } from '../src/router/SqlParser.js'

await initSqlParser()

const norm = (sql: string, first = 1) => {
  const n = normalizeLiterals(sql, first)
  return n === null ? null : { text: n.text, values: n.values }
}

t.test('pgbench statements share one text whatever the value', async (t) => {
  t.same(norm('SELECT abalance FROM pgbench_accounts WHERE aid = 12345;'), {
    text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;',
    values: ['12345'],
  })
  t.equal(normalizeLiterals('SELECT abalance FROM pgbench_accounts WHERE aid = 7;', 1)?.text, 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;')
  t.same(norm('UPDATE pgbench_accounts SET abalance = abalance + -4211 WHERE aid = 93;'), {
    text: 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;',
    values: ['-4211', '93'],
  })
  t.same(norm('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 93, -4211, CURRENT_TIMESTAMP);'), {
    text: 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);',
    values: ['3', '1', '93', '-4211'],
  })
})

t.test('string literals of every kind are unquoted and unescaped', async (t) => {
  t.same(norm(`SELECT 1 FROM t WHERE a = 'O''Brien' AND b = E'tab\\there\\n\\x41\\101\\u00e9\\'' AND c = e'x'`), {
    text: 'SELECT $1 FROM t WHERE a = $2 AND b = $3 AND c = $4',
    values: ['1', "O'Brien", "tab\there\nAAé'", 'x'],
  })
  t.same(norm(`SELECT U&'d\\0061t\\+000061', B'1010', X'1F', 'é😀'`), {
    text: 'SELECT $1, $2, $3, $4',
    values: ['data', '1010', '1F', 'é😀'],
  })
  t.equal(norm(`SELECT E'\\xC3\\xA9'`)?.values[0], 'é', 'escaped bytes are read as UTF-8')
  t.equal(norm(`SELECT E'\\xC3'`), null, 'a byte escape that is not UTF-8 is left to Postgres to reject')
  t.same(norm(`SELECT U&'d!0061t' UESCAPE '!'`), { text: `SELECT U&'d!0061t' UESCAPE '!'`, values: [] }, 'UESCAPE changes the escape: left alone')
  t.same(norm(`SELECT N'x'`), { text: `SELECT N'x'`, values: [] }, 'national strings keep their type')
})

t.test('numbers: only whole numeric tokens, unary minus folded only where it cannot be binary', async (t) => {
  t.same(norm('SELECT 1e10, .5, 1.5e-3, 2., 42 FROM t1 WHERE col_2 = 3'), {
    text: 'SELECT $1, $2, $3, $4, $5 FROM t1 WHERE col_2 = $6',
    values: ['1e10', '.5', '1.5e-3', '2.', '42', '3'],
  })
  t.same(norm('SELECT a -5, b - 5, 3*-2, f(-1), x=-7, -8, ARRAY[-9] FROM t WHERE k IN (-1, 2) AND c > - 4'), {
    text: 'SELECT a -$1, b - $2, $3*$4, f($5), x=$6, $7, ARRAY[$8] FROM t WHERE k IN ($9, $10) AND c > $11',
    values: ['5', '5', '3', '-2', '-1', '-7', '-8', '-9', '-1', '2', '-4'],
  })
  t.same(norm('SELECT CASE WHEN a THEN -1 ELSE -2 END - 3 FROM t'), {
    text: 'SELECT CASE WHEN a THEN $1 ELSE $2 END - $3 FROM t',
    values: ['-1', '-2', '3'],
  })
  t.same(norm('SELECT 5 - -3'), { text: 'SELECT $1 - $2', values: ['5', '-3'] })
  t.same(norm('SELECT 0x1F, 0o17, 0b101, 1_000 FROM t'), { text: 'SELECT 0x1F, 0o17, 0b101, 1_000 FROM t', values: [] }, 'PG16+ forms are read differently by PG15: left alone')
  t.same(norm('SELECT 1abc'), { text: 'SELECT 1abc', values: [] }, '`1abc` is `1 AS abc` for PG15 and an error for PG16+: left alone')
  t.same(norm('SELECT x[1:2] FROM t'), { text: 'SELECT x[$1:$2] FROM t', values: ['1', '2'] })
})

t.test('identifiers, comments, dollar quotes and parameters are skipped', async (t) => {
  t.same(norm(`SELECT "col 5", t1.c2, $$it's 5$$, $tag$ 6 $x$ $tag$ FROM "T 7" WHERE k = $1 AND j = 8`, 2), {
    text: `SELECT "col 5", t1.c2, $$it's 5$$, $tag$ 6 $x$ $tag$ FROM "T 7" WHERE k = $1 AND j = $2`,
    values: ['8'],
  })
  t.same(norm('SELECT a -- comment 5\nFROM t /* outer /* nested 6 */ 7 */ WHERE k = 9'), {
    text: 'SELECT a  \nFROM t   WHERE k = $1',
    values: ['9'],
  }, 'ordinary comments become a space (trace ids must not defeat the cache)')
  t.same(norm('/* pgshard: key=42 */ SELECT a FROM t WHERE k = 42'), {
    text: '/* pgshard: key=42 */ SELECT a FROM t WHERE k = $1',
    values: ['42'],
  }, 'hint comments stay')
  t.equal(normalizeLiterals('SELECT $3, 5', 2), null, 'an existing parameter at or above firstParam is a caller error')
  t.equal(highestParam('SELECT $1, $12, "$40", \'$41\', $$ $42 $$'), 12)
  t.equal(highestParam('SELECT 1'), 0)
})

t.test('constants the grammar requires stay: typed literals, typmods, positions', async (t) => {
  t.same(
    norm(`SELECT interval '1 day', DATE '2020-01-01', timestamp with time zone '2020-01-01 00:00+00', int4 '5', "mytype" 'x', char(3) 'abc' FROM t`),
    { text: `SELECT interval '1 day', DATE '2020-01-01', timestamp with time zone '2020-01-01 00:00+00', int4 '5', "mytype" 'x', char(3) 'abc' FROM t`, values: [] },
  )
  t.same(norm(`SELECT 'x'::varchar(10), CAST(1.5 AS numeric(10,2)), x::bit varying(8), now()::timestamp(3), interval '1' second(3) FROM t`), {
    text: `SELECT $1::varchar(10), CAST($2 AS numeric(10,2)), x::bit varying(8), now()::timestamp(3), interval '1' second(3) FROM t`,
    values: ['x', '1.5'],
  })
  t.same(norm('SELECT a, b FROM t GROUP BY 1, 2 ORDER BY 2 DESC, 1, a + 3 LIMIT 10 OFFSET 20'), {
    text: 'SELECT a, b FROM t GROUP BY 1, 2 ORDER BY 2 DESC, 1, a + $1 LIMIT $2 OFFSET $3',
    values: ['3', '10', '20'],
  })
  t.same(norm('(SELECT a FROM t WHERE b > 4) UNION (SELECT a FROM u) ORDER BY (1) ASC, (a + 2) LIMIT 7'), {
    text: '(SELECT a FROM t WHERE b > $1) UNION (SELECT a FROM u) ORDER BY (1) ASC, (a + $2) LIMIT $3',
    values: ['4', '2', '7'],
  }, 'a parenthesized position is a position (Django after a UNION); an expression in parentheses is not')
  t.same(norm('SELECT DISTINCT ON (1) a FROM t ORDER BY 1, f(2, 3)'), {
    text: 'SELECT DISTINCT ON (1) a FROM t ORDER BY 1, f($1, $2)',
    values: ['2', '3'],
  })
  t.same(norm(`SELECT a FROM t WHERE b LIKE 'x%' ESCAPE '!' AND c IS DISTINCT FROM 'y' FETCH FIRST 5 ROWS ONLY`), {
    text: 'SELECT a FROM t WHERE b LIKE $1 ESCAPE $2 AND c IS DISTINCT FROM $3 FETCH FIRST $4 ROWS ONLY',
    values: ['x%', '!', 'y', '5'],
  })
})

t.test('only plain DML is normalized', async (t) => {
  for (const sql of ['SET x = 1', 'EXPLAIN SELECT 1', 'CREATE TABLE t (a int DEFAULT 5)', 'SELECT 5; VACUUM', "COPY t FROM '/x'"]) {
    t.equal(normalizeLiterals(sql, 1), null, sql)
  }
  for (const sql of ['WITH x AS (SELECT 1) SELECT 2', 'VALUES (1)', 'TABLE t', '(SELECT 1)', 'delete from t where k = 1', 'SELECT 1; SELECT 2']) {
    t.not(normalizeLiterals(sql, 1), null, sql)
  }
  t.equal(normalizeLiterals("SELECT 'unterminated", 1), null)
  t.equal(normalizeLiterals('SELECT /* unterminated', 1), null)
})

t.test('every normalized text parses, and restoring the literals gives back the statement', async (t) => {
  const statements = [
    'SELECT abalance FROM pgbench_accounts WHERE aid = 12345',
    `SELECT a.id, b."Name" FROM s.accounts a JOIN orders b ON a.id = b.account_id WHERE a.id IN (1, -2, 3) AND b.note <> 'it''s' ORDER BY 2 LIMIT 5`,
    `INSERT INTO t (k, v, w) VALUES (1, 'é', E'\\n'), (-2, 'x', NULL) ON CONFLICT (k) DO UPDATE SET v = 'y' RETURNING k`,
    `UPDATE t SET v = v || '!', n = n - 1 WHERE k = 42 AND ts > '2024-01-01'::timestamptz`,
    `SELECT count(*) FILTER (WHERE x > 3), sum(y) FROM t GROUP BY 1 HAVING sum(y) > 10.5 ORDER BY 1 DESC`,
    `SELECT set_config('app.user', '42', false)`,
    `WITH d AS (DELETE FROM t WHERE k = 7 RETURNING *) SELECT count(*) FROM d WHERE v LIKE 'a%'`,
    `SELECT 5 - -3, x[1:2], 1.5e10, .25 FROM t WHERE y = - 4`,
  ]
  for (const sql of statements) {
    const n = normalizeLiterals(sql, 1)
    t.not(n, null, sql)
    if (n === null) continue
    t.doesNotThrow(() => parseSql(n.text), `parses: ${n.text}`)
    t.equal(restoreLiterals(n.text, 1, n.sources), sql, `restores: ${sql}`)
    t.equal(n.values.length, n.sources.length)
  }
  t.equal(restoreLiterals('SELECT 1 - $1', 1, ['-5']), 'SELECT 1 - -5', 'a restored negative never forms a comment')
  t.equal(restoreLiterals("SELECT $1, '$1', $2", 2, ['9']), "SELECT $1, '$1', 9", 'client parameters and strings are untouched')
})
