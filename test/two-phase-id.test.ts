// The names of prepared cross-shard parts: what the resolver reads back must be what was written, for a
// client's transaction (no part) and for RESHARD's parts (one per server database, told apart by a number).
import t from 'tap'
import { formatTwoPhaseId, parseTwoPhaseId } from '../src/proxy/TwoPhaseId.js'

t.test('a gid names its deciding shard, its transaction id and its part', async (t) => {
  t.equal(formatTwoPhaseId({ decidingShard: 's0', xid: '7450' }), 'pgshard:s0:7450')
  t.equal(formatTwoPhaseId({ decidingShard: 's0', xid: '7450', part: 3 }), 'pgshard:s0:7450.3')
  t.same(parseTwoPhaseId('pgshard:s0:7450'), { decidingShard: 's0', xid: '7450' })
  t.same(parseTwoPhaseId('pgshard:s0:7450.3'), { decidingShard: 's0', xid: '7450', part: 3 })
  t.same(parseTwoPhaseId('pgshard:eu:west:12.1'), { decidingShard: 'eu:west', xid: '12', part: 1 }, 'a shard name may hold a colon')
  for (const id of [{ decidingShard: 'a.b', xid: '18446744073709551615' }, { decidingShard: 'x', xid: '1', part: 999 }]) {
    t.same(parseTwoPhaseId(formatTwoPhaseId(id)), id, `round trip ${formatTwoPhaseId(id)}`)
  }
})

t.test('names pgshard did not make are not taken for its own', async (t) => {
  for (const gid of ['other:s0:1', 'pgshard:s0:', 'pgshard:s0:1.', 'pgshard:s0:1.x', 'pgshard:s0:abc', 'pgshard:1', 'pgshard::1.2.3']) {
    t.equal(parseTwoPhaseId(gid), null, gid)
  }
})
