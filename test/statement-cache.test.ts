import t from 'tap'
import { StatementCache } from '../src/router/StatementCache.js'
import { initSqlParser, SqlSyntaxError } from '../src/router/SqlParser.js'

await initSqlParser()

const pgbenchSelect = (aid: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`

const joinOf = (tenant: number, alias = 'o') => `/* app: order-details */
SELECT ${alias}.id, ${alias}.created_at, c.name AS customer, c.email,
       sum(oi.quantity * p.price) AS total, count(DISTINCT oi.product_id) AS products,
       max(s.shipped_at) AS last_shipment, a.city, a.country, pay.status AS payment
  FROM orders ${alias}
  JOIN customers c ON c.id = ${alias}.customer_id AND c.tenant_id = ${alias}.tenant_id
  JOIN order_items oi ON oi.order_id = ${alias}.id AND oi.tenant_id = ${alias}.tenant_id
  JOIN products p ON p.id = oi.product_id
  LEFT JOIN shipments s ON s.order_id = ${alias}.id AND s.tenant_id = ${alias}.tenant_id
  LEFT JOIN addresses a ON a.id = ${alias}.shipping_address_id
  LEFT JOIN payments pay ON pay.order_id = ${alias}.id AND pay.tenant_id = ${alias}.tenant_id
 WHERE ${alias}.tenant_id = ${tenant}
   AND ${alias}.status IN ('open', 'paid', 'shipped')
   AND ${alias}.created_at >= '2024-01-01'::timestamptz
   AND c.email NOT LIKE '%@example.invalid'
   AND EXISTS (SELECT 1 FROM audit_log l
                WHERE l.order_id = ${alias}.id AND l.tenant_id = ${tenant} AND l.action = 'create')
   AND p.category_id IN (SELECT id FROM categories WHERE name <> 'hidden')
 GROUP BY ${alias}.id, ${alias}.created_at, c.name, c.email, a.city, a.country, pay.status
HAVING sum(oi.quantity * p.price) > 10.5
 ORDER BY total DESC, ${alias}.id
 LIMIT 50 OFFSET 0`

t.test('one parse per statement shape, whatever the inlined values', async (t) => {
  const cache = new StatementCache(100)
  const first = cache.lookup(pgbenchSelect(12345))
  t.match(first, { hit: false, literals: ['12345'], sources: ['12345'], firstParam: 1 })
  t.same(first.plan.pins, [{ table: { name: 'pgbench_accounts' }, column: 'aid', values: [{ param: 1 }] }])
  for (let aid = 1; aid <= 50; aid++) {
    const again = cache.lookup(pgbenchSelect(aid))
    if (!again.hit || again.plan !== first.plan || again.literals[0] !== String(aid)) t.fail(`aid ${aid} missed`)
  }
  t.same([cache.hits, cache.misses, cache.size], [50, 1, 1])
  const join = cache.lookup(joinOf(7))
  t.equal(join.hit, false)
  t.equal(cache.lookup(joinOf(8)).hit, true, 'the 30-line join too')
  t.same(join.literals, ['7', 'open', 'paid', 'shipped', '2024-01-01', '%@example.invalid', '1', '7', 'create', 'hidden', '10.5', '50', '0'])
  t.same(
    join.plan.pins.filter((p) => p.column === 'tenant_id').map((p) => [p.table.alias, p.values]),
    [['o', [{ param: 1 }]], ['c', [{ param: 1 }]], ['oi', [{ param: 1 }]], ['s', [{ param: 1 }]], ['pay', [{ param: 1 }]], ['l', [{ param: 8 }]]],
    'the tenant pins every sharded table through the join keys',
  )
})

t.test('extended-protocol texts keep the client parameters first', async (t) => {
  const cache = new StatementCache(10)
  const r = cache.lookup("SELECT a FROM t WHERE k = $1 AND kind = 'x' LIMIT 10")
  t.match(r, { firstParam: 2, literals: ['x', '10'] })
  t.same(r.plan.pins.map((p) => p.values), [[{ param: 1 }], [{ param: 2 }]])
  t.same(r.plan.scatter?.limit, { param: 3 })
  t.equal(r.plan.paramCount, 3)
  t.equal(cache.lookup("SELECT a FROM t WHERE k = $1 AND kind = 'y' LIMIT 20").hit, true)
})

t.test('statements that are not plain DML are cached by their text', async (t) => {
  const cache = new StatementCache(10)
  t.match(cache.lookup('SET application_name = 1'), { hit: false, literals: [], firstParam: 1 })
  t.match(cache.lookup('SET application_name = 1'), { hit: true })
  t.match(cache.lookup('SET application_name = 2'), { hit: false }, 'a new value is a new text')
  t.match(cache.lookup('PREPARE q AS SELECT $1'), { hit: false, firstParam: 1 })
})

t.test('a normalized text that does not parse falls back to the raw text, and is remembered', async (t) => {
  const cache = new StatementCache(10)
  const sql = "SELECT 'a'\n'b' AS x FROM t WHERE k = 1"
  const first = cache.lookup(sql)
  t.match(first, { hit: false, literals: [], sources: [], firstParam: 1 })
  t.same(first.plan.pins[0]?.values, [{ literal: '1' }], 'analyzed with its literals in place')
  t.match(cache.lookup(sql), { hit: true })
  t.equal(cache.size, 2, 'the failed normalized text and the raw text')
  t.same([cache.hits, cache.misses], [1, 1])
})

t.test('bad SQL throws and is not cached', async (t) => {
  const cache = new StatementCache(10)
  t.throws(() => cache.lookup('SELEC 1'), SqlSyntaxError)
  t.throws(() => cache.lookup("SELECT 1 FRO t WHERE x = 'é'"), { code: '42601', position: 14 }, 'the position is in the client text')
  t.throws(() => cache.lookup('/* pgshard: role=sideways */ SELECT 1'), { code: '22023' })
  t.equal(cache.size, 0)
})

t.test('bounded: least recently used goes first; huge texts are not kept', async (t) => {
  const cache = new StatementCache(2, { maxTextLength: 200 })
  cache.lookup('SELECT a FROM t1 WHERE k = 1')
  cache.lookup('SELECT a FROM t2 WHERE k = 1')
  cache.lookup('SELECT a FROM t1 WHERE k = 2')
  cache.lookup('SELECT a FROM t3 WHERE k = 1')
  t.equal(cache.size, 2)
  t.equal(cache.lookup('SELECT a FROM t1 WHERE k = 3').hit, true, 't1 was used recently')
  t.equal(cache.lookup('SELECT a FROM t2 WHERE k = 3').hit, false, 't2 was evicted')
  const long = `SELECT a FROM t WHERE k IN (${Array.from({ length: 100 }, (_, i) => i).join(', ')})`
  t.equal(cache.lookup(long).hit, false)
  t.equal(cache.lookup(long).hit, false, 'over maxTextLength: analyzed every time, never stored')
  t.equal(cache.size, 2)
  t.throws(() => new StatementCache(0), RangeError)
})

t.test('comments: hints are part of the shape, other comments are not', async (t) => {
  const cache = new StatementCache(10)
  const a = cache.lookup('/* trace=1 */ SELECT a FROM t WHERE k = 1')
  t.equal(cache.lookup('/* trace=2 */ SELECT a FROM t WHERE k = 2').hit, true)
  t.same(a.plan.hints, [])
  const hinted = cache.lookup('/* pgshard: shard=s1 */ SELECT a FROM t WHERE k = 1')
  t.equal(hinted.hit, false)
  t.same(hinted.plan.hints, [{ kind: 'shard', value: 's1' }])
})

t.test('set_config values taken out by the normalizer come back in the session effect', async (t) => {
  const cache = new StatementCache(10)
  const a = cache.lookup("SELECT set_config('app.user', '42', false)")
  const b = cache.lookup("SELECT set_config('app.user', '43', true)")
  t.same(a.plan.session, [{ kind: 'set', name: 'app.user', local: false, text: "SET app.user = '42'" }])
  t.same(b.plan.session, [{ kind: 'set', name: 'app.user', local: true, text: "SET LOCAL app.user = '43'" }])
  t.equal(b.hit, false, 'false and true are keywords: two shapes')
  const c = cache.lookup("SELECT set_config('app.user', '44', true)")
  t.equal(c.hit, true)
  t.same(c.plan.session, [{ kind: 'set', name: 'app.user', local: true, text: "SET LOCAL app.user = '44'" }])
  t.same(b.plan.session[0], { kind: 'set', name: 'app.user', local: true, text: "SET LOCAL app.user = '43'" }, 'earlier answers are not changed')
  const mixed = cache.lookup("SELECT set_config($1, 'v', false)")
  t.same(mixed.plan.session, [{ kind: 'set', name: '$1', local: false, text: 'SET $1 = $2' }], 'a client parameter: the engine resolves it with the Bind value')
})

// Bench-style figures, reported in the diagnostics rather than asserted (the machine is shared).
t.test('cost per lookup (µs), hit and miss', async (t) => {
  const measure = (label: string, n: number, fn: (i: number) => void): number => {
    const rounds: number[] = []
    for (let r = 0; r < 7; r++) {
      const start = process.hrtime.bigint()
      for (let i = 0; i < n; i++) fn(r * n + i)
      rounds.push(Number(process.hrtime.bigint() - start) / 1000 / n)
    }
    rounds.sort((x, y) => x - y)
    const median = rounds[3]!
    t.comment(`${label}: ${median.toFixed(2)} µs/lookup (median of 7 rounds of ${n})`)
    return median
  }
  const hits = new StatementCache(1000)
  hits.lookup(pgbenchSelect(1))
  hits.lookup(joinOf(1))
  const selectHit = measure('pgbench -S select, hit', 20000, (i) => hits.lookup(pgbenchSelect(i)))
  const joinHit = measure('30-line join, hit', 2000, (i) => hits.lookup(joinOf(i)))
  const misses = new StatementCache(100000)
  const selectMiss = measure('pgbench -S select, miss', 2000, (i) => misses.lookup(`SELECT abalance AS a${i} FROM pgbench_accounts WHERE aid = ${i};`))
  const joinMiss = measure('30-line join, miss', 100, (i) => misses.lookup(joinOf(i, `o${i}`)))
  t.ok(hits.hits >= 7 * 22000, 'the hit loops hit')
  t.ok(selectHit < selectMiss && joinHit < joinMiss, 'a hit is cheaper than a miss')
})

t.test('a multi-row INSERT split is built from the analyzed text, then its literals restored', async (t) => {
  const { buildInsertText } = await import('../src/router/InsertRowsAnalyzer.js')
  const { restoreLiterals } = await import('../src/router/LiteralNormalizer.js')
  const cache = new StatementCache(10)
  const r = cache.lookup("INSERT INTO accounts (id, name) VALUES (1, 'ä'), (2, 'b'), (3, 'c') RETURNING id")
  t.equal(r.text, 'INSERT INTO accounts (id, name) VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING id')
  t.equal(r.plan.insert?.text, r.text, 'the plan carries the normalized text')
  const part = buildInsertText(r.plan.insert!, [0, 2])
  t.equal(part, 'INSERT INTO accounts (id, name) VALUES ($1, $2), ($5, $6) RETURNING id')
  t.equal(restoreLiterals(part, r.firstParam, r.sources), "INSERT INTO accounts (id, name) VALUES (1, 'ä'), (3, 'c') RETURNING id")
  t.equal(cache.lookup('SET x = 1').text, 'SET x = 1')
})
