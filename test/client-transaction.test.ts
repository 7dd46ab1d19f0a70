// The client's transaction as the proxy sees it: a BEGIN held back until the first statement shows its shard,
// what follows it there, when it may span shards, and what its end clears.
import t from 'tap'
import { ClientTransaction } from '../src/proxy/ClientTransaction.js'
import { analyzeStatement } from '../src/router/StatementAnalyzer.js'
import { initSqlParser } from '../src/router/SqlParser.js'

await initSqlParser()

t.test('a held-back BEGIN starts with what followed it, once', async (t) => {
  const tx = new ClientTransaction()
  tx.holdBegin('BEGIN READ ONLY', analyzeStatement('BEGIN READ ONLY'))
  t.same([tx.status, tx.readOnly, tx.none], ['T', true, false])
  tx.follow(analyzeStatement('SET LOCAL statement_timeout = 5'), 'SET LOCAL statement_timeout = 5')
  tx.follow(analyzeStatement('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE'), 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE')
  t.equal(tx.isolation, 'serializable', 'SET TRANSACTION shapes it while the BEGIN waits')
  tx.current = 'SELECT 1 FROM items WHERE id = 5'
  const started = tx.start()
  t.same(started?.begin, 'BEGIN READ ONLY')
  t.same(started?.following.map((f) => f.sql), ['SET LOCAL statement_timeout = 5', 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE'])
  t.equal(tx.startedBy, 'SELECT 1 FROM items WHERE id = 5', 'the statement that took it to a server')
  t.equal(tx.start(), null, 'started once')
  t.ok(tx.opening.active, 'a shard joining later opens it the same way')
  t.ok(tx.spans(false, false), 'READ ONLY: it may span shards without two-phase commit, SERIALIZABLE too')
})

t.test('its end clears what belonged to it', async (t) => {
  const tx = new ClientTransaction()
  tx.holdBegin('BEGIN', analyzeStatement('BEGIN'))
  t.ok(tx.spans(false, false), 'read-write without two_phase: it may read other shards (the router keeps its writes to one)')
  t.notOk(tx.spans(false, true), 'but not when SERIALIZABLE by default')
  t.ok(tx.spans(true, true), 'with two_phase, always')
  const serializable = new ClientTransaction()
  serializable.holdBegin('BEGIN ISOLATION LEVEL SERIALIZABLE', analyzeStatement('BEGIN ISOLATION LEVEL SERIALIZABLE'))
  t.notOk(serializable.spans(false, false), 'nor when its BEGIN says SERIALIZABLE')
  tx.start()
  tx.writer = 1
  tx.sequenceShards.add(0)
  tx.sequenceShards.add(1)
  tx.end()
  t.same([tx.status, tx.pendingBegin, tx.startedBy, tx.sequenceShards.size, tx.opening.active, tx.none], ['I', null, null, 0, false, true])
  tx.wrote = true
  tx.sequenceShards.add(1)
  tx.writesDone()
  t.same([tx.wrote, tx.sequenceShards.size, tx.writer], [false, 0, undefined], 'a unit outside a transaction ends its writes at ReadyForQuery')
})
