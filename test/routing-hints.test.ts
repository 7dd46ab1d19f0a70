import t from 'tap'
import { PgError } from '../src/protocol/PgError.js'
import { RoutingHints, valueOfSet } from '../src/proxy/RoutingHints.js'

t.test('SET LOCAL hints win over session hints until the transaction ends', async (t) => {
  const h = new RoutingHints()
  h.apply('pgshard.shard', 's1', false)
  h.apply('pgshard.role', 'replica', false)
  h.apply('pgshard.shard', 's2', true)
  h.apply('pgshard.key', '42', true)
  t.equal(h.shard, 's2', 'the local shard hint wins')
  t.equal(h.key, '42')
  t.equal(h.role, 'replica', 'a session hint shows where no local one is set')
  h.endTransaction(true)
  t.equal(h.shard, 's1', 'the session hint is back after the transaction')
  t.equal(h.key, undefined, 'the local key hint is gone')
  h.apply('pgshard.shard', null, false)
  t.equal(h.shard, undefined, 'RESET clears the session hint')
})

t.test('a session hint set inside a transaction is undone if the transaction rolls back', async (t) => {
  const h = new RoutingHints()
  h.apply('pgshard.shard', 's1', false)
  h.apply('pgshard.shard', 's2', false, true)
  h.apply('pgshard.key', '7', false, true)
  t.equal(h.shard, 's2')
  h.endTransaction(false)
  t.equal(h.shard, 's1', 'back to the value before the transaction')
  t.equal(h.key, undefined)
  h.apply('pgshard.shard', 's3', false, true)
  h.endTransaction(true)
  t.equal(h.shard, 's3', 'a commit keeps it')
})

t.test('a wrong hint is an error with its SQLSTATE and changes nothing', async (t) => {
  const h = new RoutingHints()
  h.apply('pgshard.role', 'primary', false)
  t.throws(() => h.apply('pgshard.role', 'leader', false), { code: '22P02', options: { hint: /primary or replica/ } })
  t.equal(h.role, 'primary', 'the earlier role stays')
  t.throws(() => h.apply('pgshard.shardd', 's1', false), new PgError('42704', 'unrecognized configuration parameter "pgshard.shardd"'))
})

t.test('the value of a SET statement, unquoted', async (t) => {
  t.equal(valueOfSet("SET pgshard.shard = 's1'"), 's1')
  t.equal(valueOfSet('SET LOCAL pgshard.key TO 42;'), '42')
  t.equal(valueOfSet("set pgshard.key to 'O''Brien'"), "O'Brien")
})
