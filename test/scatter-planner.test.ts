import t from 'tap'
import { restoreLiterals } from '../src/router/LiteralNormalizer.js'
import { StatementCache } from '../src/router/StatementCache.js'
import { analyzeStatement } from '../src/router/StatementAnalyzer.js'
import type { ScatterPlan } from '../src/router/StatementPlan.js'
import { initSqlParser, parseSql } from '../src/router/SqlParser.js'

await initSqlParser()

const scatter = (sql: string): ScatterPlan => {
  const plan = analyzeStatement(sql)
  if (plan.scatter === undefined) throw new Error(`no scatter plan for ${sql}: ${plan.unmergeable}`)
  return plan.scatter
}
/** Why the merge cannot answer the statement: refused, or (grouped) left to the shards' whole groups if by a key. */
const refusal = (sql: string): string | undefined => {
  const plan = analyzeStatement(sql)
  return plan.scatter === undefined ? plan.unmergeable : plan.scatter.sources.wholeGroups?.unmergeable
}
const value = { kind: 'value' }

t.test('plain rows pass through unchanged', async (t) => {
  t.same(scatter('SELECT id, name FROM accounts WHERE region = $1'), {
    shardSql: 'SELECT id, name FROM accounts WHERE region = $1',
    columns: [value, value],
    visibleColumns: 2,
    groupBy: null,
    distinct: false,
    orderBy: [],
    limit: null,
    offset: null,
    having: null,
    sources: { relations: [{ name: 'accounts' }], join: { relation: 0 }, equalities: [], nested: [], correlated: [], calls: [], distinctArgs: [], derived: [] },
  })
  t.equal(scatter('SELECT id FROM accounts LIMIT 10').shardSql, 'SELECT id FROM accounts LIMIT 10', 'LIMIT alone: each shard may stop at n')
  t.same(scatter('SELECT id FROM accounts LIMIT 10').limit, { literal: '10' })
  t.equal(scatter('SELECT 1').shardSql, 'SELECT 1')
  const on = scatter('SELECT DISTINCT ON (a.grp) a.id FROM accounts a ORDER BY a.grp, a.created DESC LIMIT 3')
  t.same([on.distinctOn, on.distinct, on.orderBy.map((k) => k.column)], [1, false, [1, 2]], 'DISTINCT ON: the leading ORDER BY key, hidden columns as for any ORDER BY')
  t.equal(on.shardSql, 'SELECT DISTINCT ON (a.grp) a.id, a.grp, a.created FROM accounts a ORDER BY a.grp, a.created DESC LIMIT 3', 'DISTINCT ON stays in the shards’ text')
  const locking = scatter('SELECT a.id FROM accounts a JOIN countries c ON c.code = a.country ORDER BY a.created DESC FOR NO KEY UPDATE OF a FOR SHARE OF c SKIP LOCKED')
  t.equal(locking.shardSql, 'SELECT a.id, a.created FROM accounts a JOIN countries c ON c.code = a.country ORDER BY a.created DESC FOR NO KEY UPDATE OF a FOR SHARE OF c SKIP LOCKED', 'locking clauses stay, after the hidden sort key')
  t.same(locking.orderBy.map((k) => k.column), [1], 'ORDER BY ends where the locking clauses begin')
})

t.test('ORDER BY: positions, names, expressions and hidden keys', async (t) => {
  const p = scatter('SELECT id, name AS n FROM accounts ORDER BY created DESC, n, 1 NULLS FIRST, lower(name) ASC NULLS LAST LIMIT 10 OFFSET 20')
  t.equal(p.shardSql, 'SELECT id, name AS n, created, lower(name) FROM accounts ORDER BY created DESC, n, 1 NULLS FIRST, lower(name) ASC NULLS LAST LIMIT (10)::int8 + (20)::int8')
  t.same(p.orderBy, [
    { column: 2, descending: true, nullsFirst: true },
    { column: 1, descending: false, nullsFirst: false },
    { column: 0, descending: false, nullsFirst: true },
    { column: 3, descending: false, nullsFirst: false },
  ])
  t.same([p.visibleColumns, p.columns.length, p.limit, p.offset], [2, 4, { literal: '10' }, { literal: '20' }])
  const same = scatter('SELECT id, balance * 2 FROM accounts ORDER BY balance * 2 DESC')
  t.same(same.orderBy, [{ column: 1, descending: true, nullsFirst: true }], 'an ORDER BY expression written in the select list is that column')
  t.equal(same.columns.length, 2)
  const named = scatter('SELECT a.id, count FROM accounts a ORDER BY id')
  t.same(named.orderBy, [{ column: 0, descending: false, nullsFirst: false }], 'ORDER BY name matches the output column name')
  t.equal(refusal('SELECT a AS x, b AS x FROM t ORDER BY x'), 'ORDER BY x, which names several output columns')
  t.equal(refusal('SELECT a FROM t ORDER BY a USING <'), 'ORDER BY … USING')
  t.equal(refusal('SELECT a FROM t ORDER BY 3'), 'ORDER BY position 3')
})

t.test('LIMIT / OFFSET / FETCH', async (t) => {
  const p = scatter('SELECT a FROM t ORDER BY a OFFSET $2 ROWS FETCH FIRST $1 ROWS ONLY')
  t.equal(p.shardSql, 'SELECT a FROM t ORDER BY a LIMIT ($1)::int8 + ($2)::int8')
  t.same([p.limit, p.offset], [{ param: 1 }, { param: 2 }])
  const offsetOnly = scatter('SELECT a FROM t ORDER BY a OFFSET 5')
  t.equal(offsetOnly.shardSql, 'SELECT a FROM t ORDER BY a', 'OFFSET alone: every shard sends everything')
  t.same([offsetOnly.limit, offsetOnly.offset], [null, { literal: '5' }])
  t.same(scatter('SELECT a FROM t LIMIT ALL').limit, null)
  t.same(scatter('SELECT a FROM t LIMIT $1::int').limit, { param: 1, cast: 'int4' })
  t.equal(refusal('SELECT a FROM t LIMIT 2 + 3'), 'a LIMIT expression')
  const locking = scatter('SELECT a FROM t ORDER BY a LIMIT 5 FOR UPDATE SKIP LOCKED')
  t.same([locking.shardSql, locking.lockingLimit], ['SELECT a FROM t ORDER BY a LIMIT 5 FOR UPDATE SKIP LOCKED', true], 'a locking read with LIMIT: each shard locks its own first rows (LockingLimit releases the rest)')
  t.equal(scatter('SELECT a FROM t ORDER BY a FOR UPDATE').lockingLimit, undefined, 'without LIMIT, every row it returns is the client\u2019s')
  t.equal(refusal('SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS WITH TIES'), 'FETCH FIRST … WITH TIES')
})

t.test('aggregates: AVG split, whole-table groups, shard query keeps only what can be merged', async (t) => {
  const p = scatter('SELECT count(*), sum(x), min(y), max(y), avg(x), avg(y) AS "mean", bool_and(f), bool_or(f), every(f) FROM t WHERE region = $1')
  t.equal(p.shardSql, 'SELECT count(*), sum(x), min(y), max(y), sum(x) AS avg, sum(y) AS "mean", bool_and(f), bool_or(f), every(f), count(x), count(y) FROM t WHERE region = $1')
  t.same(p.columns, [
    { kind: 'aggregate', fn: 'count' },
    { kind: 'aggregate', fn: 'sum' },
    { kind: 'aggregate', fn: 'min' },
    { kind: 'aggregate', fn: 'max' },
    { kind: 'aggregate', fn: 'avg', sumColumn: 4, countColumn: 9 },
    { kind: 'aggregate', fn: 'avg', sumColumn: 5, countColumn: 10 },
    { kind: 'aggregate', fn: 'bool_and' },
    { kind: 'aggregate', fn: 'bool_or' },
    { kind: 'aggregate', fn: 'bool_and' },
    { kind: 'aggregate', fn: 'count' },
    { kind: 'aggregate', fn: 'count' },
  ])
  t.same([p.visibleColumns, p.groupBy], [9, []], 'no GROUP BY: one group over everything')
  const filtered = scatter('SELECT pg_catalog.avg(x) FILTER (WHERE x > 0), count(*) FILTER (WHERE y) FROM t')
  t.equal(filtered.shardSql, 'SELECT pg_catalog.sum(x) FILTER (WHERE x > 0) AS avg, count(*) FILTER (WHERE y), count(x) FILTER (WHERE x > 0) FROM t')
})

t.test('count(…) cast to an integer type is merged as a count; other casts of aggregates are refused', async (t) => {
  for (const sql of ['SELECT count(*)::int AS n FROM t', 'SELECT count(x)::bigint FROM t', 'SELECT CAST(count(*) AS pg_catalog.int2) FROM t']) {
    const p = scatter(sql)
    t.equal(p.shardSql, sql, `${sql}: sent to the shards as written`)
    t.same(p.columns, [{ kind: 'aggregate', fn: 'count' }], `${sql}: merged as a count`)
  }
  const grouped = scatter('SELECT g, count(*)::int AS n FROM t GROUP BY g ORDER BY count(*)::int DESC')
  t.same([grouped.groupBy, grouped.orderBy], [[0], [{ column: 1, descending: true, nullsFirst: true }]], 'ordered by the merged count')
  const over = 'an expression over the aggregate'
  t.equal(refusal('SELECT sum(x)::int FROM t'), `${over} sum() (only bare aggregates can be merged)`, 'per-shard rounding would change a sum')
  t.equal(refusal('SELECT max(x)::int4 FROM t'), `${over} max() (only bare aggregates can be merged)`)
  t.equal(refusal('SELECT count(*)::numeric FROM t'), `${over} count() (only bare aggregates can be merged)`)
  t.equal(refusal('SELECT count(*)::s.int4 FROM t'), `${over} count() (only bare aggregates can be merged)`, 'a type of another schema is not the integer')
  t.equal(refusal('SELECT count(*)::int + 1 FROM t'), `${over} count() (only bare aggregates can be merged)`)
})

t.test('GROUP BY, HAVING, DISTINCT, ORDER BY and LIMIT of a grouped query', async (t) => {
  const p = scatter('SELECT region, avg(balance), count(*) AS n FROM accounts GROUP BY region, kind HAVING sum(balance) > 100 AND NOT count(*) < $1 OR max(x) IS NULL ORDER BY n DESC, kind LIMIT 5 OFFSET $2')
  t.equal(p.shardSql, 'SELECT region, sum(balance) AS avg, count(*) AS n, count(balance), kind, sum(balance), max(x), ($1)::text, ($2)::int8 FROM accounts GROUP BY region, kind')
  t.same(p.groupBy, [0, 4])
  t.same(p.having, {
    op: 'or',
    args: [
      {
        op: 'and',
        args: [
          { op: 'compare', cmp: '>', left: { op: 'column', column: 5 }, right: { op: 'const', value: '100' } },
          { op: 'not', arg: { op: 'compare', cmp: '<', left: { op: 'column', column: 2 }, right: { op: 'param', param: 1 } } },
        ],
      },
      { op: 'is_null', arg: { op: 'column', column: 6 }, negated: false },
    ],
  })
  t.same(p.orderBy, [
    { column: 2, descending: true, nullsFirst: true },
    { column: 4, descending: false, nullsFirst: false },
  ])
  t.same([p.limit, p.offset, p.visibleColumns], [{ literal: '5' }, { param: 2 }, 3])
  t.same(p.columns.slice(3), [
    { kind: 'aggregate', fn: 'count' },
    value,
    { kind: 'aggregate', fn: 'sum' },
    { kind: 'aggregate', fn: 'max' },
    value,
    value,
  ], 'hidden: avg count, group key, HAVING aggregates, then the parameters only the removed clauses used')

  const positional = scatter('SELECT DISTINCT g, count(*) FROM t GROUP BY 1 HAVING avg(v) >= 2.5 ORDER BY 2 DESC')
  t.equal(positional.shardSql, 'SELECT g, count(*), sum(v), count(v) FROM t GROUP BY 1', 'DISTINCT, HAVING and ORDER BY are applied after the merge')
  t.same([positional.groupBy, positional.distinct], [[0], true])
  t.same(positional.columns[2], { kind: 'aggregate', fn: 'avg', sumColumn: 2, countColumn: 3 })
  t.same(positional.having, { op: 'compare', cmp: '>=', left: { op: 'column', column: 2 }, right: { op: 'const', value: '2.5' } })

  const groupedOnly = scatter('SELECT region FROM accounts GROUP BY region')
  t.same([groupedOnly.groupBy, groupedOnly.columns], [[0], [value]])
  t.equal(refusal('SELECT g FROM t GROUP BY g HAVING sum(x) + 1 > 2'), 'an expression over the aggregate sum() (only bare aggregates can be merged)')
  t.equal(refusal('SELECT g FROM t GROUP BY g HAVING g LIKE $1'), 'a HAVING condition pgshard cannot evaluate after merging (use comparisons of aggregates and constants)')
})

t.test('GROUP BY an output alias: planned as the alias, with the name for the router to check against the catalog', async (t) => {
  const sequelize = scatter('SELECT "customer_id" AS "customerId", count("id") AS "n" FROM "orders" AS "Order" GROUP BY "customerId"')
  t.same([sequelize.groupBy, sequelize.sources.aliasGroups], [[0], ['customerId']], 'Sequelize with underscored columns groups by the attribute')
  t.equal(sequelize.shardSql, 'SELECT "customer_id" AS "customerId", count("id") AS "n" FROM "orders" AS "Order" GROUP BY "customerId"', 'the shards resolve the name as Postgres does')
  const joined = scatter('SELECT date_trunc(\'day\', o.created) AS day, sum(l.n) FROM orders o JOIN lines l ON l.order_id = o.id GROUP BY day')
  t.same([joined.groupBy, joined.sources.aliasGroups], [[0], ['day']], 'over a join of tables')
  const column = scatter('SELECT o.status AS state, lower(o.label) AS status, count(*) FROM orders o GROUP BY status')
  t.same([column.groupBy, column.sources.aliasGroups], [[0], undefined], 'one table and a select-list item o.status: the column exists, and Postgres groups by it')
  t.equal(scatter('SELECT region FROM accounts GROUP BY region').sources.aliasGroups, undefined, 'a name that is no alias: the column')
  t.equal(refusal('SELECT a AS b, c AS b, count(*) FROM t GROUP BY b'), 'GROUP BY b, which names several output columns')
  for (const sql of [
    'SELECT lower(x.a) AS b, count(*) FROM (SELECT a, b FROM t) x GROUP BY b',
    'SELECT lower(a) AS b, count(*) FROM t AS x(a, b) GROUP BY b',
    'SELECT lower(t.a) AS b, count(*) FROM t JOIN generate_series(1, 3) AS b ON b = t.n GROUP BY b',
  ]) {
    t.equal(refusal(sql), 'GROUP BY b, which is both an output alias and maybe a column of a subquery or function in FROM', sql)
  }
})

t.test('DISTINCT without aggregates stays on the shards', async (t) => {
  const p = scatter('SELECT DISTINCT a, b FROM t ORDER BY a LIMIT 3')
  t.equal(p.shardSql, 'SELECT DISTINCT a, b FROM t ORDER BY a LIMIT 3')
  t.same([p.distinct, p.orderBy], [true, [{ column: 0, descending: false, nullsFirst: false }]])
})

t.test('window functions: the columns every window partitions by, for the router to find a sharding key', async (t) => {
  const keys = (sql: string) => scatter(sql).sources.windowKeys
  const [a, b, c] = ['a', 'b', 'c'].map((column) => ({ relation: 0, column }))
  t.same(keys('SELECT a, row_number() OVER (ORDER BY a) FROM t'), [[]], 'no PARTITION BY: no column')
  t.same(keys('SELECT a, sum(x) OVER w FROM t WINDOW w AS (PARTITION BY a)'), [[a]], 'a named window')
  t.same(keys('SELECT a, rank() OVER (w ORDER BY b) FROM t WINDOW w AS (PARTITION BY a, c)'), [[a, c]], 'a window that copies a named one, and rank() is not taken for an aggregate')
  t.same(keys('SELECT lag(x) OVER (PARTITION BY a, b ORDER BY x), count(*) OVER (PARTITION BY t.a, upper(c)) FROM t'), [[a, b], [a]], 'a list per window function, of its columns')
  t.same(keys('SELECT t.a, rank() OVER (PARTITION BY u.k ORDER BY u.x) FROM t JOIN u ON t.k = u.k ORDER BY t.a LIMIT 3'), [[{ relation: 1, column: 'k' }]])
  t.same(keys('SELECT a FROM t ORDER BY row_number() OVER (PARTITION BY b)'), [[b]], 'a window in ORDER BY counts')
  t.equal(keys('SELECT a, (SELECT row_number() OVER () FROM u LIMIT 1) FROM t'), undefined, 'a window of a subquery is that subquery\u2019s')
  t.equal(keys('SELECT a FROM t'), undefined)
  const p = scatter('SELECT a, row_number() OVER (PARTITION BY a ORDER BY b) AS rn FROM t ORDER BY rn DESC LIMIT 5')
  t.equal(p.shardSql, 'SELECT a, row_number() OVER (PARTITION BY a ORDER BY b) AS rn FROM t ORDER BY rn DESC LIMIT 5', 'the shards compute it; the merge orders and limits its values like any column')
  t.same([p.columns, p.orderBy], [[value, value], [{ column: 1, descending: true, nullsFirst: true }]])
})

t.test('count(DISTINCT x): the column counted, or null for what pgshard counts by value; each shard then groups by x too', async (t) => {
  const p = scatter('SELECT g, count(DISTINCT a + 1), count(DISTINCT a) FROM t JOIN u ON t.k = u.k GROUP BY g')
  t.same(p.sources.distinctArgs, [null, null], 'an expression, and a column whose table cannot be told')
  t.equal(p.byDistinctValues?.shardSql, 'SELECT g, count(DISTINCT a + 1), count(DISTINCT a), a + 1, a FROM t JOIN u ON t.k = u.k GROUP BY g, a + 1, a')
  t.same(p.byDistinctValues?.columns.slice(1, 3), [{ kind: 'aggregate', fn: 'count', distinctColumn: 3 }, { kind: 'aggregate', fn: 'count', distinctColumn: 4 }])
  const same = scatter('SELECT count(DISTINCT t.a), count(DISTINCT t.a) FILTER (WHERE b) FROM t WHERE c > 1')
  t.same(same.sources.distinctArgs, [{ relation: 0, column: 'a' }, { relation: 0, column: 'a' }])
  t.equal(same.byDistinctValues?.shardSql, 'SELECT count(DISTINCT t.a), count(DISTINCT t.a) FILTER (WHERE b), t.a FROM t WHERE c > 1 GROUP BY t.a', 'one hidden column for one value')
  t.equal(refusal('SELECT count(DISTINCT (a, b)) FROM t'), undefined, 'a row value is an expression too')
})

t.test('UNION [ALL]: every shard runs it, the merge removes UNION\u2019s duplicates, orders by output columns and limits', async (t) => {
  const p = scatter('(SELECT a, b AS x FROM t WHERE c > 1) UNION (SELECT k, v FROM u JOIN w ON w.k = u.k) ORDER BY x DESC, 1 LIMIT 5 OFFSET $1')
  t.equal(p.shardSql, '(SELECT a, b AS x FROM t WHERE c > 1) UNION (SELECT k, v FROM u JOIN w ON w.k = u.k) ORDER BY x DESC, 1 LIMIT (5)::int8 + ($1)::int8')
  t.same([p.columns, p.visibleColumns, p.distinct, p.orderBy, p.limit, p.offset], [[value, value], 2, true, [{ column: 1, descending: true, nullsFirst: true }, { column: 0, descending: false, nullsFirst: false }], { literal: '5' }, { param: 1 }])
  t.equal(p.sources.union, true)
  t.same(p.sources.derived.map((d) => [d.alias, d.relations.map((r) => r.name), d.equalities.length]), [['SELECT 1 of the UNION', ['t'], 0], ['SELECT 2 of the UNION', ['u', 'w'], 1]], 'each SELECT a level of its own, judged by the router')
  t.same(p.sources.unionColumns, [{ name: 'a', branches: ['a', 'k'] }, { name: 'x', branches: ['x', 'v'] }], 'each column with what each SELECT passes on')
  t.equal(p.sources.keyedBy, undefined, 'the merge removes UNION\u2019s duplicates')
  const all = scatter('SELECT a FROM t UNION ALL SELECT a FROM u UNION ALL SELECT 1 OFFSET $1')
  t.same([all.distinct, all.sources.derived.length, all.shardSql], [false, 3, 'SELECT a FROM t UNION ALL SELECT a FROM u UNION ALL SELECT 1 OFFSET ($1)::int8 * 0'], 'UNION ALL keeps every row; the OFFSET is the merge\u2019s, its parameter stays in the text')
  // Exact on each shard only when equal rows are on one shard: the router looks for a key column (keyedBy).
  const keyed: [string, string | undefined, boolean][] = [
    ['SELECT a FROM t INTERSECT SELECT a FROM u', 'INTERSECT', true],
    ['SELECT a FROM t EXCEPT ALL SELECT a FROM u ORDER BY a', 'EXCEPT', false],
    ['SELECT a FROM t UNION (SELECT a FROM u EXCEPT SELECT a FROM v)', 'EXCEPT', true],
    ['SELECT a FROM t UNION ALL (SELECT a FROM u UNION SELECT a FROM v)', 'UNION', false],
    ['SELECT a FROM t UNION (SELECT a FROM u UNION ALL SELECT a FROM v)', undefined, true],
  ]
  for (const [sql, by, distinct] of keyed) {
    const plan = scatter(sql)
    t.same([plan.sources.keyedBy, plan.distinct, plan.sources.derived.length], [by, distinct, sql.split('SELECT').length - 1], sql)
  }
})

t.test('a CTE named once in FROM is read as the subquery it stands for; the shards run the text with its WITH', async (t) => {
  const p = scatter('WITH x AS (SELECT k, count(*) AS n FROM t GROUP BY k) SELECT u.v, x.n FROM u JOIN x ON x.k = u.k ORDER BY x.n DESC LIMIT 2')
  t.equal(p.shardSql, 'WITH x AS (SELECT k, count(*) AS n FROM t GROUP BY k) SELECT u.v, x.n FROM u JOIN x ON x.k = u.k ORDER BY x.n DESC LIMIT 2')
  t.same(p.sources.relations, [{ name: 'u' }])
  t.same(p.sources.derived.map((d) => [d.alias, d.relations, d.combines, d.groupKeys, d.outputs]), [['x', [{ name: 't' }], 'GROUP BY', [[{ relation: 0, column: 'k' }]], [{ name: 'k', column: { relation: 0, column: 'k' } }]]])
  t.same(p.sources.equalities, [[{ derived: 0, column: 'k' }, { relation: 0, column: 'k' }]])
  const named = scatter('WITH x(a, b) AS (SELECT k, v FROM t), y AS (SELECT a FROM x) SELECT count(*) FROM y')
  t.same(named.sources.derived[0]!.derived[0]!.outputs, [{ name: 'a', column: { relation: 0, column: 'k' } }, { name: 'b', column: { relation: 0, column: 'v' } }], 'a CTE over a CTE; WITH x(a, b) names its columns')
  t.same(scatter('SELECT a FROM (WITH w AS (SELECT 1) SELECT a FROM t, w) s').sources.derived[0]!.derived.length, 1, 'a WITH inside a subquery in FROM')
})

t.test('ranking windows over the groups of an aggregated query: computed by the proxy from output columns', async (t) => {
  const p = scatter('SELECT g, count(*), rank() OVER (ORDER BY count(*) DESC) AS r, row_number() OVER (PARTITION BY h ORDER BY max(x) NULLS FIRST) FROM t GROUP BY g, h ORDER BY r LIMIT 5')
  t.equal(p.shardSql, 'SELECT g, count(*), rank() OVER (ORDER BY count(*) DESC) AS r, row_number() OVER (PARTITION BY h ORDER BY max(x) NULLS FIRST), h, max(x) FROM t GROUP BY g, h', 'the shards still compute them (their type); hidden columns for what the windows read')
  t.same(p.windows, [
    { column: 2, fn: 'rank', partition: [], order: [{ column: 1, descending: true, nullsFirst: true }] },
    { column: 3, fn: 'row_number', partition: [4], order: [{ column: 5, descending: false, nullsFirst: true }] },
  ])
  t.same(p.sources.windowKeys, undefined, 'not a window the shards must compute whole')
  t.same(scatter('SELECT k, rank() OVER (PARTITION BY k ORDER BY v) FROM t').windows, undefined, 'without aggregates, windows stay the shards\u2019 (partitioned by a key)')
})

t.test('sum and avg of DISTINCT x: folded by value like count, avg with a hidden count of the same distinct values', async (t) => {
  const p = scatter('SELECT g, sum(DISTINCT a), avg(DISTINCT b) FILTER (WHERE c > 1) FROM t GROUP BY g ORDER BY 3')
  t.same(p.sources.distinctArgs, [{ relation: 0, column: 'a' }, { relation: 0, column: 'b' }])
  t.equal(p.shardSql, 'SELECT g, sum(DISTINCT a), sum(DISTINCT b) FILTER (WHERE c > 1) AS avg, count(DISTINCT b) FILTER (WHERE c > 1) FROM t GROUP BY g', 'a key\u2019s distinct sums and counts add up')
  t.equal(p.byDistinctValues?.shardSql, 'SELECT g, sum(DISTINCT a), sum(DISTINCT b) FILTER (WHERE c > 1) AS avg, count(DISTINCT b) FILTER (WHERE c > 1), a, b FROM t GROUP BY g, a, b')
  t.same(p.byDistinctValues?.columns.slice(1, 4), [
    { kind: 'aggregate', fn: 'sum', distinctColumn: 4 },
    { kind: 'aggregate', fn: 'avg', sumColumn: 2, countColumn: 3, distinctColumn: 5 },
    { kind: 'aggregate', fn: 'count', distinctColumn: 5 },
  ], 'avg\u2019s sum and hidden count are both folded once per value of b')
  const having = scatter('SELECT g FROM t GROUP BY g HAVING sum(DISTINCT a) > 2')
  t.same(having.byDistinctValues?.columns[1], { kind: 'aggregate', fn: 'sum', distinctColumn: 2 }, 'in HAVING too')
  t.equal(refusal('SELECT sum(DISTINCT a), min(DISTINCT b) FROM t'), undefined, 'min of DISTINCT values merges as without')
})

t.test('percentile_cont, percentile_disc and mode: the shards count the rows of each ORDER BY value, which they group by too', async (t) => {
  const p = scatter("SELECT g, percentile_cont(0.5) WITHIN GROUP (ORDER BY a DESC NULLS LAST) FILTER (WHERE c > 1), mode() WITHIN GROUP (ORDER BY lower(b) COLLATE \"C\"), count(DISTINCT a) FROM t GROUP BY g")
  t.same(p.sources.distinctArgs, [null, null, { relation: 0, column: 'a' }], 'folded by value whatever the sharding key')
  t.equal(
    p.byDistinctValues?.shardSql,
    'SELECT g, percentile_cont(0.5) WITHIN GROUP (ORDER BY a DESC NULLS LAST) FILTER (WHERE c > 1), mode() WITHIN GROUP (ORDER BY lower(b) COLLATE "C"), count(DISTINCT a), count(a) FILTER (WHERE c > 1), (0.5)::float8, count(lower(b) COLLATE "C"), a, lower(b) COLLATE "C" FROM t GROUP BY g, a, lower(b) COLLATE "C"',
  )
  t.same(p.byDistinctValues?.columns.slice(1, 4), [
    { kind: 'aggregate', fn: 'percentile_cont', orderedSet: { count: 4, fraction: 5, descending: true, value: 7 } },
    { kind: 'aggregate', fn: 'mode', orderedSet: { count: 6, descending: false, collation: 'C', value: 8 } },
    { kind: 'aggregate', fn: 'count', distinctColumn: 7 },
  ], 'count(DISTINCT a) and the percentile of a share the hidden a')
  t.equal(scatter('SELECT percentile_disc($1) WITHIN GROUP (ORDER BY x) FROM t').byDistinctValues?.shardSql, 'SELECT percentile_disc($1) WITHIN GROUP (ORDER BY x), count(x), ($1)::float8, x FROM t GROUP BY x', 'a fraction as a parameter')
  const many = scatter('SELECT percentile_cont(ARRAY[0.5, $1]::float8[]) WITHIN GROUP (ORDER BY x) FROM t').byDistinctValues
  t.equal(many?.shardSql, 'SELECT percentile_cont(ARRAY[0.5, $1]::float8[]) WITHIN GROUP (ORDER BY x), count(x), (ARRAY[0.5, $1]::float8[])::float8[], x FROM t GROUP BY x', 'an array of fractions')
  t.same(many?.columns[0], { kind: 'aggregate', fn: 'percentile_cont', orderedSet: { count: 1, fraction: 2, fractions: true, descending: false, value: 3 } })
})

t.test('what cannot be merged is refused, naming the construct', async (t) => {
  const cases: [string, string][] = [
    ['SELECT g, count(*), sum(count(*)) OVER () FROM t GROUP BY g', 'an expression over the aggregate count() (only bare aggregates can be merged)'],
    ['SELECT g, count(*), lag(g) OVER (ORDER BY g) FROM t GROUP BY g', 'a window function with GROUP BY or aggregates (pgshard computes only row_number(), rank() and dense_rank() in the select list over the merged groups, with OVER (PARTITION BY … ORDER BY …) of select-list expressions, aggregates or columns)'],
    ['SELECT g, rank() OVER w FROM t GROUP BY g WINDOW w AS (ORDER BY g)', 'a window function with GROUP BY or aggregates (pgshard computes only row_number(), rank() and dense_rank() in the select list over the merged groups, with OVER (PARTITION BY … ORDER BY …) of select-list expressions, aggregates or columns)'],
    ['SELECT g, count(*) FROM t GROUP BY g ORDER BY rank() OVER (ORDER BY g)', 'a window function with GROUP BY or aggregates (pgshard computes only row_number(), rank() and dense_rank() in the select list over the merged groups, with OVER (PARTITION BY … ORDER BY …) of select-list expressions, aggregates or columns)'],
    ['SELECT g, rank() OVER (ORDER BY lower(g)) FROM t GROUP BY g', 'a window function with GROUP BY or aggregates (pgshard computes only row_number(), rank() and dense_rank() in the select list over the merged groups, with OVER (PARTITION BY … ORDER BY …) of select-list expressions, aggregates or columns)'],
    ['SELECT *, rank() OVER (ORDER BY count(*)) FROM t GROUP BY g', 'a window function with GROUP BY or aggregates (pgshard computes only row_number(), rank() and dense_rank() in the select list over the merged groups, with OVER (PARTITION BY … ORDER BY …) of select-list expressions, aggregates or columns)'],
    ['SELECT json_agg(a) FROM t', 'the aggregate json_agg()'],
    ['SELECT array_agg(a ORDER BY b) FROM t', 'array_agg(x ORDER BY …) by other than x itself (each shard\u2019s part would be ordered by values the merge does not see)'],
    ['SELECT string_agg(a, b) FROM t', 'string_agg() with a delimiter that is not a constant'],
    ['SELECT coalesce(string_agg(a, \',\'), \'\') FROM t', 'an expression over the aggregate string_agg() (only bare aggregates can be merged)'],
    ['SELECT g FROM t GROUP BY g ORDER BY string_agg(a, \',\')', 'string_agg() other than as a select-list item of its own'],
    ['SELECT percentile_cont(ARRAY[0.5, b]) WITHIN GROUP (ORDER BY a) FROM t', 'percentile_cont() of a fraction that is not a constant'],
    ['SELECT percentile_disc(b) WITHIN GROUP (ORDER BY a) FROM t', 'percentile_disc() of a fraction that is not a constant'],
    ['SELECT mode() WITHIN GROUP (ORDER BY a USING <) FROM t', 'mode() WITHIN GROUP (ORDER BY … USING)'],
    ['SELECT g FROM t GROUP BY g ORDER BY mode() WITHIN GROUP (ORDER BY a)', 'mode() other than as a select-list item of its own'],
    ['SELECT rank(1) WITHIN GROUP (ORDER BY a) FROM t', 'the aggregate rank()'],
    ['SELECT max(a ORDER BY b) FROM t', 'an ordered aggregate max(… ORDER BY …)'],
    ['SELECT sum(x) / count(x) FROM t', 'an expression over the aggregate sum() (only bare aggregates can be merged)'],
    ['SELECT coalesce(max(x), y) FROM t', 'an expression over the aggregate max() (only bare aggregates can be merged)'],
    ['SELECT coalesce(avg(x), 0) FROM t', 'an expression over the aggregate avg() (only bare aggregates can be merged)'],
    ['SELECT coalesce(sum(DISTINCT x), 0) FROM t', 'an expression over the aggregate sum() (only bare aggregates can be merged)'],
    ['SELECT coalesce(max(x), 0) + 1 FROM t', 'an expression over the aggregate max() (only bare aggregates can be merged)'],
    ['SELECT DISTINCT ON (a) a, b FROM t', 'DISTINCT ON without ORDER BY starting with its expressions'],
    ['SELECT DISTINCT ON (a) a, count(*) FROM t GROUP BY a ORDER BY a', 'DISTINCT ON with GROUP BY or aggregates'],
    ['SELECT count(*) FROM t UNION ALL SELECT count(*) FROM u', 'the aggregate count() in a SELECT of a UNION across shards: each shard would apply it to its own rows only'],
    ['SELECT * FROM t UNION SELECT * FROM u', 'a * in a UNION across shards (name the columns)'],
    ['SELECT a, b FROM t UNION SELECT a, b FROM u ORDER BY a + b', 'an ORDER BY of a set operation that is not one output column'],
    ['SELECT a, count(*) FROM t GROUP BY ROLLUP (a)', 'GROUPING SETS, ROLLUP or CUBE'],
    ['SELECT a, b, count(*) FROM t GROUP BY GROUPING SETS ((a), (b))', 'GROUPING SETS, ROLLUP or CUBE'],
    ['WITH x AS (SELECT a FROM t) SELECT a FROM x, x y', 'a WITH query (CTE) across shards'],
    ['WITH RECURSIVE x(a) AS (SELECT 1 UNION ALL SELECT a + 1 FROM x) SELECT a FROM x', 'a WITH query (CTE) across shards'],
    ['SELECT a INTO b FROM t', 'SELECT … INTO'],
    ['VALUES (1), (2)', 'a VALUES list'],
    ['SELECT json_agg(a) FROM t', 'the aggregate json_agg()'],
    ['SELECT 1; SELECT 2', 'several statements in one query'],
    ['SELECT a FROM XMLTABLE(\'/r\' PASSING t.doc COLUMNS a int) x', 'a FROM item that is not a table across shards'],
    ['SELECT a.*, count(*), b.* FROM a JOIN b ON a.k = b.k GROUP BY a.k, b.k', 'a merge by a column between two * in the select list (name the columns)'],
    ['SELECT * FROM t ORDER BY 2', 'ORDER BY position 2 at or after a * in the select list (name the column)'],
    ['SELECT *, count(*) FROM t GROUP BY 1', 'GROUP BY position 1 at or after a * in the select list (name the column)'],
    ['SELECT DISTINCT * FROM t ORDER BY a', 'SELECT DISTINCT with ORDER BY keys that are not in the select list'],
  ]
  for (const [sql, reason] of cases) t.equal(refusal(sql), reason, sql)
  t.equal(refusal('SELECT a FROM t WHERE b IN (SELECT unnest($1::int[]))'), undefined, 'a subquery over no table is fine')
})

t.test('SELECT *: the star stays in the shard query and counts as one planned column', async (t) => {
  const plain = scatter('SELECT * FROM accounts')
  t.same([plain.shardSql, plain.columns, plain.visibleColumns], ['SELECT * FROM accounts', [{ kind: 'star' }], 1])
  const ordered = scatter('SELECT * FROM accounts ORDER BY id LIMIT 10')
  t.equal(ordered.shardSql, 'SELECT *, id FROM accounts ORDER BY id LIMIT 10', 'the ORDER BY key travels as a hidden column after the star')
  t.same(ordered.columns, [{ kind: 'star' }, { kind: 'value' }])
  t.same(ordered.orderBy, [{ column: 1, descending: false, nullsFirst: false }])
  const mixed = scatter('SELECT a.id AS first, a.*, 2 AS two FROM accounts a ORDER BY 1 DESC, two')
  t.same(mixed.orderBy, [
    { column: 0, descending: true, nullsFirst: true },
    { column: 2, descending: false, nullsFirst: false },
  ], 'positions before the star and names after it are known')
  const agg = scatter('SELECT *, avg(x) FROM t GROUP BY id ORDER BY avg(x) DESC')
  t.equal(agg.shardSql, 'SELECT *, sum(x) AS avg, count(x), id FROM t GROUP BY id')
  t.same(agg.columns, [{ kind: 'star' }, { kind: 'aggregate', fn: 'avg', sumColumn: 1, countColumn: 2 }, { kind: 'aggregate', fn: 'count' }, { kind: 'value' }])
  t.same([agg.groupBy, agg.orderBy], [[3], [{ column: 1, descending: true, nullsFirst: true }]])
})

t.test('sources: FROM relations, join tree, key equalities, subquery tables, calls the merger does not know', async (t) => {
  const join = scatter('SELECT a.id, sum(o.total), lower(a.name) FROM accounts a JOIN orders o ON o.account_id = a.id LEFT JOIN countries c USING (code) WHERE a.region = (SELECT r FROM regions LIMIT 1) GROUP BY a.id, lower(a.name)')
  t.same(join.sources, {
    relations: [{ name: 'accounts', alias: 'a' }, { name: 'orders', alias: 'o' }, { name: 'countries', alias: 'c' }],
    join: { join: 'left', left: { join: 'inner', left: { relation: 0 }, right: { relation: 1 } }, right: { relation: 2 } },
    equalities: [[{ relation: 1, column: 'account_id' }, { relation: 0, column: 'id' }]],
    nested: [{ name: 'regions' }],
    correlated: [],
    calls: ['lower'],
    distinctArgs: [],
    derived: [],
  })
  t.same(scatter('SELECT 1 FROM a, b WHERE a.k = b.k AND b.k = 1').sources.join, { join: 'inner', left: { relation: 0 }, right: { relation: 1 } }, 'a comma is an inner join')
  t.same(scatter('SELECT 1 FROM a FULL JOIN b ON a.k = b.k').sources.equalities, [[{ relation: 0, column: 'k' }, { relation: 1, column: 'k' }]], 'FULL JOIN rows with both sides satisfy ON')
  t.same(
    scatter('SELECT 1 FROM a JOIN b USING (k) JOIN c USING (k)').sources.equalities,
    [[{ relation: 0, column: 'k' }, { relation: 2, column: 'k' }], [{ relation: 0, column: 'k' }, { relation: 1, column: 'k' }]],
    'USING over a join equates the merged column',
  )
  t.same(scatter('SELECT 1 FROM a JOIN b ON a.k = b.k OR a.x = b.x').sources.equalities, [], 'no equality under OR')
  t.same(scatter('SELECT 1 FROM a JOIN b ON k = b.k').sources.equalities, [], 'an unqualified column of a join is not resolved')
  const lateral = scatter('SELECT a FROM t, LATERAL (SELECT a FROM u) s')
  t.same([lateral.sources.join, lateral.sources.nested, lateral.sources.correlated], [{ join: 'inner', left: { relation: 0 }, right: { function: 'a LATERAL subquery' } }, [{ name: 'u' }], []], 'a LATERAL subquery not tied to the level: its tables are for the router to judge, as any subquery’s')
  t.same(scatter('SELECT g FROM t, generate_series(1, 3) g').sources.join, { join: 'inner', left: { relation: 0 }, right: { function: 'generate_series' } })
  t.same(scatter("SELECT my_agg(x), count(*), max(y) FROM t").sources.calls, ['my_agg'], 'unknown functions are listed for the router to check against the catalog')
})

t.test('count(DISTINCT col) and subqueries in FROM are described for the router to judge', async (t) => {
  const counted = scatter('SELECT count(DISTINCT i.id), count(DISTINCT id), min(DISTINCT x) FROM items i')
  t.same(counted.sources.distinctArgs, [{ relation: 0, column: 'id' }, { relation: 0, column: 'id' }], 'qualified, or unqualified with one table')
  t.same(counted.columns.slice(0, 3), [{ kind: 'aggregate', fn: 'count' }, { kind: 'aggregate', fn: 'count' }, { kind: 'aggregate', fn: 'min' }], 'merged as plain counts; DISTINCT changes nothing for min')
  t.same(scatter('SELECT count(DISTINCT public.t.k) FROM public.t').sources.distinctArgs, [{ relation: 0, column: 'k' }], 'schema.table.column')
  const typeorm = scatter(
    'SELECT DISTINCT "d"."I_id" AS "ids", "d"."I_id" FROM (SELECT "I"."id" AS "I_id", lower("I"."name") AS "I_name" FROM "items" "I" LEFT JOIN "countries" "C" ON "C"."code" = "I"."country" WHERE "C"."code" = $1) "d" ORDER BY "d"."I_id" ASC, "I_id" ASC LIMIT 2',
  )
  t.same(typeorm.sources.join, { derived: 0 })
  t.same(typeorm.orderBy.map((k) => k.column), [0, 1], 'ORDER BY "I_id" names the output column "I_id"')
  const byInput = scatter('SELECT DISTINCT d.id AS ids, d.name FROM (SELECT i.id, i.name FROM items i) d ORDER BY d.name DESC, id')
  t.same(byInput.orderBy.map((k) => k.column), [1, 0], 'with one relation in FROM, a bare input column is the qualified one in the select list')
  t.equal(refusal('SELECT DISTINCT d.id AS ids FROM (SELECT id FROM items) d, generate_series(1, 2) g ORDER BY id'), 'SELECT DISTINCT with ORDER BY keys that are not in the select list', 'not with two FROM items')
  t.same(typeorm.sources.relations, [], 'the outer level reads no table of its own')
  t.same(typeorm.sources.derived, [{
    relations: [{ name: 'items', alias: 'I' }, { name: 'countries', alias: 'C' }],
    join: { join: 'left', left: { relation: 0 }, right: { relation: 1 } },
    equalities: [[{ relation: 1, column: 'code' }, { relation: 0, column: 'country' }]],
    calls: ['lower'],
    derived: [],
    nested: [],
    correlated: [],
    distinctArgs: [],
    alias: 'd',
    outputs: [{ name: 'I_id', column: { relation: 0, column: 'id' } }],
    stars: [],
    derivedStars: [],
  }], 'the subquery is described like a FROM level: its tables, joins and calls, and the columns it passes on')
  const passed = (sql: string) => scatter(sql).sources.derived.map((d) => ({ outputs: d.outputs, stars: d.stars }))
  t.same(passed('SELECT 1 FROM (SELECT t.id, t.k AS key, k + 1 AS next, u.* FROM t JOIN u ON u.x = t.x) s'), [{
    outputs: [{ name: 'id', column: { relation: 0, column: 'id' } }, { name: 'key', column: { relation: 0, column: 'k' } }],
    stars: [1],
  }], 'columns as they are, renamed; not expressions; a table\u2019s star')
  t.same(passed('SELECT 1 FROM (SELECT id, v FROM t) AS s(a, b), (SELECT * FROM u) r'), [
    { outputs: [{ name: 'a', column: { relation: 0, column: 'id' } }, { name: 'b', column: { relation: 0, column: 'v' } }], stars: [] },
    { outputs: [], stars: [0] },
  ], 'an alias list renames by position')
  t.same(passed('SELECT 1 FROM (SELECT * FROM t) AS s(a)'), [{ outputs: [], stars: [] }], 'not behind a star')
  t.same(scatter('SELECT 1 FROM (SELECT * FROM (SELECT k FROM t) AS i(a)) s, (SELECT q.* FROM (SELECT 1) q) r').sources.derived.map((d) => d.derivedStars), [[0], [0]], 'a star over subqueries passes theirs on')
  t.same(passed('SELECT 1 FROM (SELECT q.y AS z FROM (SELECT x AS y FROM t) q) s'), [{ outputs: [{ name: 'z', column: { derived: 0, column: 'y' } }], stars: [] }], 'a column of a subquery of its own')
  t.same(
    scatter('SELECT 1 FROM t JOIN (SELECT k FROM u) s ON s.k = t.id JOIN (SELECT k FROM v) r ON r.k = s.k').sources.equalities,
    [[{ derived: 0, column: 'k' }, { relation: 0, column: 'id' }], [{ derived: 1, column: 'k' }, { derived: 0, column: 'k' }]],
    'equalities name subqueries\u2019 columns too',
  )
  const nested = scatter('SELECT x FROM (SELECT x FROM (SELECT t.x, count(*) OVER () FROM t) a) b JOIN r ON r.x = b.x')
  t.same(nested.sources.join, { join: 'inner', left: { derived: 0 }, right: { relation: 0 } })
  t.same(nested.sources.derived[0]!.derived[0]!.combines, 'a window function', 'subqueries in FROM nest')
  const combining: [string, string][] = [
    ['SELECT k, n FROM (SELECT k, count(*) AS n FROM t GROUP BY k) s', 'GROUP BY'],
    ['SELECT n FROM (SELECT count(*) AS n FROM t) s', 'the aggregate count()'],
    ['SELECT k FROM (SELECT DISTINCT k FROM t) s', 'DISTINCT'],
    ['SELECT k FROM (SELECT k, rank() OVER (ORDER BY k) FROM t) s', 'a window function'],
    ['SELECT k FROM (SELECT k, row_number() OVER (PARTITION BY k) FROM t) s', 'a window function'],
    ["SELECT k FROM (SELECT string_agg(k, ',') AS k FROM t) s", 'the aggregate string_agg()'],
  ]
  for (const [sql, what] of combining) t.equal(scatter(sql).sources.derived[0]!.combines, what, sql)
  t.equal(scatter('SELECT * FROM (SELECT * FROM (SELECT k FROM t ORDER BY k LIMIT 5) i) s').sources.derived[0]!.derived[0]!.combines, 'LIMIT or OFFSET', 'a LIMIT deeper down')
  t.equal(scatter('SELECT k FROM (SELECT k, upper(v) FROM t WHERE v > $1 ORDER BY k) s').sources.derived[0]!.combines, undefined, 'filtering, computing per row and ordering combine nothing')
  const groupKeys = (sql: string) => scatter(sql).sources.derived[0]!.groupKeys
  const k = { relation: 0, column: 'k' }
  const j = { relation: 0, column: 'j' }
  t.same(groupKeys('SELECT * FROM (SELECT k, v, row_number() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM t) s WHERE rn = 1'), [[k]], 'windows partition by their columns')
  t.same(groupKeys('SELECT * FROM (SELECT k, j, sum(v), rank() OVER (PARTITION BY k ORDER BY sum(v)) FROM t GROUP BY k, j) s'), [[k, j], [k]], 'GROUP BY and windows: a list each')
  t.equal(groupKeys('SELECT * FROM (SELECT k, j, rank() OVER (ORDER BY j) FROM t GROUP BY k) s'), undefined, 'a window without PARTITION BY')
  t.equal(groupKeys('SELECT * FROM (SELECT DISTINCT ON (v) k, row_number() OVER (PARTITION BY k) FROM t ORDER BY v) s'), undefined, 'DISTINCT ON combines rows by no column')
  t.equal(groupKeys('SELECT * FROM (SELECT count(*) AS n, max(k) OVER (PARTITION BY k) FROM t) s'), undefined, 'nor does an aggregate without GROUP BY')
  t.equal(groupKeys('SELECT * FROM (SELECT k, row_number() OVER (PARTITION BY k) FROM t LIMIT 3) s'), undefined, 'nor LIMIT')
  t.same(
    scatter('SELECT x FROM t WHERE x IN (SELECT y FROM (SELECT y FROM u) s)').sources.nested,
    [{ name: 'u' }],
    'a subquery in FROM of a subquery elsewhere stays nested',
  )
})

t.test('the text is mapped with keywords used as labels, strings, comments and non-ASCII', async (t) => {
  const p = scatter(`SELECT a AS "limit", t.order, 'FROM é' AS x, b IS DISTINCT FROM c FROM t /* ORDER BY z */ WHERE d = 'ORDER BY' ORDER BY 1 LIMIT 5 OFFSET 1`)
  t.equal(p.shardSql, `SELECT a AS "limit", t.order, 'FROM é' AS x, b IS DISTINCT FROM c FROM t /* ORDER BY z */ WHERE d = 'ORDER BY' ORDER BY 1 LIMIT (5)::int8 + (1)::int8`)
  t.same(p.orderBy, [{ column: 0, descending: false, nullsFirst: false }])
  const avg = scatter("SELECT 'ü' AS k, avg(x) FROM t WHERE n = 'ö' GROUP BY 1")
  t.equal(avg.shardSql, "SELECT 'ü' AS k, sum(x) AS avg, count(x) FROM t WHERE n = 'ö' GROUP BY 1")
})

t.test('every rewritten shard query parses and has the planned columns', async (t) => {
  const statements = [
    'SELECT id, name FROM accounts ORDER BY created DESC LIMIT 10 OFFSET 20',
    'SELECT region, avg(balance), count(*) AS n FROM accounts GROUP BY region HAVING sum(balance) > 100 ORDER BY n DESC LIMIT 5',
    'SELECT g, count(*) FROM t GROUP BY 1 HAVING avg(v) > $1 ORDER BY 2 LIMIT $2',
    'SELECT a, b FROM t ORDER BY a + b LIMIT $1 OFFSET $2',
    'SELECT max(x), min(y) FROM t WHERE k IN (1, 2, 3)',
    'SELECT DISTINCT avg(x) FROM t GROUP BY g ORDER BY 1 DESC',
  ]
  for (const sql of statements) {
    const p = scatter(sql)
    const target = parseSql(p.shardSql).stmts?.[0]?.stmt
    t.ok(target !== undefined && 'SelectStmt' in target && target.SelectStmt.targetList?.length === p.columns.length, p.shardSql)
    t.ok(p.visibleColumns <= p.columns.length)
    for (const key of p.orderBy) t.ok(key.column < p.columns.length)
    for (const g of p.groupBy ?? []) t.ok(g < p.columns.length)
  }
})

t.test('a plan from the cache serves every literal: restore them into the shard query', async (t) => {
  const cache = new StatementCache(10)
  const first = cache.lookup("SELECT region, avg(balance) FROM accounts WHERE kind = 'gold' GROUP BY region HAVING count(*) > 3 ORDER BY 2 DESC LIMIT 7")
  const second = cache.lookup("SELECT region, avg(balance) FROM accounts WHERE kind = 'silver' GROUP BY region HAVING count(*) > 9 ORDER BY 2 DESC LIMIT 2")
  t.equal(second.hit, true)
  t.equal(second.plan, first.plan, 'one plan for both')
  const shardSql = first.plan.scatter!.shardSql
  t.equal(shardSql, 'SELECT region, sum(balance) AS avg, count(balance), count(*), ($2)::text, ($3)::int8 FROM accounts WHERE kind = $1 GROUP BY region')
  t.equal(
    restoreLiterals(shardSql, second.firstParam, second.sources),
    "SELECT region, sum(balance) AS avg, count(balance), count(*), (9)::text, (2)::int8 FROM accounts WHERE kind = 'silver' GROUP BY region",
  )
  t.same(second.plan.scatter!.having, { op: 'compare', cmp: '>', left: { op: 'column', column: 3 }, right: { op: 'param', param: 2 } })
  t.same(second.literals, ['silver', '9', '2'])
})

t.test('a rewrite never lets a line comment swallow the shard query', async (t) => {
  const p = scatter('SELECT a FROM t ORDER BY a -- sorted\nLIMIT 5 OFFSET 2')
  t.equal(p.shardSql, 'SELECT a FROM t ORDER BY a -- sorted\n LIMIT (5)::int8 + (2)::int8')
  const g = scatter('SELECT g, count(*) FROM t GROUP BY g -- per g\nORDER BY 2')
  t.equal(g.shardSql, 'SELECT g, count(*) FROM t GROUP BY g -- per g\n', 'the line break that ends the comment stays')
})

t.test('select-list items starting with any token are mapped', async (t) => {
  const p = scatter("SELECT (a + 1) * 2, -b, CASE WHEN c THEN 1 END, 'x' || d, ARRAY[e], ROW(f, g), -(h), NOT i, $1::int, e'\\n' FROM t ORDER BY 1 LIMIT 2 OFFSET 3")
  t.equal(p.visibleColumns, 10)
  t.match(p.shardSql, /LIMIT \(2\)::int8 \+ \(3\)::int8$/)
})

t.test('count(*) of a subquery with LIMIT / OFFSET: the shards count their first n + m rows, the merger caps the sum', async (t) => {
  const p = scatter('SELECT count(*) FROM (SELECT id FROM t ORDER BY id LIMIT $1 OFFSET $2) s')
  t.equal(p.shardSql, 'SELECT count(*) FROM (SELECT id FROM t ORDER BY id LIMIT ($1)::int8 + ($2)::int8) s')
  t.same(p.countCap, { limit: { param: 1 }, offset: { param: 2 } })
  t.equal(p.sources.derived[0]!.combines, undefined, 'the LIMIT no longer combines rows the shards must see together')
  const noOffset = scatter('SELECT COUNT(*) FROM (SELECT 1 AS one FROM t LIMIT 5) subquery_for_count')
  t.equal(noOffset.shardSql, 'SELECT COUNT(*) FROM (SELECT 1 AS one FROM t LIMIT 5) subquery_for_count', 'without OFFSET the text stays')
  t.same(noOffset.countCap, { limit: { literal: '5' }, offset: null })
  for (const sql of ['SELECT count(*) FROM (SELECT DISTINCT k FROM t LIMIT 5) s', 'SELECT count(*) FROM (SELECT k, count(*) FROM t GROUP BY k LIMIT 5) s']) {
    const plan = scatter(sql)
    t.equal(plan.countCap, undefined, sql)
    t.ok(plan.sources.derived[0]!.combines !== undefined, `${sql}: combines`)
  }
  // The outer query does more than count: the subquery's rows are shared out instead (SharedSubqueries).
  for (const sql of ['SELECT count(*) FROM (SELECT k FROM t LIMIT 5) s WHERE k > 1', 'SELECT count(k) FROM (SELECT k FROM t LIMIT 5) s', 'SELECT count(*), 1 FROM (SELECT k FROM t LIMIT 5) s']) {
    const plan = scatter(sql)
    t.equal(plan.countCap, undefined, sql)
    t.equal(plan.limited?.length, 1, `${sql}: its rows shared out`)
  }
})

t.test('ranking windows over all rows of a statement ordered by them: the merge orders by the window\u2019s keys and numbers rows', async (t) => {
  const p = scatter('SELECT name, rank() OVER (ORDER BY score DESC, id) AS r, row_number() OVER (ORDER BY score DESC, id) FROM t ORDER BY r, name LIMIT 5')
  t.same(p.windows, [
    { column: 1, fn: 'rank', partition: [], order: [{ column: 3, descending: true, nullsFirst: true }, { column: 4, descending: false, nullsFirst: false }] },
    { column: 2, fn: 'row_number', partition: [], order: [{ column: 3, descending: true, nullsFirst: true }, { column: 4, descending: false, nullsFirst: false }] },
  ])
  t.same(p.orderBy.map((k) => k.column), [3, 4, 0], 'the window\u2019s keys, then the statement\u2019s other keys')
  t.equal(p.shardSql, 'SELECT name, rank() OVER (ORDER BY score DESC, id) AS r, row_number() OVER (ORDER BY score DESC, id), "score", "id" FROM t ORDER BY r, name LIMIT 5', 'the shards order by their own numbers, which order rows alike')
  t.equal(p.sources.windowKeys, undefined, 'not windows the router must find partitioned by a key')
  for (const sql of [
    'SELECT name, rank() OVER (ORDER BY score) AS r FROM t ORDER BY name',
    'SELECT name, rank() OVER (ORDER BY score) AS r FROM t ORDER BY r DESC',
    'SELECT name, rank() OVER (ORDER BY score) AS r, rank() OVER (ORDER BY id) FROM t ORDER BY r',
    'SELECT name, rank() OVER (PARTITION BY g ORDER BY score) AS r FROM t ORDER BY r',
    'SELECT name, rank() OVER (ORDER BY score) AS r, lag(name) OVER (ORDER BY score) FROM t ORDER BY r',
    'SELECT DISTINCT name, rank() OVER (ORDER BY score) AS r FROM t ORDER BY r',
  ]) t.ok(scatter(sql).sources.windowKeys !== undefined && scatter(sql).windows === undefined, `${sql}: left to the router (partitioned by a key, or refused)`)
})

t.test('a grouped SELECT the merge cannot regroup: each shard computes its groups whole, if the router finds them by a key', async (t) => {
  const p = scatter("SELECT g, json_agg(v ORDER BY w), count(*) FROM t GROUP BY g HAVING sum(x) + 1 > 2 ORDER BY count(*) DESC, g LIMIT 5 OFFSET $1")
  t.same(p.sources.wholeGroups, { keys: [[{ relation: 0, column: 'g' }]], unmergeable: 'the aggregate json_agg()' })
  t.equal(p.shardSql, 'SELECT g, json_agg(v ORDER BY w), count(*) FROM t GROUP BY g HAVING sum(x) + 1 > 2 ORDER BY count(*) DESC, g LIMIT (5)::int8 + ($1)::int8', 'HAVING stays on the shards; LIMIT n OFFSET m folded as for rows')
  t.same([p.columns, p.groupBy, p.having, p.orderBy.map((k) => k.column)], [[value, value, value], null, null, [2, 0]], 'the merge orders and limits rows')
  t.same(scatter('SELECT t.g, u.h, json_agg(v) FROM t JOIN u ON u.k = t.k GROUP BY 1, u.h').sources.wholeGroups?.keys, [[{ relation: 0, column: 'g' }, { relation: 1, column: 'h' }]], 'positions and columns of either table')
  t.equal(analyzeStatement('SELECT json_agg(v) FROM t').scatter, undefined, 'without GROUP BY: refused')
  t.equal(analyzeStatement('SELECT g, json_agg(v) FROM t GROUP BY ROLLUP (g)').scatter, undefined, 'grouping sets: refused')
})

t.test('array_agg: put together in any order, or ordered by its own value', async (t) => {
  const p = scatter('SELECT g, array_agg(v), array_agg(v ORDER BY v DESC), array_agg(w ORDER BY w NULLS FIRST) FILTER (WHERE v > 1) FROM t GROUP BY g')
  t.same(p.columns.slice(1, 4), [
    { kind: 'aggregate', fn: 'array_agg' },
    { kind: 'aggregate', fn: 'array_agg', order: { descending: true, nullsFirst: true } },
    { kind: 'aggregate', fn: 'array_agg', order: { descending: false, nullsFirst: true } },
  ])
  t.equal(p.shardSql, 'SELECT g, array_agg(v), array_agg(v ORDER BY v DESC), array_agg(w ORDER BY w NULLS FIRST) FILTER (WHERE v > 1) FROM t GROUP BY g', 'the shards run it as written')
  t.same(scatter('SELECT array_agg(DISTINCT v), array_agg(DISTINCT v ORDER BY v DESC) FROM t').columns, [
    { kind: 'aggregate', fn: 'array_agg', order: { descending: false, nullsFirst: false, distinct: true } },
    { kind: 'aggregate', fn: 'array_agg', order: { descending: true, nullsFirst: true, distinct: true } },
  ], 'DISTINCT: sorted (ascending without ORDER BY), one of equal values')
  const joined = scatter("SELECT string_agg(v, ', ' ORDER BY v DESC) AS s, STRING_AGG(w , $1) FROM t")
  t.equal(joined.shardSql, 'SELECT array_agg(v ORDER BY v DESC) AS s, array_agg(w ) AS string_agg, ($1)::text FROM t', 'string_agg: the shards run array_agg, named as Postgres names the item')
  t.same(joined.columns.slice(0, 2), [
    { kind: 'aggregate', fn: 'string_agg', order: { descending: true, nullsFirst: true }, delimiter: { literal: ', ' } },
    { kind: 'aggregate', fn: 'string_agg', delimiter: { param: 1 } },
  ])
})

t.test('count(*) of a subquery that combines rows: the subquery planned as a read of its own, its rows counted', async (t) => {
  const p = scatter('SELECT COUNT(*) AS n FROM (SELECT DISTINCT t.g AS Col1 FROM t WHERE t.v > $1 ORDER BY t.g LIMIT 3) sub')
  t.equal(p.countRows?.name, 'n')
  t.same([p.countRows?.plan.shardSql, p.countRows?.plan.distinct, p.countRows?.plan.limit], ['SELECT DISTINCT t.g AS Col1 FROM t WHERE t.v > $1 ORDER BY t.g LIMIT 3', true, { literal: '3' }])
  t.equal(p.shardSql, 'SELECT COUNT(*) AS n FROM (SELECT DISTINCT t.g AS Col1 FROM t WHERE t.v > $1 ORDER BY t.g LIMIT 3) sub', 'the shards\u2019 own count stays, for a subquery grouped by a key')
  t.equal(scatter('SELECT count(*) FROM (SELECT g, count(*) FROM t GROUP BY g) s').countRows?.name, 'count')
  for (const sql of [
    'SELECT count(*) FROM (SELECT g FROM t) s',
    'SELECT count(*) FROM (SELECT g FROM t LIMIT 5) s',
    'SELECT count(*) FROM (SELECT DISTINCT g FROM t) s WHERE g > 1',
    'SELECT count(*), 1 FROM (SELECT DISTINCT g FROM t) s',
    'WITH w AS (SELECT 1) SELECT count(*) FROM (SELECT DISTINCT g FROM t) s',
    'SELECT count(*) FROM (SELECT json_agg(v) FROM t) s',
  ]) t.equal(scatter(sql).countRows, undefined, `${sql}: no count of merged rows`)
})

t.test('COALESCE(aggregate, constant): each shard computes it, with a hidden flag of whether its aggregate had a value', async (t) => {
  const p = scatter('SELECT g, COALESCE(SUM(v) FILTER (WHERE v > 0), 0) AS s, coalesce(max(w), $1::int) FROM t GROUP BY g ORDER BY s DESC')
  t.equal(p.shardSql, 'SELECT g, COALESCE(SUM(v) FILTER (WHERE v > 0), 0) AS s, coalesce(max(w), $1::int), (SUM(v) FILTER (WHERE v > 0)) IS NOT NULL, (max(w)) IS NOT NULL FROM t GROUP BY g')
  t.same(p.columns.slice(0, 3), [value, { kind: 'aggregate', fn: 'sum', presentColumn: 3 }, { kind: 'aggregate', fn: 'max', presentColumn: 4 }])
  t.same(p.orderBy, [{ column: 1, descending: true, nullsFirst: true }], 'ordered by the item as the client wrote it')
})

t.test('aggregates over all rows as windows in a query that does not aggregate: the merge adds up the shards\u2019 totals', async (t) => {
  const p = scatter('SELECT *, count(*) OVER () AS total, sum(v) FILTER (WHERE v > 0) OVER (), count(*) OVER ()::int FROM t ORDER BY k LIMIT 10')
  t.same(p.totals, [{ column: 1, fn: 'count' }, { column: 2, fn: 'sum' }, { column: 3, fn: 'count' }], 'count, sum with FILTER, a count cast to an integer')
  t.equal(p.sources.windowKeys, undefined, 'not windows the router must find partitioned by a key')
  t.equal(p.shardSql, 'SELECT *, count(*) OVER () AS total, sum(v) FILTER (WHERE v > 0) OVER (), count(*) OVER ()::int, k FROM t ORDER BY k LIMIT 10', 'the shards compute their own')
  const mixed = scatter('SELECT k, count(*) OVER (), row_number() OVER (PARTITION BY k) FROM t')
  t.same([mixed.totals, mixed.sources.windowKeys], [[{ column: 1, fn: 'count' }], [[{ relation: 0, column: 'k' }]]], 'other windows stay the router\u2019s to judge')
  for (const sql of [
    'SELECT k, count(*) OVER (ORDER BY k) FROM t',
    'SELECT k, count(*) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t',
    'SELECT k, count(*) OVER w FROM t WINDOW w AS ()',
    'SELECT k, avg(v) OVER () FROM t',
    'SELECT k, count(*) OVER () + 1 FROM t',
    'SELECT k, sum(v) OVER ()::int FROM t',
  ]) t.equal(scatter(sql).totals, undefined, `${sql}: not a total the merge adds up`)
  t.match(refusal('SELECT k, count(*) OVER () AS n FROM t ORDER BY n, k'), /ORDER BY a window aggregate over all rows/)
})

t.test('a UNION in FROM: its SELECTs are levels of their own, each output column named with what each SELECT passes on', async (t) => {
  const p = scatter('SELECT s.k FROM (SELECT t.id AS k, t.v FROM t WHERE t.v > 1 UNION SELECT u.k, upper(u.w) FROM u JOIN r ON r.k = u.k) s JOIN w ON w.k = s.k')
  const d = p.sources.derived[0]!
  t.same([d.union, d.keyedBy, d.combines, d.alias], [true, 'UNION', undefined, 's'], 'a UNION in FROM needs a key column: no merge removes its duplicates')
  t.same(d.unionColumns, [{ name: 'k', branches: ['k', 'k'] }, { name: 'v', branches: ['v', null] }], 'an expression passes nothing on')
  t.same(d.derived.map((b) => [b.alias, b.relations.map((r) => r.name), b.outputs.map((o) => o.name)]), [['SELECT 1 of subquery s', ['t'], ['k', 'v']], ['SELECT 2 of subquery s', ['u', 'r'], ['k']]])
  t.same(p.sources.equalities, [[{ relation: 0, column: 'k' }, { derived: 0, column: 'k' }]], 'the outer level joins on its column')
  t.equal(scatter('SELECT * FROM (SELECT a FROM t UNION ALL SELECT b FROM u UNION ALL SELECT c FROM v) AS x(n)').sources.derived[0]!.keyedBy, undefined, 'UNION ALL, nested, needs no key')
  t.same(scatter('SELECT * FROM (SELECT a FROM t UNION ALL SELECT b FROM u) AS x(n)').sources.derived[0]!.unionColumns, [{ name: 'n', branches: ['a', 'b'] }], 'an alias list names the columns')
  t.equal(scatter('SELECT * FROM (SELECT a FROM t UNION ALL (SELECT b FROM u UNION SELECT c FROM v)) x').sources.derived[0]!.keyedBy, 'UNION', 'UNION ALL over a UNION')
  t.equal(scatter('SELECT * FROM (SELECT a FROM t UNION ALL SELECT b FROM u ORDER BY 1 LIMIT 3) x').sources.derived[0]!.combines, 'LIMIT or OFFSET')
  t.same(scatter('SELECT * FROM (SELECT * FROM t UNION ALL SELECT * FROM u) x').sources.derived[0]!.unionColumns, [], 'behind a *, no column is known')
  t.equal(scatter('SELECT * FROM (SELECT a FROM t GROUP BY a UNION ALL SELECT b FROM u) x').sources.derived[0]!.derived[0]!.combines, 'GROUP BY', 'each SELECT combines on its own')
  t.same(scatter('SELECT * FROM (SELECT a FROM t INTERSECT SELECT b FROM u) x').sources.derived[0]!.keyedBy, 'INTERSECT', 'INTERSECT and EXCEPT need a key column too')
})

t.test('a subquery in FROM whose LIMIT or OFFSET picks rows runs first: the shards’ text marks where each one’s share goes', async (t) => {
  const p = scatter('SELECT s.k, u.v FROM (SELECT k, w FROM t WHERE w > $1 ORDER BY w DESC, k LIMIT $2 OFFSET 3) s JOIN u ON u.k = s.k ORDER BY s.w DESC')
  t.equal(p.shardSql, 'SELECT s.k, u.v, s.w, ($2)::int8 FROM (SELECT k, w FROM t WHERE w > $1 ORDER BY w DESC, k /*pgshard:share:0*/) s JOIN u ON u.k = s.k ORDER BY s.w DESC', 'the clause becomes a marker; its parameter stays bound')
  t.equal(p.limited?.length, 1)
  const l = p.limited![0]!
  t.same([l.derived, l.marker, l.clause], [0, '/*pgshard:share:0*/', ' LIMIT $2 OFFSET 3'])
  t.equal(l.plan.shardSql, 'SELECT k, w FROM t WHERE w > $1 ORDER BY w DESC, k LIMIT ($2)::int8 + (3)::int8', 'the subquery on its own: its first n + m rows of each shard')
  t.same([l.plan.orderBy.map((k) => k.column), l.plan.limit, l.plan.offset], [[1, 0], { param: 2 }, { literal: '3' }])
  t.equal(p.sources.derived[0]!.combines, undefined, 'the router judges the subquery as each shard’s share of its rows')

  const fetch = scatter('SELECT * FROM r JOIN (SELECT * FROM t ORDER BY v OFFSET 2 ROWS FETCH FIRST 3 ROWS ONLY) AS x(a, b) ON x.a = r.id')
  t.equal(fetch.shardSql, 'SELECT * FROM r JOIN (SELECT * FROM t ORDER BY v /*pgshard:share:0*/) AS x(a, b) ON x.a = r.id', 'FETCH FIRST')
  t.equal(fetch.limited![0]!.clause, ' OFFSET 2 ROWS FETCH FIRST 3 ROWS ONLY')
  t.equal(fetch.limited![0]!.derived, 0)
  const two = scatter('SELECT 1 FROM (SELECT k FROM t LIMIT 1) a JOIN (SELECT k FROM u ORDER BY k LIMIT 2) b ON b.k = a.k')
  t.same(two.limited!.map((l) => [l.derived, l.marker]), [[0, '/*pgshard:share:0*/'], [1, '/*pgshard:share:1*/']], 'each subquery its own')

  // What else combines rows, a subquery deeper down, one that may read a CTE, or locks: combines as before.
  for (const sql of [
    'SELECT * FROM (SELECT DISTINCT k FROM t ORDER BY k LIMIT 5) s',
    'SELECT * FROM (SELECT k, count(*) FROM t GROUP BY k ORDER BY 2 LIMIT 5) s',
    'SELECT * FROM (SELECT * FROM (SELECT k FROM t LIMIT 5) i) s',
    'WITH c AS (SELECT 1 AS x) SELECT * FROM (SELECT k FROM t, c LIMIT 5) s',
    'SELECT * FROM (SELECT k FROM t ORDER BY k FETCH FIRST 2 ROWS WITH TIES) s',
    'SELECT * FROM (SELECT k FROM t ORDER BY k LIMIT 5 FOR UPDATE) s',
  ]) {
    const plan = scatter(sql)
    t.equal(plan.limited, undefined, sql)
  }
  t.match(refusal('SELECT * FROM (SELECT k, v FROM t ORDER BY v DESC LIMIT 5) s JOIN u ON u.k = s.k ORDER BY s.v'), undefined)
  t.match(refusal("SELECT * FROM (SELECT k FROM t ORDER BY k LIMIT 5) s WHERE s.k <> '/*pgshard:share:0*/'"), /pgshard's own marker/, 'a text that holds the marker')
})
