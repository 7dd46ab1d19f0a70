import t from 'tap'
import { PreparedSet } from '../src/pool/PreparedSet.js'
import { initSqlParser } from '../src/router/SqlParser.js'
import { analyzeStatement } from '../src/router/StatementAnalyzer.js'
import { applySessionEffects, type ConnectionState } from '../src/proxy/SessionEffects.js'
import { SessionSettings } from '../src/proxy/SessionSettings.js'
import { SettingsUndo } from '../src/proxy/SettingsUndo.js'

await initSqlParser()

/** A client and the connection serving it, driven statement by statement as the server answers them. */
function session() {
  const settings = new SessionSettings(new Map())
  const conn: ConnectionState = { settings: new Map(), prepared: new PreparedSet(4), dirty: false, unnamedOwner: null }
  const undo = new SettingsUndo(settings)
  const ok = (sql: string) => {
    const plan = analyzeStatement(sql)
    if (plan.kind === 'transaction') undo.onTransactionStatement(plan, conn)
    if (plan.session.length > 0) {
      undo.beforeChange(conn)
      applySessionEffects(plan.session, settings, conn)
    }
  }
  const workMem = () => [settings.wanted.get('work_mem'), conn.settings.get('work_mem')]
  return { undo, ok, workMem, conn, settings }
}

t.test('COMMIT keeps the SETs of the transaction; ROLLBACK undoes them for the client and its connection', async (t) => {
  const s = session()
  s.ok("SET work_mem = '1MB'")
  s.undo.onIdle()
  s.ok('BEGIN')
  s.ok("SET work_mem = '2MB'")
  s.ok('COMMIT')
  s.undo.onIdle()
  t.same(s.workMem(), ["SET work_mem = '2MB'", "SET work_mem = '2MB'"])
  s.ok('BEGIN')
  s.ok("SET work_mem = '3MB'")
  s.ok('ROLLBACK')
  t.same(s.workMem(), ["SET work_mem = '2MB'", "SET work_mem = '2MB'"], 'back to what the transaction began with')
})

t.test('a COMMIT after an error is a rollback', async (t) => {
  const s = session()
  s.ok('BEGIN')
  s.ok("SET work_mem = '3MB'")
  s.undo.onError()
  s.ok('COMMIT')
  t.same(s.workMem(), [undefined, undefined])
})

t.test('an implicit transaction that failed (a pipeline up to Sync) undoes its SETs at ReadyForQuery', async (t) => {
  const s = session()
  s.ok("SET work_mem = '3MB'")
  s.undo.onError()
  s.undo.onIdle()
  t.same(s.workMem(), [undefined, undefined])
  s.ok("SET work_mem = '4MB'")
  s.undo.onIdle()
  s.undo.onError()
  s.undo.onIdle()
  t.same(s.workMem()[0], "SET work_mem = '4MB'", 'an error in a later request leaves an earlier, finished one alone')
})

t.test('savepoints: ROLLBACK TO undoes what came after, RELEASE folds into the enclosing level', async (t) => {
  const s = session()
  s.ok('BEGIN')
  s.ok("SET work_mem = '1MB'")
  s.ok('SAVEPOINT a')
  s.ok("SET work_mem = '2MB'")
  s.ok('SAVEPOINT b')
  s.ok("SET work_mem = '3MB'")
  s.ok('ROLLBACK TO b')
  t.same(s.workMem()[0], "SET work_mem = '2MB'")
  s.ok("SET work_mem = '4MB'")
  s.ok('RELEASE b')
  s.ok('ROLLBACK TO a')
  t.same(s.workMem()[0], "SET work_mem = '1MB'", 'releasing b kept its changes inside a, so rolling back to a undoes them')
  s.ok("SET work_mem = '5MB'")
  s.undo.onError()
  s.ok('ROLLBACK TO a')
  s.ok('COMMIT')
  t.same(s.workMem(), ["SET work_mem = '1MB'", "SET work_mem = '1MB'"], 'ROLLBACK TO ended the aborted state: COMMIT commits')
})

t.test('a savepoint name used twice: ROLLBACK TO goes to the newer one', async (t) => {
  const s = session()
  s.ok('BEGIN')
  s.ok('SAVEPOINT x')
  s.ok("SET work_mem = '1MB'")
  s.ok('SAVEPOINT x')
  s.ok("SET work_mem = '2MB'")
  s.ok('ROLLBACK TO x')
  t.same(s.workMem()[0], "SET work_mem = '1MB'")
  s.ok('ROLLBACK')
  t.same(s.workMem(), [undefined, undefined])
})

t.test('a savepoint the proxy never saw made: the connection is reset before anyone else uses it', async (t) => {
  const s = session()
  s.ok('BEGIN')
  s.ok('ROLLBACK TO unseen')
  t.equal(s.conn.dirty, false, 'nothing changed yet: nothing to fear')
  s.ok("SET work_mem = '1MB'")
  s.ok('ROLLBACK TO unseen')
  t.equal(s.conn.dirty, true)
})

t.test('a transaction on two connections (across shards): ROLLBACK and ROLLBACK TO put back each one’s record', async (t) => {
  const s = session()
  const other: ConnectionState = { settings: new Map(), prepared: new PreparedSet(4), dirty: false, unnamedOwner: null }
  const setOn = (conn: ConnectionState, sql: string) => {
    s.undo.beforeChange(conn)
    applySessionEffects(analyzeStatement(sql).session, s.settings, conn)
  }
  s.ok('BEGIN')
  s.ok("SET work_mem = '1MB'")
  // The second connection joins, brought to the client's settings outside the transaction.
  other.settings.set('work_mem', "SET work_mem = '1MB'")
  setOn(other, "SET work_mem = '2MB'")
  s.ok('ROLLBACK')
  t.same([...s.workMem(), other.settings.get('work_mem')], [undefined, undefined, "SET work_mem = '1MB'"], 'each connection as it was when the transaction reached it')

  s.ok('BEGIN')
  s.ok("SET work_mem = '3MB'")
  s.ok('SAVEPOINT a')
  other.settings.set('work_mem', "SET work_mem = '3MB'")
  setOn(other, "SET work_mem = '4MB'")
  s.ok('ROLLBACK TO a')
  t.same([...s.workMem(), other.settings.get('work_mem')], ["SET work_mem = '3MB'", "SET work_mem = '3MB'", "SET work_mem = '3MB'"], 'ROLLBACK TO: the joining connection as it joined')
  s.ok('COMMIT')
  s.undo.onIdle()
  t.same(s.workMem(), ["SET work_mem = '3MB'", "SET work_mem = '3MB'"])
})
