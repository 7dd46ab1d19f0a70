import t from 'tap'
import { PreparedSet } from '../src/pool/PreparedSet.js'
import { applySessionEffects, type ConnectionState } from '../src/proxy/SessionEffects.js'
import { SessionPins } from '../src/proxy/SessionPins.js'
import { SessionSettings } from '../src/proxy/SessionSettings.js'

function connection(): ConnectionState {
  return { settings: new Map(), prepared: new PreparedSet(8), dirty: false, unnamedOwner: null }
}

t.test('SET is recorded for the client and for the connection that ran it; SET LOCAL and hints are not', async (t) => {
  const settings = new SessionSettings(new Map())
  const conn = connection()
  const out = applySessionEffects(
    [
      { kind: 'set', name: 'search_path', local: false, text: 'SET search_path = app' },
      { kind: 'set', name: 'timezone', local: true, text: "SET LOCAL TimeZone = 'UTC'" },
      { kind: 'set', name: 'pgshard.shard', local: false, text: "SET pgshard.shard = 's1'" },
    ],
    settings,
    conn,
  )
  t.same([...settings.wanted], [['search_path', 'SET search_path = app']])
  t.same([...conn.settings], [['search_path', 'SET search_path = app']])
  t.same(out, { discardAll: false, pinReason: null, holdsCursor: false, unlocksAdvisory: false })
  t.equal(conn.dirty, false)
})

t.test('RESET goes back to the start-up value, and marks the connection dirty when that value must be set again', async (t) => {
  const settings = new SessionSettings(new Map([['application_name', 'app']]))
  const conn = connection()
  applySessionEffects([{ kind: 'set', name: 'application_name', local: false, text: "SET application_name = 'other'" }], settings, conn)
  applySessionEffects([{ kind: 'reset', name: 'application_name' }], settings, conn)
  t.match(settings.wanted.get('application_name'), /set_config\('application_name', 'app'/)
  t.equal(conn.settings.has('application_name'), false)
  t.equal(conn.dirty, true, 'the server now has its default, not the start-up value')

  const plain = connection()
  const noStartup = new SessionSettings(new Map())
  applySessionEffects([{ kind: 'set', name: 'work_mem', local: false, text: 'SET work_mem = 1000' }], noStartup, plain)
  applySessionEffects([{ kind: 'reset_all' }], noStartup, plain)
  t.equal(noStartup.wanted.size, 0)
  t.equal(plain.settings.size, 0)
  t.equal(plain.dirty, false, 'RESET ALL with nothing from start-up leaves the server as the proxy expects')
})

t.test('DISCARD ALL forgets settings, the connection\'s statements and tells the session to forget the client\'s', async (t) => {
  const settings = new SessionSettings(new Map())
  const conn = connection()
  conn.prepared.add('pgshard_1')
  conn.unnamedOwner = {}
  applySessionEffects([{ kind: 'set', name: 'search_path', local: false, text: 'SET search_path = app' }], settings, conn)
  const out = applySessionEffects([{ kind: 'discard_all' }], settings, conn)
  t.same(out, { discardAll: true, pinReason: null, holdsCursor: false, unlocksAdvisory: false })
  t.equal(settings.wanted.size, 0)
  t.equal(conn.settings.size, 0)
  t.equal(conn.prepared.has('pgshard_1'), false)
  t.equal(conn.unnamedOwner, null)
})

t.test('state the proxy cannot move between connections pins the client, naming the first reason', async (t) => {
  const settings = new SessionSettings(new Map())
  const conn = connection()
  const out = applySessionEffects([{ kind: 'listen', channel: 'jobs' }, { kind: 'temp_table' }], settings, conn)
  t.equal(out.pinReason, 'LISTEN')
  t.equal(applySessionEffects([{ kind: 'advisory_lock_session' }], settings, conn).pinReason, 'a session-level advisory lock')
  const hold = applySessionEffects([{ kind: 'hold_cursor' }], settings, conn)
  t.same([hold.pinReason, hold.holdsCursor], [null, true], 'a WITH HOLD cursor pins until it is closed (SessionPins), not for the session')
  t.equal(applySessionEffects([{ kind: 'set_transaction' }], settings, conn).pinReason, null, 'SET TRANSACTION pins nothing')
})

t.test('a set_config the proxy cannot read makes the connection dirty', async (t) => {
  const conn = connection()
  applySessionEffects([{ kind: 'unknown_set_config' }], new SessionSettings(new Map()), conn)
  t.equal(conn.dirty, true)
})

t.test('a connection is brought to a client’s settings without waiting only when no server could refuse them', async (t) => {
  const settings = new SessionSettings(new Map([['application_name', 'worker-7'], ['TimeZone', 'UTC']]))
  t.equal(settings.mayBeRefused(new Map()), false, 'start-up settings drivers send')
  t.equal(settings.mayBeRefused(new Map([['role', 'SET ROLE reader']])), false, 'a RESET of the last client’s role')
  settings.set('search_path', 'SET search_path = ledger')
  settings.set('statement_timeout', "SET statement_timeout = '5s'")
  t.equal(settings.mayBeRefused(new Map()), false, 'search_path and the timeouts')
  settings.set('role', 'SET ROLE reader')
  t.equal(settings.mayBeRefused(new Map()), true, 'a role may have been dropped since')
  t.equal(settings.mayBeRefused(new Map(settings.wanted)), false, 'nothing to change')
  const isolation = new SessionSettings(new Map([['default_transaction_isolation', 'serializable']]))
  t.equal(isolation.mayBeRefused(new Map()), true, 'a transaction default')
  t.match(isolation.adopt(new Map())!, /^SET TRANSACTION ISOLATION LEVEL READ COMMITTED;/, 'run as READ COMMITTED whatever the connection’s default')
})

t.test('SessionPins: a WITH HOLD cursor pins until closed, a lasting reason until DISCARD ALL', async (t) => {
  const pins = new SessionPins()
  t.equal(pins.reason, null)
  pins.holdCursor('a', false)
  pins.holdCursor('b', false)
  t.equal(pins.reason, 'a WITH HOLD cursor')
  pins.closeCursor('a')
  t.equal(pins.reason, 'a WITH HOLD cursor', 'one of two closed')
  pins.closeCursor('b')
  t.equal(pins.reason, null, 'the last one closed')
  pins.holdCursor('c', false)
  pins.add('a session-level advisory lock')
  pins.closeCursor(null)
  t.equal(pins.reason, 'a session-level advisory lock', 'CLOSE ALL leaves a lasting reason')
  pins.holdCursor(null, false)
  t.equal(pins.reason, 'a session-level advisory lock', 'the first lasting reason is named')
  pins.clear()
  t.equal(pins.reason, null, 'DISCARD ALL ends every pin')
  pins.holdCursor(null, false)
  pins.closeCursor(null)
  t.equal(pins.reason, 'a WITH HOLD cursor', 'a cursor whose name pgshard could not read pins for the session')
  const inTx = new SessionPins()
  inTx.holdCursor('kept', true)
  inTx.transactionEnded(true)
  inTx.holdCursor('undone', true)
  inTx.transactionEnded(false)
  inTx.closeCursor('kept')
  t.equal(inTx.reason, null, 'a cursor declared in a transaction that rolled back is gone with it; one committed stays until closed')
})
