import t from 'tap'
import { buildInsertText, insertWithKeys, leavesOut } from '../src/router/InsertRowsAnalyzer.js'
import { InvalidHintError } from '../src/router/HintParser.js'
import { resolveSessionEffect } from '../src/router/SessionEffects.js'
import { analyzeStatement } from '../src/router/StatementAnalyzer.js'
import type { ColumnPin, StatementPlan, ValueRef } from '../src/router/StatementPlan.js'
import { initSqlParser, SqlAnalysisError, SqlSyntaxError } from '../src/router/SqlParser.js'
import { qualifiedNameParts } from '../src/router/SqlQuoting.js'

await initSqlParser()

/** Pins as `alias-or-table.column → values` for compact comparisons. */
const pinsOf = (p: StatementPlan): Record<string, unknown[]> => {
  const out: Record<string, unknown[]> = {}
  for (const pin of p.pins as ColumnPin[]) {
    const name = [pin.table.schema, pin.table.name].filter(Boolean).join('.') + (pin.table.alias ? ` ${pin.table.alias}` : '')
    out[`${name}.${pin.column}`] = pin.values
  }
  return out
}
const pins = (sql: string) => pinsOf(analyzeStatement(sql))

t.test('pgbench statements', async (t) => {
  const select = analyzeStatement('SELECT abalance FROM pgbench_accounts WHERE aid = $1;')
  t.match(select, { kind: 'select', commandTag: 'SELECT', writes: false, tables: [{ name: 'pgbench_accounts' }], paramCount: 1 })
  t.same(pinsOf(select), { 'pgbench_accounts.aid': [{ param: 1 }] })
  const update = analyzeStatement('UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;')
  t.match(update, { kind: 'update', writes: true, writtenTables: [{ name: 'pgbench_accounts' }] })
  t.same(pinsOf(update), { 'pgbench_accounts.aid': [{ param: 2 }] })
  const insert = analyzeStatement('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);')
  t.same(pinsOf(insert), {
    'pgbench_history.tid': [{ param: 1 }],
    'pgbench_history.bid': [{ param: 2 }],
    'pgbench_history.aid': [{ param: 3 }],
    'pgbench_history.delta': [{ param: 4 }],
  })
  t.same(insert.insert?.rows[0]?.values, [{ param: 1 }, { param: 2 }, { param: 3 }, { param: 4 }, null], 'CURRENT_TIMESTAMP is an expression: null, the row still routes by its key')
  t.same(analyzeStatement('SELECT abalance FROM pgbench_accounts WHERE aid = 12345').pins[0]?.values, [{ literal: '12345' }])
})

t.test('pins: equalities, IN, casts, unary minus, AND/OR/NOT', async (t) => {
  t.same(pins('SELECT a FROM t WHERE 42 = k'), { 't.k': [{ literal: '42' }] })
  t.same(pins('SELECT a FROM t WHERE k = $1::bigint AND u = CAST($2 AS uuid) AND v = -$3 AND w = -5 AND x = NULL'), {
    't.k': [{ param: 1, cast: 'int8' }],
    't.u': [{ param: 2, cast: 'uuid' }],
    't.v': [{ param: 3, negate: true }],
    't.w': [{ literal: '-5' }],
    't.x': [{ null: true }],
  })
  t.same(pins("SELECT a FROM t WHERE k = '42'::int8 AND j = 12345678901 AND b = true"), {
    't.k': [{ literal: '42', cast: 'int8' }],
    't.j': [{ literal: '12345678901' }],
    't.b': [{ literal: 'true' }],
  })
  t.same(pins('SELECT a FROM t WHERE k = 0'), { 't.k': [{ literal: '0' }] }, 'protobuf drops the 0: still a pin')
  t.same(pins("SELECT a FROM t WHERE k = '5.7'::numeric::int"), {}, 'a chain of casts can change the value')
  t.same(pins('SELECT a FROM t WHERE k IN (1, $1, -3)'), { 't.k': [{ literal: '1' }, { param: 1 }, { literal: '-3' }] })
  t.same(pins('SELECT a FROM t WHERE k = ANY(ARRAY[1, 2])'), { 't.k': [{ literal: '1' }, { literal: '2' }] })
  t.same(pins('SELECT a FROM t WHERE k = ANY($1)'), { 't.k': [{ param: 1, array: true }] }, 'one array parameter: its elements, read at Bind')
  t.same(pins("SELECT a FROM t WHERE k = ANY('{1,2}'::bigint[])"), { 't.k': [{ literal: '{1,2}', array: true }] }, 'an array literal, cast or not')
  t.same(pins('SELECT a FROM t WHERE k <> ANY($1)'), {}, 'only = ANY pins')
  t.same(pins('SELECT a FROM t WHERE k NOT IN (1, 2)'), {})
  t.same(pins('SELECT a FROM t WHERE k = 1 AND k IN (1, 2, 3)'), { 't.k': [{ literal: '1' }] }, 'AND keeps the smaller set')
  t.same(pins('SELECT a FROM t WHERE k = 1 OR k = 2'), { 't.k': [{ literal: '1' }, { literal: '2' }] })
  t.same(pins('SELECT a FROM t WHERE (k = 1 AND x = 2) OR (k IN (3, 1) AND y = 4)'), { 't.k': [{ literal: '1' }, { literal: '3' }] })
  t.same(pins('SELECT a FROM t WHERE k = 1 OR x = 2'), {}, 'a column missing from one OR branch is not pinned')
  t.same(pins('SELECT a FROM t WHERE NOT (k = 1)'), {})
  t.same(pins('SELECT a FROM t WHERE k + 0 = 1 AND k::text = $1'), {}, 'only bare columns pin')
  t.same(pins('SELECT a FROM t WHERE (k, x) = (1, $1)'), { 't.k': [{ literal: '1' }], 't.x': [{ param: 1 }] })
  t.same(pins('SELECT a FROM t WHERE k = f(1)'), {})
})

t.test('pins: aliases, schemas, joins and their equivalence classes', async (t) => {
  t.same(pins('SELECT a.id, b.x FROM accounts a JOIN orders b ON a.id = b.account_id WHERE a.id = $1'), {
    'accounts a.id': [{ param: 1 }],
    'orders b.account_id': [{ param: 1 }],
  })
  t.same(pins('SELECT 1 FROM accounts a, orders b WHERE b.account_id = a.id AND b.account_id = 7'), {
    'accounts a.id': [{ literal: '7' }],
    'orders b.account_id': [{ literal: '7' }],
  })
  t.same(pins('SELECT x FROM s.t WHERE s.t.k = 1'), { 's.t.k': [{ literal: '1' }] })
  t.same(pins('SELECT x FROM s.t x WHERE x.k = 1 AND s.t.k = 2'), { 's.t x.k': [{ literal: '1' }] }, 'an aliased table is only known by its alias')
  t.same(pins('SELECT x FROM "Weird Table" w WHERE w."Key" = 3'), { 'Weird Table w.Key': [{ literal: '3' }] })
  t.same(pins('SELECT 1 FROM a, b WHERE k = 1'), {}, 'an unqualified column with two tables is ambiguous')
  t.same(pins('SELECT 1 FROM a JOIN b USING (k) WHERE a.k = 7'), { 'a.k': [{ literal: '7' }], 'b.k': [{ literal: '7' }] })
  t.same(pins('SELECT 1 FROM a LEFT JOIN b ON a.k = b.k WHERE a.k = 5'), { 'a.k': [{ literal: '5' }], 'b.k': [{ literal: '5' }] }, 'preserved → nullable')
  t.same(pins('SELECT 1 FROM a LEFT JOIN b ON a.k = b.k AND b.k = 5'), { 'b.k': [{ literal: '5' }] }, 'an ON pin restricts only the nullable side')
  t.same(pins('SELECT 1 FROM a LEFT JOIN b ON a.k = b.k AND a.k = 5'), {}, 'ON does not filter the preserved side')
  t.same(pins('SELECT 1 FROM a RIGHT JOIN b ON a.k = b.k WHERE b.k = 5'), { 'a.k': [{ literal: '5' }], 'b.k': [{ literal: '5' }] })
  t.same(pins('SELECT 1 FROM a FULL JOIN b ON a.k = b.k WHERE a.k = 5'), { 'a.k': [{ literal: '5' }] })
  t.same(pins('SELECT 1 FROM a JOIN accounts x ON x.id = a.k JOIN accounts y ON y.id = 9 WHERE a.k = 1'), {
    'a.k': [{ literal: '1' }],
    'accounts x.id': [{ literal: '1' }],
    'accounts y.id': [{ literal: '9' }],
  }, 'a self-join keeps each use apart')
})

t.test('pins: subqueries and CTEs pin only their own level', async (t) => {
  t.same(pins('SELECT x FROM t WHERE k = 1 AND y IN (SELECT y FROM u WHERE u.k = 2)'), { 't.k': [{ literal: '1' }], 'u.k': [{ literal: '2' }] })
  t.same(pins('SELECT x FROM t WHERE k = 1 AND EXISTS (SELECT 1 FROM u WHERE k = 2)'), { 't.k': [{ literal: '1' }] }, 'inside a subquery an unqualified column may be the outer one')
  t.same(pins('SELECT x FROM t WHERE k = 1 AND x > (SELECT max(x) FROM t)'), {}, 'the same table unpinned in a subquery unpins it')
  t.same(pins('SELECT x FROM (SELECT * FROM t WHERE k = 3) s'), { 't.k': [{ literal: '3' }] })
  const cte = analyzeStatement('WITH t AS (SELECT * FROM t WHERE k = 4), x AS (SELECT * FROM t) SELECT * FROM x JOIN t ON true')
  t.same(cte.tables, [{ name: 't' }], 'CTE names are not tables, except a CTE body naming itself')
  t.same(pinsOf(cte), { 't.k': [{ literal: '4' }] })
  const writing = analyzeStatement('WITH moved AS (DELETE FROM queue WHERE id = 5 RETURNING *) INSERT INTO done (id) SELECT id FROM moved')
  t.match(writing, { kind: 'insert', writes: true })
  t.same(writing.writtenTables, [{ name: 'done' }, { name: 'queue' }])
  t.same(pinsOf(writing), { 'queue.id': [{ literal: '5' }] })
  t.same(pins('SELECT x FROM t WHERE k = 1 UNION ALL SELECT x FROM t WHERE k = 2'), { 't.k': [{ literal: '1' }, { literal: '2' }] })
  t.same(pins('SELECT x FROM t WHERE k = 1 FOR UPDATE OF t'), { 't.k': [{ literal: '1' }] })
})

t.test('writes, tables and functions', async (t) => {
  t.match(analyzeStatement('SELECT * FROM t WHERE k = 1 FOR UPDATE'), { writes: true, kind: 'select' })
  t.match(analyzeStatement('SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED'), { writes: true })
  t.match(analyzeStatement('SELECT * FROM t FOR KEY SHARE'), { writes: true })
  const into = analyzeStatement('SELECT * INTO archive FROM t')
  t.match(into, { writes: true, kind: 'select' })
  t.same(into.writtenTables, [{ name: 'archive' }])
  const locked = analyzeStatement('SELECT o.id FROM orders o JOIN items i ON i.oid = o.id FOR UPDATE OF o')
  t.same(locked.tables, [{ name: 'orders', alias: 'o' }, { name: 'items', alias: 'i' }], 'FOR UPDATE OF names an alias, not a table')
  const fn = analyzeStatement("SELECT nextval('s'), pg_catalog.NOW(), coalesce(a, 1), \"Upper\"(b) FROM t")
  t.same(fn.functions, ['nextval', 'now', 'upper'], 'lower-cased last name part; coalesce is not a function call')
  t.match(analyzeStatement('SHOW search_path'), { kind: 'show', commandTag: 'SHOW', writes: false })
  t.match(analyzeStatement('EXPLAIN SELECT * FROM t WHERE k = 1'), { kind: 'utility', writes: false, tables: [{ name: 't' }] })
  t.match(analyzeStatement('EXPLAIN (ANALYZE false) DELETE FROM t'), { writes: false })
  const explainWrite = analyzeStatement('EXPLAIN ANALYZE DELETE FROM t WHERE k = 1')
  t.match(explainWrite, { writes: true, writtenTables: [{ name: 't' }] })
  t.same(pinsOf(explainWrite), { 't.k': [{ literal: '1' }] }, 'EXPLAIN is routed like what it explains')
  t.match(analyzeStatement('COPY t (a) FROM STDIN'), { kind: 'copy_from', writes: true, writtenTables: [{ name: 't' }] })
  t.match(analyzeStatement('COPY (SELECT a FROM t WHERE k = 2) TO STDOUT'), { kind: 'copy_to', writes: false, tables: [{ name: 't' }] })
  t.match(analyzeStatement('MERGE INTO t USING s ON t.k = s.k WHEN MATCHED THEN DELETE'), { kind: 'merge', writes: true, pins: [] })
  t.match(analyzeStatement('SELECT 1'), { kind: 'select', tables: [], writes: false })
  t.match(analyzeStatement('VALUES (1), (2)'), { kind: 'select', writes: false })
})

t.test('assignments: UPDATE SET, ON CONFLICT DO UPDATE, MERGE, writing CTEs', async (t) => {
  const assigned = (sql: string) => analyzeStatement(sql).assignments ?? []
  t.same(assigned('UPDATE t AS x SET a = 1, b = $2, c = c, d = x.d, e = y.e, f = f + 1, g[1] = 2 FROM y'), [
    { table: { name: 't', alias: 'x' }, column: 'a', value: { literal: '1' } },
    { table: { name: 't', alias: 'x' }, column: 'b', value: { param: 2 } },
    { table: { name: 't', alias: 'x' }, column: 'c', value: 'unchanged' },
    { table: { name: 't', alias: 'x' }, column: 'd', value: 'unchanged' },
    { table: { name: 't', alias: 'x' }, column: 'e', value: null },
    { table: { name: 't', alias: 'x' }, column: 'f', value: null },
    { table: { name: 't', alias: 'x' }, column: 'g', value: null },
  ])
  t.same(assigned("UPDATE s.t SET (a, b) = (1, 'x'), (c) = (SELECT 1)").map((a) => [a.table, a.column, a.value]), [
    [{ schema: 's', name: 't' }, 'a', { literal: '1' }],
    [{ schema: 's', name: 't' }, 'b', { literal: 'x' }],
    [{ schema: 's', name: 't' }, 'c', null],
  ])
  t.same(assigned('INSERT INTO t (k, v) VALUES (1, 2) ON CONFLICT (k) DO UPDATE SET k = excluded.k, v = EXCLUDED.k').map((a) => a.value), ['unchanged', null])
  t.same(assigned('INSERT INTO t (k) VALUES (1) ON CONFLICT DO NOTHING'), [])
  t.same(assigned('MERGE INTO t USING s ON t.k = s.k WHEN MATCHED THEN UPDATE SET k = s.k WHEN NOT MATCHED THEN INSERT VALUES (s.k)').map((a) => [a.column, a.value]), [['k', null]])
  t.same(assigned('WITH u AS (UPDATE t SET k = 5 RETURNING k) SELECT * FROM u').map((a) => [a.column, a.value]), [['k', { literal: '5' }]])
  t.same(assigned('UPDATE a SET x = 1; UPDATE b SET y = 2').map((a) => a.table.name), ['a', 'b'], 'several statements: all of them')
  t.equal(analyzeStatement('DELETE FROM t WHERE k = 1').assignments, undefined)
})

t.test('DDL', async (t) => {
  const create = analyzeStatement('CREATE TABLE accounts (id bigint PRIMARY KEY, owner int REFERENCES users (id))')
  t.match(create, { kind: 'ddl', commandTag: 'CREATE TABLE', writes: true })
  t.same(create.writtenTables, [{ name: 'accounts' }], 'a foreign key target is read, not written')
  t.same(create.tables, [{ name: 'accounts' }, { name: 'users' }])
  t.same(analyzeStatement('DROP TABLE s.a, b CASCADE').writtenTables, [{ schema: 's', name: 'a' }, { name: 'b' }])
  t.equal(analyzeStatement('DROP TABLE x').commandTag, 'DROP TABLE')
  t.same(analyzeStatement('DROP FUNCTION f(int)').writtenTables, [])
  t.same(analyzeStatement('TRUNCATE a, b').writtenTables, [{ name: 'a' }, { name: 'b' }])
  t.match(analyzeStatement('CREATE INDEX i ON accounts (owner)'), { kind: 'ddl', commandTag: 'CREATE INDEX', writtenTables: [{ name: 'accounts' }] })
  t.match(analyzeStatement('ALTER TABLE accounts ADD COLUMN note text'), { kind: 'ddl', commandTag: 'ALTER TABLE', writtenTables: [{ name: 'accounts' }] })
  t.match(analyzeStatement('GRANT SELECT ON accounts TO app'), { kind: 'ddl', commandTag: 'GRANT', writtenTables: [{ name: 'accounts' }] })
  const ctas = analyzeStatement('CREATE TABLE copy AS SELECT * FROM accounts WHERE id = 3')
  t.same(ctas.writtenTables, [{ name: 'copy' }])
  t.same(pinsOf(ctas), { 'accounts.id': [{ literal: '3' }] })
  t.match(analyzeStatement('CREATE EXTENSION IF NOT EXISTS pgcrypto'), { kind: 'ddl', commandTag: 'CREATE EXTENSION' })
})

t.test('transactions', async (t) => {
  t.match(analyzeStatement('BEGIN'), { kind: 'transaction', tx: 'begin', commandTag: 'BEGIN', txReadOnly: false })
  t.match(analyzeStatement('BEGIN READ ONLY'), { tx: 'begin', txReadOnly: true })
  t.match(analyzeStatement('START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY'), { tx: 'begin', commandTag: 'START TRANSACTION', txReadOnly: true, txIsolation: 'serializable' })
  t.match(analyzeStatement('BEGIN ISOLATION LEVEL REPEATABLE READ'), { txIsolation: 'repeatable read' })
  t.equal(analyzeStatement('BEGIN READ ONLY').txIsolation, undefined, 'no level named: the session default applies')
  t.match(analyzeStatement('BEGIN READ WRITE'), { txReadOnly: false })
  t.match(analyzeStatement('COMMIT'), { tx: 'commit', commandTag: 'COMMIT' })
  t.match(analyzeStatement('END'), { tx: 'commit', commandTag: 'COMMIT' })
  t.match(analyzeStatement('ROLLBACK'), { tx: 'rollback', commandTag: 'ROLLBACK' })
  t.match(analyzeStatement('ABORT'), { tx: 'rollback', commandTag: 'ROLLBACK' })
  t.match(analyzeStatement('SAVEPOINT S1'), { tx: 'savepoint', commandTag: 'SAVEPOINT', savepoint: 's1' })
  t.match(analyzeStatement('SAVEPOINT "Mixed"'), { savepoint: 'Mixed' })
  t.match(analyzeStatement('RELEASE SAVEPOINT s1'), { tx: 'release', commandTag: 'RELEASE', savepoint: 's1' })
  t.match(analyzeStatement('RELEASE s1'), { tx: 'release', savepoint: 's1' })
  t.match(analyzeStatement('ROLLBACK TO SAVEPOINT s1'), { tx: 'rollback_to', commandTag: 'ROLLBACK', savepoint: 's1' })
  t.match(analyzeStatement('ROLLBACK TO s1'), { tx: 'rollback_to', savepoint: 's1' })
  t.match(analyzeStatement("PREPARE TRANSACTION 'g1'"), { tx: 'prepare_transaction', commandTag: 'PREPARE TRANSACTION' })
  t.match(analyzeStatement("COMMIT PREPARED 'g1'"), { tx: 'commit_prepared' })
  t.match(analyzeStatement("ROLLBACK PREPARED 'g1'"), { tx: 'rollback_prepared' })
})

t.test('a write that answers with rows (RETURNING) and one that does not', async (t) => {
  t.equal(analyzeStatement('INSERT INTO users (id) VALUES (1) RETURNING id').returning, true)
  t.equal(analyzeStatement('UPDATE users SET name = 1 WHERE id = 2 RETURNING *').returning, true)
  t.equal(analyzeStatement('DELETE FROM users WHERE id = 2 RETURNING id').returning, true)
  t.equal(analyzeStatement('INSERT INTO users (id) VALUES (1)').returning, undefined)
  t.equal(analyzeStatement('DELETE FROM users WHERE id = 2').returning, undefined)
})

t.test('SQL cursors: the name each DECLARE, FETCH, MOVE and CLOSE uses, a DECLARE’s options and query, how far a FETCH goes', async (t) => {
  t.same(analyzeStatement('DECLARE "Batch" NO SCROLL CURSOR FOR SELECT * FROM users WHERE id = 1').cursor, {
    use: 'declare', name: 'Batch', declare: { binary: false, scroll: false, hold: false, query: 'SELECT * FROM users WHERE id = 1' },
  })
  t.same(analyzeStatement('DECLARE cursor BINARY SCROLL CURSOR WITH HOLD FOR (SELECT 1 FROM users)').cursor?.declare, { binary: true, scroll: true, hold: true, query: '(SELECT 1 FROM users)' }, 'a cursor named cursor, every option')
  t.same(analyzeStatement("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 'für' FROM users -- trailing").cursor?.declare?.query, "SELECT 'für' FROM users", 'the query as written, multibyte text kept')
  t.match(analyzeStatement('DECLARE c CURSOR FOR SELECT * FROM users WHERE id = 1'), { tables: [{ name: 'users' }] }, 'DECLARE routes by its query')
  t.same(analyzeStatement('FETCH FORWARD 10 FROM C').cursor, { use: 'fetch', name: 'c', fetch: { forward: true, count: 10, move: false } })
  t.same(analyzeStatement('FETCH c').cursor?.fetch, { forward: true, count: 1, move: false }, 'FETCH alone is FETCH NEXT')
  t.same(analyzeStatement('FETCH ALL FROM c').cursor?.fetch, { forward: true, count: 'all', move: false })
  t.same(analyzeStatement('MOVE 5 IN c').cursor, { use: 'fetch', name: 'c', fetch: { forward: true, count: 5, move: true } })
  for (const other of ['FETCH PRIOR FROM c', 'FETCH ABSOLUTE 3 FROM c', 'FETCH BACKWARD 2 FROM c', 'FETCH FORWARD 0 FROM c', 'FETCH RELATIVE 1 FROM c']) {
    t.equal(analyzeStatement(other).cursor?.fetch?.forward, false, `${other}: not a plain step forward`)
  }
  t.same(analyzeStatement('CLOSE c').cursor, { use: 'close', name: 'c' })
  t.same(analyzeStatement('CLOSE ALL').cursor, { use: 'close', name: null })
  t.equal(analyzeStatement('SELECT 1').cursor, undefined)
})

t.test('session effects', async (t) => {
  const effects = (sql: string) => analyzeStatement(sql).session
  t.same(effects('SELECT pg_advisory_unlock_all()'), [{ kind: 'advisory_unlock_all' }], 'every advisory lock released')
  t.same(effects('SELECT pg_advisory_lock(1), pg_advisory_unlock_all()'), [{ kind: 'advisory_lock_session' }], 'a lock taken in the same statement still pins')
  t.same(effects("SET application_name = 'x'"), [{ kind: 'set', name: 'application_name', local: false, text: "SET application_name = 'x'" }])
  t.match(analyzeStatement('SET TIME ZONE UTC'), { kind: 'set', commandTag: 'SET', session: [{ kind: 'set', name: 'timezone' }] })
  t.same(effects('SET LOCAL search_path = a, b'), [{ kind: 'set', name: 'search_path', local: true, text: 'SET LOCAL search_path = a, b' }])
  t.same(effects('SET "Statement_Timeout" TO DEFAULT'), [{ kind: 'set', name: 'statement_timeout', local: false, text: 'SET "Statement_Timeout" TO DEFAULT' }])
  t.same(effects('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE'), [{ kind: 'set_transaction' }])
  t.same(effects('RESET work_mem'), [{ kind: 'reset', name: 'work_mem' }])
  t.match(analyzeStatement('RESET ALL'), { commandTag: 'RESET', session: [{ kind: 'reset_all' }] })
  t.match(analyzeStatement('DISCARD ALL'), { commandTag: 'DISCARD ALL', session: [{ kind: 'discard_all' }] })
  t.same(effects('DISCARD PLANS'), [])
  const multi = 'SELECT 1; SET x.y = 1; SELECT 2'
  t.same(effects(multi), [{ kind: 'set', name: 'x.y', local: false, text: 'SET x.y = 1' }], 'text is the statement itself')
  t.same(effects('SELECT \'é\'; SET application_name = \'ü\''), [{ kind: 'set', name: 'application_name', local: false, text: "SET application_name = 'ü'" }], 'byte offsets decoded')

  t.same(effects('PREPARE q (int) AS SELECT * FROM t WHERE k = $1'), [
    { kind: 'prepare', name: 'q', text: 'PREPARE q (int) AS SELECT * FROM t WHERE k = $1', nameLocation: 8 },
  ])
  t.match(analyzeStatement('PREPARE q AS SELECT 1'), { tables: [], pins: [], paramCount: 0, commandTag: 'PREPARE' })
  const prepared = analyzeStatement('/* pgshard: role=primary */ PREPARE q (int8, text) AS UPDATE t SET v = $2 WHERE k = $1')
  t.match(prepared.prepared, { kind: 'update', tables: [{ name: 't' }], writtenTables: [{ name: 't' }], paramCount: 2, hints: [{ kind: 'role', value: 'primary' }] }, 'the prepared query keeps its own plan, for EXECUTE')
  t.same(prepared.prepared?.pins, [{ table: { name: 't' }, column: 'k', values: [{ param: 1 }] }])
  t.same(analyzeStatement('PREPARE "as" AS SELECT count(*) FROM t').prepared?.scatter?.shardSql, 'SELECT count(*) FROM t', 'the query text starts after AS')
  t.same(
    analyzeStatement("PREPARE ins AS INSERT INTO t (k, v) VALUES ($1, 'é'), (2, now())").prepared?.insert?.rows.map((r) => r.values),
    [[{ param: 1 }, { literal: 'é' }], [{ literal: '2' }, null]],
    'INSERT rows mapped in the PREPARE text',
  )
  t.same(effects('/* é */ EXECUTE "Q"(1, $1, now())'), [{ kind: 'execute', name: 'Q', nameLocation: 17, args: [{ literal: '1' }, { param: 1 }, null] }], 'a byte offset, past the 2-byte é; the arguments')
  t.same(effects('DEALLOCATE PREPARE q'), [{ kind: 'deallocate', name: 'q', nameLocation: 19 }])
  t.same(effects('DEALLOCATE ALL'), [{ kind: 'deallocate', name: null, nameLocation: -1 }])
  t.same(effects('LISTEN "Chan"'), [{ kind: 'listen', channel: 'Chan' }])
  t.same(effects('UNLISTEN ch'), [{ kind: 'unlisten', channel: 'ch' }])
  t.same(effects('UNLISTEN *'), [{ kind: 'unlisten', channel: null }])
  t.same(effects('SELECT pg_advisory_lock(1), pg_try_advisory_lock_shared(2)'), [{ kind: 'advisory_lock_session' }])
  t.same(effects('SELECT pg_advisory_xact_lock(1)'), [], 'transaction-level locks end with the transaction')
  t.same(effects('CREATE TEMP TABLE x (a int)'), [{ kind: 'temp_table' }])
  t.same(effects('CREATE TEMPORARY TABLE x AS SELECT 1'), [{ kind: 'temp_table' }])
  t.same(effects('SELECT * INTO TEMP x FROM t'), [{ kind: 'temp_table' }])
  t.same(effects('CREATE TABLE pg_temp.x (a int)'), [{ kind: 'temp_table' }], 'a table in pg_temp is temporary too')
  t.same(effects('CREATE VIEW PG_TEMP_3.v AS SELECT 1'), [{ kind: 'temp_table' }])
  t.same(effects('CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS $$SELECT 1$$'), [{ kind: 'temp_table' }], 'so is a function')
  t.same(effects("CREATE DOMAIN pg_temp.d AS int"), [{ kind: 'temp_table' }], 'and a domain')
  t.same(effects("SELECT 'pg_temp.x'"), [], 'a literal creates nothing')
  t.same(effects("DO $$BEGIN PERFORM set_config('work_mem', '1MB', false); END$$"), [{ kind: 'unknown_set_config' }], 'a DO block that may set something')
  t.same(effects('DO $$BEGIN SET search_path = x; END$$'), [{ kind: 'unknown_set_config' }])
  t.same(effects('DO $$BEGIN\n  SET\n    search_path = x;\nEND$$'), [{ kind: 'unknown_set_config' }], 'whatever the line breaks')
  t.same(effects("DO LANGUAGE plpgsql $$BEGIN PERFORM set_config('a.b', 'c', false); END$$"), [{ kind: 'unknown_set_config' }], 'with a LANGUAGE clause')
  t.same(effects('DO $$BEGIN PERFORM 1; END$$'), [], 'one that does not')
  t.same(effects('DO $$BEGIN CREATE TEMP TABLE x (a int); END$$'), [{ kind: 'temp_table' }], 'a DO block that may create a temporary table pins')
  t.same(effects('DO $$BEGIN PERFORM pg_advisory_lock(1); END$$'), [{ kind: 'advisory_lock_session' }])
  t.same(effects("DO $$BEGIN EXECUTE 'LISTEN jobs'; END$$"), [{ kind: 'listen', channel: '' }])
  t.same(effects('CREATE TABLE x (a int)'), [])
  t.same(effects('DECLARE c CURSOR WITH HOLD FOR SELECT 1'), [{ kind: 'hold_cursor' }])
  t.same(effects('DECLARE c CURSOR FOR SELECT 1'), [])
})

t.test('set_config inside a SELECT', async (t) => {
  const effects = (sql: string) => analyzeStatement(sql).session
  t.same(effects("SELECT set_config('app.user_id', '42', false)"), [{ kind: 'set', name: 'app.user_id', local: false, text: "SET app.user_id = '42'" }])
  t.same(effects("SELECT set_config('App.Tenant', 'it''s', true)"), [{ kind: 'set', name: 'app.tenant', local: true, text: "SET LOCAL app.tenant = 'it''s'" }])
  t.same(effects("SELECT set_config('search_path', 'a, \"B\"', false)"), [
    { kind: 'set', name: 'search_path', local: false, text: "SELECT pg_catalog.set_config('search_path', 'a, \"B\"', false)" },
  ], 'SET would quote the whole list as one name')
  t.same(effects("SELECT set_config('app.x', NULL, false)"), [{ kind: 'reset', name: 'app.x' }])
  t.same(effects("SELECT set_config('app.x', 'a\\b', false)"), [{ kind: 'set', name: 'app.x', local: false, text: "SET app.x = E'a\\\\b'" }])
  t.same(effects('SELECT set_config(name, $1, false) FROM t'), [{ kind: 'unknown_set_config' }])
  t.same(effects("SELECT set_config('a.b', 'v', $1)"), [{ kind: 'unknown_set_config' }])
  const [withParams] = effects("SELECT set_config('app.user', $1, true)")
  t.same(withParams, { kind: 'set', name: 'app.user', local: true, text: 'SET LOCAL app.user = $1' })
  t.same(resolveSessionEffect(withParams!, (n) => (n === 1 ? "o'k" : undefined)), { kind: 'set', name: 'app.user', local: true, text: "SET LOCAL app.user = 'o''k'" })
  t.same(resolveSessionEffect(withParams!, () => undefined), { kind: 'unknown_set_config' })
  const [named] = effects('SELECT set_config($1, $2, false)')
  t.same(resolveSessionEffect(named!, (n) => (n === 1 ? 'App.Role' : 'admin')), { kind: 'set', name: 'app.role', local: false, text: "SET app.role = 'admin'" })
  t.same(resolveSessionEffect({ kind: 'reset_all' }, () => 'x'), { kind: 'reset_all' })
})

t.test('hints', async (t) => {
  t.same(analyzeStatement('/* pgshard: shard=s2 */ SELECT 1').hints, [{ kind: 'shard', value: 's2' }])
  t.same(analyzeStatement('SELECT a FROM t /* PGSHARD: key=42, role=replica */ WHERE b = 1').hints, [
    { kind: 'key', value: '42' },
    { kind: 'role', value: 'replica' },
  ])
  t.same(analyzeStatement("SELECT 1 -- pgshard: key='a b' role=primary").hints, [
    { kind: 'key', value: 'a b' },
    { kind: 'role', value: 'primary' },
  ])
  t.same(analyzeStatement("SELECT '/* pgshard: shard=s9 */'").hints, [], 'a string is not a comment')
  t.same(analyzeStatement('/* just a comment */ SELECT 1').hints, [])
  t.throws(() => analyzeStatement('/* pgshard: role=master */ SELECT 1'), InvalidHintError)
  t.throws(() => analyzeStatement('/* pgshard: color=red */ SELECT 1'), { code: '22023' })
  let caught: unknown
  try {
    analyzeStatement('/* pgshard: shard */ SELECT 1')
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof SqlAnalysisError, 'hint errors share the base class the engine catches')
  t.match(analyzeStatement("SET pgshard.shard = 's1'"), { kind: 'set', session: [{ kind: 'set', name: 'pgshard.shard', local: false }] })
  t.match(analyzeStatement("SET LOCAL pgshard.key = '42'"), { kind: 'set', session: [{ kind: 'set', name: 'pgshard.key', local: true }] })
  t.match(analyzeStatement('RESET pgshard.role'), { kind: 'set', session: [{ kind: 'reset', name: 'pgshard.role' }] })
})

t.test('INSERT rows and their byte ranges', async (t) => {
  const sql = "INSERT INTO s.accounts AS a (id, name) VALUES (1, 'é'), ($1::int8, 'x') , (-3, NULL) ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id"
  const plan = analyzeStatement(sql)
  t.equal(plan.insert?.text, sql, 'the rows carry the text their byte ranges point into')
  t.same(plan.insert?.table, { schema: 's', name: 'accounts', alias: 'a' })
  t.same(plan.insert?.columns, ['id', 'name'])
  t.same(plan.insert?.rows.map((r) => r.values), [
    [{ literal: '1' }, { literal: 'é' }],
    [{ param: 1, cast: 'int8' }, { literal: 'x' }],
    [{ literal: '-3' }, { null: true }],
  ])
  const bytes = Buffer.from(sql)
  t.same(plan.insert!.rows.map((r) => bytes.subarray(r.start, r.end).toString()), ["(1, 'é')", "($1::int8, 'x')", '(-3, NULL)'])
  t.equal(bytes.subarray(plan.insert!.valuesStart, plan.insert!.valuesEnd).toString(), "(1, 'é'), ($1::int8, 'x') , (-3, NULL)")
  t.same(pinsOf(plan), {
    's.accounts a.id': [{ literal: '1' }, { param: 1, cast: 'int8' }, { literal: '-3' }],
    's.accounts a.name': [{ literal: 'é' }, { literal: 'x' }, { null: true }],
  })
  t.equal(
    buildInsertText(plan.insert!, [2, 0]),
    "INSERT INTO s.accounts AS a (id, name) VALUES (-3, NULL), (1, 'é') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id",
  )
  const keyless = analyzeStatement("INSERT INTO s.accounts AS a (\"Name\", note) VALUES ('é', /* ( */ $1) , ($2, DEFAULT) RETURNING id")
  t.equal(
    insertWithKeys(keyless.insert!, 'id', null, ['41', '$3']),
    "INSERT INTO s.accounts AS a (\"id\", \"Name\", note) OVERRIDING SYSTEM VALUE VALUES (41, 'é', /* ( */ $1) , ($3, $2, DEFAULT) RETURNING id",
    'keys drawn for an INSERT that left its key out: the column first in the list, a key first in each row',
  )
  t.throws(() => insertWithKeys(keyless.insert!, 'id', null, ['1']), RangeError, 'one key per row')
  const defaults = analyzeStatement('INSERT INTO "customers" ("id","name") VALUES (DEFAULT,$1), (default , \'é\') RETURNING "id"')
  t.same(defaults.insert!.rows.map((r) => r.fillable), [[{ start: 46, end: 53 }, null], [{ start: 60, end: 67 }, null]], 'where each row writes DEFAULT')
  t.equal(
    insertWithKeys(defaults.insert!, 'id', 0, ['7', '8']),
    'INSERT INTO "customers" ("id","name") OVERRIDING SYSTEM VALUE VALUES (7,$1), (8 , \'é\') RETURNING "id"',
    'keys for the DEFAULT each row gives its key (Sequelize)',
  )
  t.throws(() => insertWithKeys(defaults.insert!, 'id', 1, ['7', '8']), RangeError, 'only in place of a DEFAULT')
  const nextvals = analyzeStatement("INSERT INTO orders (id, customer_id) VALUES (nextval('orders_id_seq'::regclass), 5), (pg_catalog.NEXTVAL( $1 ), 6), (nextval('x') + 1, 7)")
  t.same(nextvals.insert!.rows.map((r) => r.fillable?.[0]), [{ start: 45, end: 79, nextval: { literal: 'orders_id_seq', cast: 'regclass' } }, { start: 86, end: 110, nextval: { param: 1 } }, undefined], 'nextval(name) alone is a value pgshard may make instead; in an expression it is not')
  const [one, two] = [analyzeStatement("INSERT INTO orders (id, customer_id) VALUES (nextval('public.orders_id_seq'), 5), (DEFAULT, 6)"), analyzeStatement("INSERT INTO orders (id, customer_id) VALUES (nextval('other_seq'), 5)")]
  const named = (ref: ValueRef) => ('literal' in ref ? ref.literal : null)
  t.ok(leavesOut(one.insert!, 0, 'orders_id_seq', named), 'nextval of the sequence pgshard draws the column from, or DEFAULT: left to pgshard')
  t.notOk(leavesOut(two.insert!, 0, 'orders_id_seq', named), 'nextval of another sequence: a value the client gives')
  t.notOk(leavesOut(one.insert!, 0), 'with no sequence to draw from (uuid), nextval is a value the client gives')
  t.equal(insertWithKeys(one.insert!, 'id', 0, ['11', '12']), 'INSERT INTO orders (id, customer_id) OVERRIDING SYSTEM VALUE VALUES (11, 5), (12, 6)', 'the drawn values in place of the calls')
  const always = analyzeStatement('INSERT INTO orders (id, customer_id) OVERRIDING SYSTEM VALUE VALUES (DEFAULT, 5)')
  t.equal(insertWithKeys(always.insert!, 'id', 0, ['13']), 'INSERT INTO orders (id, customer_id) OVERRIDING SYSTEM VALUE VALUES (13, 5)', 'the client\u2019s own OVERRIDING clause: none added')
  t.equal(analyzeStatement('INSERT INTO orders (id, customer_id) OVERRIDING USER VALUE VALUES (DEFAULT, 5)').overridingUser, true, 'OVERRIDING USER VALUE: for the router to refuse')
  t.equal(analyzeStatement('INSERT INTO t VALUES (1, 2)').insert?.columnsAt, null, 'no column list: nowhere to put a key')
  t.same(analyzeStatement('INSERT INTO t VALUES (1, 2)').insert?.columns, [], 'no column list: the router decides')
  t.same(pinsOf(analyzeStatement('INSERT INTO t VALUES (1, 2)')), {})
  t.equal(analyzeStatement('INSERT INTO t (k) SELECT k FROM u').insert, undefined)
  t.same(
    analyzeStatement("INSERT INTO t (k, ts, v) VALUES (1, now(), $1 || 'x'), (2, DEFAULT, 'y')").insert?.rows.map((r) => r.values),
    [[{ literal: '1' }, null, null], [{ literal: '2' }, null, { literal: 'y' }]],
    'expressions and DEFAULT are null; the key values are still known',
  )
  t.same(pins('INSERT INTO t (k, ts) VALUES (1, now()), (2, now())'), { 't.k': [{ literal: '1' }, { literal: '2' }] })
  const defaultValues = analyzeStatement('INSERT INTO t DEFAULT VALUES RETURNING k').insert!
  t.match(defaultValues, { columns: [], columnsAt: null, defaultValues: true, rows: [{ values: [] }] }, 'DEFAULT VALUES: one row of no values')
  t.equal(defaultValues.text.slice(defaultValues.valuesStart, defaultValues.valuesEnd), 'DEFAULT VALUES')
  t.equal(insertWithKeys(defaultValues, 'k', null, ['42']), 'INSERT INTO t ("k") OVERRIDING SYSTEM VALUE VALUES (42) RETURNING k', 'a made key replaces DEFAULT VALUES')
})

t.test('multi-statement queries', async (t) => {
  const tx = analyzeStatement('BEGIN; UPDATE t SET x = 1 WHERE k = 1; UPDATE t SET x = 2 WHERE k = $1; COMMIT;')
  t.match(tx, { kind: 'update', multiStatement: true, writes: true, paramCount: 1, unmergeable: 'several statements in one query' })
  t.equal(tx.scatter, undefined)
  t.same(pinsOf(tx), { 't.k': [{ literal: '1' }, { param: 1 }] })
  t.same(pins('SELECT a FROM t WHERE k = 1; SELECT a FROM t'), {}, 'one statement leaves t unpinned')
  const mixed = analyzeStatement("SELECT a FROM t WHERE k = 1; SET x.y = 'z'; SELECT pg_advisory_lock(1)")
  t.same(mixed.session.map((e) => e.kind), ['set', 'advisory_lock_session'])
  t.equal(mixed.multiStatementTx, undefined, 'no transaction control among them')
  t.equal(tx.multiStatementTx, true, 'BEGIN … COMMIT in one query: which settings stick is unknown to the proxy')
  t.same(mixed.functions, ['pg_advisory_lock'])
  t.match(analyzeStatement('SELECT 1; SELECT 2'), { kind: 'select', writes: false })
})

t.test('errors and empty queries', async (t) => {
  for (const sql of ['', '   ', ';', ' ; ; ', '/* only a comment */', '-- nothing']) {
    t.match(analyzeStatement(sql), { kind: 'empty', commandTag: '', writes: false, tables: [] }, JSON.stringify(sql))
  }
  t.throws(() => analyzeStatement('SELEC 1'), { name: 'SqlSyntaxError', code: '42601', position: 1 })
  t.throws(() => analyzeStatement("SELECT 'éé' FRO t"), { code: '42601', position: 17, message: /syntax error at or near "t"/ }, 'position counts characters, 1-based')
  t.throws(() => analyzeStatement("SELECT 'unterminated"), SqlSyntaxError)
  t.throws(() => analyzeStatement('SELECT 1\0; DROP TABLE t'), SqlSyntaxError)
})

t.test("psql's \\d catalog queries and drivers' own statements parse and are reads", async (t) => {
  const reads = [
    `SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','v','m','S','f','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;`,
    `SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(accounts)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;`,
    `SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;`,
    `SELECT pol.polname, pol.polpermissive,
  CASE WHEN pol.polroles = '{0}' THEN NULL ELSE pg_catalog.array_to_string(array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles) order by 1),',') END,
  pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),
  CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' END AS cmd
FROM pg_catalog.pg_policy pol
WHERE pol.polrelid = '16384' ORDER BY 1;`,
    `select b.oid, b.typarray from pg_catalog.pg_type a left join pg_catalog.pg_type b on b.oid = a.typelem where a.typcategory = 'A' group by b.oid, b.typarray order by b.oid`,
    'SELECT $1::text as name',
    'SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid WHERE typname = $1',
    'SELECT current_setting($1), version()',
  ]
  for (const sql of reads) {
    const plan = analyzeStatement(sql)
    t.equal(plan.kind, 'select', sql.slice(0, 40))
    t.equal(plan.writes, false, sql.slice(0, 40))
  }
  t.same(analyzeStatement(reads[0]!).tables, [
    { schema: 'pg_catalog', name: 'pg_class', alias: 'c' },
    { schema: 'pg_catalog', name: 'pg_namespace', alias: 'n' },
    { schema: 'pg_catalog', name: 'pg_am', alias: 'am' },
  ])
  t.match(analyzeStatement('SET extra_float_digits = 3'), { kind: 'set', session: [{ name: 'extra_float_digits' }] })
  t.match(analyzeStatement('BEGIN ISOLATION LEVEL READ COMMITTED'), { tx: 'begin' })
})

t.test('no input takes the analyzer down: every prefix of real statements, and absurd nesting', async (t) => {
  const corpus = [
    "SELECT a.id, b.x FROM s.accounts a LEFT JOIN orders b ON a.id = b.account_id AND b.k IN (1, 2) WHERE a.id = $1 OR a.id = -3 ORDER BY 2 DESC LIMIT 5 OFFSET 1",
    "INSERT INTO t (k, v) VALUES (1, 'é'), ($1::int8, E'\\n') ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING *",
    "WITH d AS (DELETE FROM q WHERE id = 5 RETURNING *) SELECT g, avg(x), count(*) FROM d GROUP BY g HAVING sum(x) > 1",
    "SELECT set_config('a.b', $1, false); SET LOCAL x = 1; /* pgshard: key=4 */ PREPARE p AS SELECT 1",
    'CREATE TEMP TABLE x AS SELECT * FROM t WHERE k = ANY(ARRAY[1,2]) FOR UPDATE',
  ]
  let failures = 0
  let checked = 0
  for (const sql of corpus) {
    for (let i = 0; i <= sql.length; i++) {
      checked++
      try {
        analyzeStatement(sql.slice(0, i))
      } catch (err) {
        if (!(err instanceof SqlAnalysisError)) {
          failures++
          t.fail(`${JSON.stringify(sql.slice(0, i))}: ${String(err)}`)
        }
      }
    }
  }
  t.equal(failures, 0, `${checked} prefixes: each one a plan or a SqlAnalysisError`)
  const deep = 'SELECT ' + Array(5000).fill('a').join(' + ') + ' FROM t'
  t.throws(() => analyzeStatement(deep), { code: '54001', name: 'StatementTooComplexError' })
  t.throws(() => analyzeStatement('SELECT ' + '('.repeat(20000) + '1' + ')'.repeat(20000)), { code: '42601' }, 'the parser gives up cleanly')
  const wide = analyzeStatement(`SELECT a FROM t WHERE k IN (${Array.from({ length: 20000 }, (_, i) => i).join(',')})`)
  t.equal(wide.pins[0]?.values.length, 20000, 'long IN lists stay linear')
  const ors = analyzeStatement(`SELECT a FROM t WHERE ${Array.from({ length: 5000 }, (_, i) => `k = ${i % 100}`).join(' OR ')}`)
  t.equal(ors.pins[0]?.values.length, 100)
})

t.test('subqueries tied to the FROM level on a column are told apart from other subqueries', async (t) => {
  const sources = (sql: string) => analyzeStatement(sql).scatter?.sources
  const django = sources('SELECT "items"."id" FROM "items" WHERE EXISTS(SELECT 1 AS "a" FROM "orders" U0 WHERE U0."customer_id" = ("items"."id") LIMIT 1)')
  t.same(django?.correlated, [{ tables: [{ name: 'orders', alias: 'u0' }], ties: [{ outer: { relation: 0, column: 'id' }, table: 0, innerColumn: 'customer_id' }] }], 'EXISTS tied on a column')
  t.same(django?.nested, [], 'and not among the other subqueries')
  t.same(sources('SELECT id FROM items WHERE id IN (SELECT customer_id FROM orders)')?.correlated, [{ tables: [{ name: 'orders' }], ties: [{ outer: { relation: 0, column: 'id' }, table: 0, innerColumn: 'customer_id' }] }], 'IN of one column')
  t.same(sources('SELECT i.id, (SELECT count(*) FROM orders o WHERE i.id = o.customer_id AND o.total > 1) FROM items i')?.correlated?.length, 1, 'a scalar subquery in the select list, either side of =')
  for (const sql of ['SELECT i.id FROM items i WHERE NOT (i.id IN (SELECT customer_id FROM orders))', 'SELECT id FROM items WHERE qty > 1 OR id NOT IN (SELECT customer_id FROM orders)', 'SELECT id <> ALL (SELECT customer_id FROM orders) FROM items']) {
    t.same(sources(sql)?.correlated?.[0]?.ties, [{ outer: { relation: 0, column: 'id' }, table: 0, innerColumn: 'customer_id' }], `${sql}: IN under NOT or OR, <> ALL, in the select list`)
  }
  t.same(sources('SELECT o.id FROM orders o WHERE EXISTS (SELECT 1 FROM items U0 INNER JOIN countries U1 ON U1.code = U0.country WHERE U1.code = $1 AND U0.id = o.customer_id)')?.correlated, [{
    tables: [{ name: 'items', alias: 'u0' }, { name: 'countries', alias: 'u1' }],
    ties: [{ outer: { relation: 0, column: 'customer_id' }, table: 0, innerColumn: 'id' }],
  }], 'a subquery joining tables: each tie names its table (the router wants one sharded, the rest reference tables)')
  const drizzle = sources('select "items"."id", "items_orders"."data" from "items" "items" left join lateral (select json_agg(json_build_array("items_orders"."id")) as "data" from (select * from "orders" "items_orders" where "items_orders"."customer_id" = "items"."id" order by "items_orders"."total" limit $1) "items_orders") "items_orders" on true')
  t.same(drizzle?.correlated, [{ tables: [{ name: 'orders', alias: 'items_orders' }], ties: [{ outer: { relation: 0, column: 'id' }, table: 0, innerColumn: 'customer_id' }] }], 'a LATERAL subquery, through the subquery in FROM that wraps the table')
  t.same(drizzle?.join, { join: 'left', left: { relation: 0 }, right: { function: 'a LATERAL subquery' } })
  for (const sql of [
    'SELECT id FROM items WHERE EXISTS (SELECT 1 FROM items WHERE items.id = items.id)',
    'SELECT i.id FROM items i WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = i.id OR o.total > 1)',
    'SELECT i.id FROM items i WHERE NOT (i.id IN (SELECT customer_id FROM orders o JOIN countries c ON c.code = o.country))',
    'SELECT i.id FROM items i WHERE i.id > ALL (SELECT customer_id FROM orders)',
    'SELECT i.id FROM items i WHERE i.id IN (SELECT customer_id FROM orders LIMIT 3)',
    'SELECT i.id FROM items i WHERE i.id IN (SELECT o.customer_id FROM orders o UNION SELECT 1)',
    'SELECT i.id FROM items i WHERE EXISTS (SELECT 1 FROM (SELECT o.customer_id AS i FROM orders o) i WHERE i.customer_id = i.id)',
    'SELECT i.id, x.n FROM items i, LATERAL (SELECT count(*) AS n FROM orders o WHERE o.total > i.id) x',
  ]) {
    const s = sources(sql)
    t.same(s?.correlated, [], `${sql}: not tied`)
    t.ok((s?.nested.length ?? 0) > 0, 'an ordinary subquery, whose tables each shard sees only its own rows of')
  }
})

t.test('lastval() / currval() / nextval() alone are told apart from other calls of them', async (t) => {
  t.same(analyzeStatement('SELECT lastval()').sequenceRead, { fn: 'lastval', column: 'lastval' })
  t.same(analyzeStatement("SELECT NEXTVAL('orders_id_seq')").sequenceRead, { fn: 'nextval', sequence: { literal: 'orders_id_seq' }, column: 'nextval' }, 'Doctrine\'s id generator')
  t.same(analyzeStatement('SELECT CURRVAL($1)').sequenceRead, { fn: 'currval', sequence: { param: 1 }, column: 'currval' })
  t.same(analyzeStatement("select pg_catalog.currval('public.s'::regclass) AS id").sequenceRead, { fn: 'currval', sequence: { literal: 'public.s', cast: 'regclass' }, column: 'id' })
  for (const sql of ['SELECT lastval() + 1', 'SELECT lastval(), 1', 'SELECT lastval() FROM t', 'SELECT app.lastval()', 'SELECT currval(name) FROM seqs', 'SELECT currval(NULL)', 'SELECT lastval() UNION SELECT 1', 'SELECT lastval() WHERE false', "SELECT nextval('s') FROM generate_series(1, 5)", "SELECT nextval('s'), nextval('t')"]) {
    t.equal(analyzeStatement(sql).sequenceRead, undefined, sql)
  }
})

t.test('qualified names read as Postgres reads regclass text', async (t) => {
  t.same(qualifiedNameParts('Public.Customers_ID_seq'), ['public', 'customers_id_seq'])
  t.same(qualifiedNameParts('"My ""Seq"""'), ['My "Seq"'])
  t.same(qualifiedNameParts('s."A".b'), ['s', 'A', 'b'])
  for (const bad of ['', 'a.', '.a', 'a b', '"unclosed', '""', 'a.b.c.d', '1abc']) t.equal(qualifiedNameParts(bad), null, bad)
})
