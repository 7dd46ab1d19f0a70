// TransactionOpening: what a shard joining a READ ONLY transaction runs first, following Postgres' savepoint
// rules (RELEASE keeps what ran since the savepoint, ROLLBACK TO undoes it, the innermost of equal names wins).
import t from 'tap'
import { TransactionOpening } from '../src/proxy/TransactionOpening.js'
import { analyzeStatement } from '../src/router/StatementAnalyzer.js'
import { initSqlParser } from '../src/router/SqlParser.js'

await initSqlParser()
const opening = (begin: string, ...follow: string[]) => {
  const o = new TransactionOpening()
  o.start(begin, follow.map((sql) => ({ sql, plan: analyzeStatement(sql) })))
  return o
}
const run = (o: TransactionOpening, ...sqls: string[]) => {
  for (const sql of sqls) o.record(analyzeStatement(sql), sql)
  return o.sql().split('\n;')
}

t.test('the BEGIN and what followed it before the first statement', async (t) => {
  const o = opening('BEGIN -- a report', 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', "SET LOCAL search_path = ledger")
  t.equal(o.sql(), "BEGIN -- a report\n;SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY\n;SET LOCAL search_path = ledger", 'a newline ends the comment before the next statement')
  t.ok(o.active)
  o.end()
  t.notOk(o.active)
  t.equal(o.sql(), '')
  run(o, 'SAVEPOINT a')
  t.equal(o.sql(), '', 'nothing is recorded outside a transaction')
})

t.test('savepoints as Postgres keeps them', async (t) => {
  t.same(run(opening('BEGIN READ ONLY'), 'SAVEPOINT a', "SET LOCAL work_mem = '8MB'", 'SAVEPOINT b', 'ROLLBACK TO a'), ['BEGIN READ ONLY', 'SAVEPOINT a'], 'ROLLBACK TO undoes what came after, keeps the savepoint')
  t.same(run(opening('BEGIN READ ONLY'), 'SAVEPOINT a', "SET LOCAL work_mem = '8MB'", 'SAVEPOINT b', 'RELEASE a'), ['BEGIN READ ONLY', "SET LOCAL work_mem = '8MB'"], 'RELEASE ends it and the ones inside it, keeps their SET LOCAL')
  t.same(run(opening('BEGIN READ ONLY'), 'SAVEPOINT a', 'SAVEPOINT b', 'SAVEPOINT a', 'ROLLBACK TO SAVEPOINT a'), ['BEGIN READ ONLY', 'SAVEPOINT a', 'SAVEPOINT b', 'SAVEPOINT a'], 'the innermost of two equal names')
  t.same(run(opening('BEGIN READ ONLY'), 'SAVEPOINT "A"', 'RELEASE a'), ['BEGIN READ ONLY', 'SAVEPOINT "A"'], 'a quoted name is compared as the server compares it')
  t.same(run(opening('BEGIN READ ONLY'), 'RELEASE nope', 'ROLLBACK TO nope'), ['BEGIN READ ONLY'], 'an unknown savepoint (the server refuses it) changes nothing')
  const psql = opening('BEGIN READ ONLY')
  for (let i = 0; i < 1000; i++) run(psql, 'SAVEPOINT pg_psql_temporary_savepoint', 'RELEASE pg_psql_temporary_savepoint')
  t.same(psql.sql(), 'BEGIN READ ONLY', "psql's ON_ERROR_ROLLBACK savepoints do not pile up")
})
