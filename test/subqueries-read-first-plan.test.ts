// The pure parts of reading subqueries first: which subqueries the analyzer finds self-contained (and the text
// around them), the constants their answers become, and a read over aggregates written over a subquery that
// computes them. The wire path is in subqueries-read-first.test.ts.
import t from 'tap'
import { aggregatesInSubquery } from '../src/router/AggregatesInSubquery.js'
import { Refusal } from '../src/router/Refusal.js'
import { analyzeStatement } from '../src/router/StatementAnalyzer.js'
import { initSqlParser, parseSql } from '../src/router/SqlParser.js'
import { StatementText } from '../src/router/StatementText.js'
import { subqueryAnswer } from '../src/router/SubqueryAnswer.js'

await initSqlParser()

const detached = (sql: string) => {
  const d = analyzeStatement(sql).detached
  return d === undefined ? undefined : { parts: d.parts, subqueries: d.subqueries.map((s) => [s.form, s.sql]) }
}

t.test('the analyzer finds the outermost subqueries that name nothing around them, with the text around them', async (t) => {
  t.same(detached('SELECT id FROM orders WHERE total > (SELECT avg(total) FROM orders) AND id IN (SELECT order_id FROM refunds)'), {
    parts: ['SELECT id FROM orders WHERE total > (', ') AND id IN (', ')'],
    subqueries: [['scalar', 'SELECT avg(total) FROM orders'], ['in', 'SELECT order_id FROM refunds']],
  }, 'a value and IN, in the order written')
  t.same(detached('SELECT 1 WHERE x NOT IN (SELECT a FROM t) AND y = ANY (SELECT b FROM t) AND z > ALL ((SELECT c FROM t))')?.subqueries, [
    ['in', 'SELECT a FROM t'], ['rows', 'SELECT b FROM t'], ['rows', '(SELECT c FROM t)'],
  ], 'NOT IN is a list too; an operator with ANY or ALL takes rows')
  t.same(detached('SELECT ARRAY(SELECT a FROM t ORDER BY a), EXISTS (SELECT 1 FROM u WHERE u.x > 1) FROM v')?.subqueries, [['rows', 'SELECT a FROM t ORDER BY a'], ['exists', 'SELECT 1 FROM u WHERE u.x > 1']])
  t.same(detached('SELECT max(n) FROM (SELECT k, count(*) AS n FROM t GROUP BY k) AS s (k, n)')?.subqueries, [['table', 'SELECT k, count(*) AS n FROM t GROUP BY k']], 'a subquery in FROM')
  t.same(
    detached('SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.total > (SELECT avg(total) FROM orders))')?.subqueries,
    [['scalar', 'SELECT avg(total) FROM orders']],
    'inside a subquery tied to the row: only the one that names nothing around it',
  )
  t.same(detached('DELETE FROM orders WHERE total < (SELECT min(total) FROM orders WHERE status = $1)')?.parts, ['DELETE FROM orders WHERE total < (', ')'], 'in a write')
  t.same(detached("INSERT INTO t (a, b) VALUES (1, (SELECT max(b) FROM t))")?.subqueries, [['scalar', 'SELECT max(b) FROM t']])
  t.same(detached('SELECT * FROM users WHERE name = (SELECT name FROM users WHERE id = 3) /* é */')?.parts, ['SELECT * FROM users WHERE name = (', ') /* é */'], 'byte offsets of a text that is not ASCII')
  const outer = analyzeStatement('SELECT id FROM orders WHERE user_id = 5 AND total > (SELECT avg(total) FROM orders)').detached?.outer
  t.match(outer, { kind: 'select', tables: [{ name: 'orders' }], pins: [{ column: 'user_id' }] }, 'the statement without them pins what it pins')
})

t.test('what is not taken out', async (t) => {
  const none = [
    ['a column of the query around it, qualified', 'SELECT id FROM users u WHERE age > (SELECT avg(total) FROM orders o WHERE o.user_id = u.id)'],
    ['a table of the query around it, named by its name', 'SELECT id FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE orders.user_id = users.id)'],
    ['a WITH query of the statement', 'WITH big AS (SELECT id FROM orders WHERE total > 9) SELECT * FROM users WHERE id IN (SELECT id FROM big)'],
    ['a lock', 'SELECT * FROM users WHERE id IN (SELECT user_id FROM orders FOR UPDATE)'],
    ['no table', 'SELECT * FROM users WHERE age > (SELECT 18)'],
    ['LATERAL', 'SELECT * FROM users u, LATERAL (SELECT count(*) FROM orders o WHERE o.user_id = u.id) c'],
    ['a set operation in FROM', 'SELECT * FROM (SELECT id FROM a UNION SELECT id FROM b) s'],
    ['an existence test answered by every shard', 'SELECT EXISTS (SELECT 1 FROM orders WHERE total > 5)'],
    ['a cursor', 'DECLARE c CURSOR FOR SELECT * FROM users WHERE age > (SELECT avg(age) FROM users)'],
    ['several statements', 'SELECT (SELECT max(a) FROM t); SELECT 1'],
  ]
  for (const [name, sql] of none) t.equal(detached(sql!), undefined, name!)
  t.same(detached('SELECT * FROM orders WHERE total > (SELECT avg(total) FROM orders WHERE orders.status = $1)')?.subqueries, [['scalar', 'SELECT avg(total) FROM orders WHERE orders.status = $1']], 'its own table by its name is its own')
})

t.test('answers as constants typed as the columns', async (t) => {
  const v = (s: string | null) => (s === null ? null : Buffer.from(s))
  const int8 = 20
  const numeric = 1700
  const text = 25
  t.equal(subqueryAnswer('scalar', { names: ['avg'], types: [numeric], rows: [[v('12.50')]] }), "'12.50'::numeric")
  t.equal(subqueryAnswer('scalar', { names: ['x'], types: [int8], rows: [] }), 'NULL::int8', 'no row: NULL of its type')
  t.equal(subqueryAnswer('scalar', { names: ['x'], types: [text], rows: [[v("o'neil \\ back")]] }), "E'o''neil \\\\ back'::text", 'a quote doubled, a backslash in E\'…\'')
  t.equal(subqueryAnswer('scalar', { names: ['x'], types: [1007], rows: [[v('{1,2}')]] }), "'{1,2}'::int4[]", 'an array')
  t.equal(subqueryAnswer('scalar', { names: ['x'], types: [16400], rows: [[v('happy')]] }), "'happy'", 'a type created on the shards: untyped')
  t.throws(() => subqueryAnswer('scalar', { names: ['x'], types: [int8], rows: [[v('1')], [v('2')]] }), new Refusal('21000', 'more than one row returned by a subquery used as an expression'))
  t.throws(() => subqueryAnswer('scalar', { names: ['x', 'y'], types: [int8, int8], rows: [] }), new Refusal('42601', 'subquery must return only one column'))
  t.equal(subqueryAnswer('in', { names: ['x'], types: [int8], rows: [[v('15')], [v(null)]] }), "'15'::int8, NULL::int8", 'IN: a list')
  t.equal(subqueryAnswer('in', { names: ['x'], types: [int8], rows: [] }), 'SELECT NULL::int8 WHERE false', 'IN no row: a query of none, not NULL (NOT IN () is true)')
  t.equal(subqueryAnswer('in', { names: ['x', 'y'], types: [int8, text], rows: [[v('1'), v('a')]] }), "VALUES ('1'::int8, 'a'::text)", 'IN of two columns: rows')
  t.equal(subqueryAnswer('exists', { names: ['x'], types: [int8], rows: [[v('1')]] }), 'SELECT')
  t.equal(subqueryAnswer('exists', { names: ['x'], types: [int8], rows: [] }), 'SELECT WHERE false')
  t.equal(subqueryAnswer('rows', { names: ['x'], types: [int8], rows: [[v('1')], [v('2')]] }), "VALUES ('1'::int8), ('2'::int8)")
  t.equal(
    subqueryAnswer('table', { names: ['status', 'n'], types: [text, int8], rows: [[v('open'), v('3')]] }),
    `SELECT * FROM (VALUES ('open'::text, '3'::int8)) AS pgshard_rows ("status", "n")`,
    'a subquery in FROM: its rows under its names',
  )
  t.equal(subqueryAnswer('table', { names: ['n'], types: [int8], rows: [] }), 'SELECT NULL::int8 AS "n" WHERE false')
})

t.test('a read over aggregates written over a subquery computing them', async (t) => {
  const written = (sql: string) => {
    const raw = parseSql(sql).stmts![0]!
    const text = new StatementText(sql)
    const select = (raw.stmt as { SelectStmt: Parameters<typeof aggregatesInSubquery>[0] }).SelectStmt
    return aggregatesInSubquery(select, text, raw.stmt_location ?? 0, raw.stmt_len ? (raw.stmt_location ?? 0) + raw.stmt_len : text.bytes.length)
  }
  t.equal(
    written('SELECT sum(total) / count(*) FROM orders'),
    'SELECT pgshard_groups.a1 / pgshard_groups.a2 AS "?column?" FROM (SELECT sum(total) AS a1, count(*) AS a2 FROM orders) AS pgshard_groups',
  )
  t.equal(
    written('SELECT o.status, round(avg(total), 2) AS a FROM orders o WHERE o.total > $1 GROUP BY o.status HAVING count(*) > 10 ORDER BY a DESC LIMIT 5'),
    'SELECT pgshard_groups.g1 AS "status", round(pgshard_groups.a1, 2) AS "a" FROM (SELECT o.status AS g1, avg(total) AS a1, count(*) AS a2 FROM orders o WHERE o.total > $1 GROUP BY 1) AS pgshard_groups WHERE  pgshard_groups.a2 > 10 ORDER BY  a DESC LIMIT 5',
    'groups, HAVING as a filter of the groups, ORDER BY an output name, LIMIT',
  )
  t.equal(written('SELECT count(*) FILTER (WHERE x > 1) * 2 FROM t')?.includes('count(*) FILTER (WHERE x > 1) AS a1'), true, 'FILTER stays with its aggregate')
  t.equal(
    written("SELECT date_trunc('day', created) AS d, round(avg(total), 2) FROM orders GROUP BY 1 ORDER BY 1"),
    `SELECT pgshard_groups.g1 AS "d", round(pgshard_groups.a1, 2) AS "round" FROM (SELECT date_trunc('day', created) AS g1, avg(total) AS a1 FROM orders GROUP BY 1) AS pgshard_groups ORDER BY  1`,
    'GROUP BY a position: the item as a whole is the group; the subquery groups by its own positions',
  )
  t.equal(written('SELECT sum(x) / (SELECT NULL) FROM t'), 'SELECT pgshard_groups.a1 / (SELECT NULL) AS "?column?" FROM (SELECT sum(x) AS a1 FROM t) AS pgshard_groups', 'a subquery over no table stays')
  t.equal(
    written('SELECT count(*) * 2, upper(status) FROM orders GROUP BY upper(status)'),
    'SELECT pgshard_groups.a1 * 2 AS "?column?", pgshard_groups.g1 AS "upper" FROM (SELECT upper(status) AS g1, count(*) AS a1 FROM orders GROUP BY 1) AS pgshard_groups',
    'GROUP BY an expression written as a select-list item',
  )
  const none = [
    ['bare aggregates: nothing to compute', 'SELECT status, count(*) FROM orders GROUP BY status'],
    ['GROUP BY an output name', 'SELECT lower(name) AS n, count(*) * 2 FROM users GROUP BY n'],
    ['GROUP BY an expression that is no select-list item', 'SELECT count(*) * 2 FROM users GROUP BY lower(name)'],
    ['GROUP BY a name that is also an output name (Postgres may take it for a column)', 'SELECT lower(status) AS status, count(*) * 2 FROM orders GROUP BY status'],
    ['a column outside the aggregates and the groups', 'SELECT name, count(*) * 2 FROM users GROUP BY id'],
    ['an aggregate the merge cannot fold', 'SELECT length(json_agg(x)::text) * 2 FROM t'],
    ['a window', 'SELECT sum(x) / count(*), rank() OVER (ORDER BY 1) FROM t'],
    ['DISTINCT', 'SELECT DISTINCT sum(x) / count(*) FROM t'],
    ['a subquery over a table in an expression', 'SELECT sum(x) / (SELECT count(*) FROM u) FROM t'],
  ]
  for (const [name, sql] of none) t.equal(written(sql!), undefined, name!)
})
