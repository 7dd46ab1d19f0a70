// SequenceKeys: keys drawn from a sequence in blocks, spare ones kept for the next INSERT, only those of one
// shard for a transaction held there, and a clear error when none fit.
import t from 'tap'
import { SequenceKeys, type KeyRequest } from '../src/proxy/SequenceKeys.js'

/** A sequence counting from 1, with the sizes of the draws it served. */
function sequence(): { draw: (n: number) => Promise<bigint[]>; draws: number[] } {
  let next = 1n
  const draws: number[] = []
  return {
    draws,
    draw: async (n) => {
      draws.push(n)
      return Array.from({ length: n }, () => next++)
    },
  }
}

const request = (count: number, fits: KeyRequest['fits'] = null, source = 'app\0app\0seq'): KeyRequest => ({ source, sequence: 'seq', count, fits, odds: 2 })

t.test('keys come in the order drawn, a block at a time, spare ones serving the next request', async (t) => {
  const keys = new SequenceKeys(4, 100)
  const seq = sequence()
  t.same(await keys.take(request(3), seq.draw), [1n, 2n, 3n])
  t.same(await keys.take(request(2), seq.draw), [4n, 5n], 'the spare 4, then a new block')
  t.same(seq.draws, [4, 4], 'two round trips for five keys')
  t.same(await keys.take(request(2, null, 'app\0other\0seq'), seq.draw), [9n, 10n], 'another user has spare values of its own')
  t.same(await keys.take(request(10), seq.draw), [6n, 7n, 8n, 13n, 14n, 15n, 16n, 17n, 18n, 19n], 'a larger request draws what it lacks')
})

t.test('keys that fit a shard: the others stay for later requests, in order', async (t) => {
  const keys = new SequenceKeys(4, 100)
  const seq = sequence()
  const even = (k: bigint) => k % 2n === 0n
  t.same(await keys.take(request(3, even), seq.draw), [2n, 4n, 6n])
  t.same(await keys.take(request(4), seq.draw), [1n, 3n, 5n, 7n], 'the odd ones drawn meanwhile come next')
})

t.test('no key fits after some draws: an error, and the values drawn stay spare', async (t) => {
  const keys = new SequenceKeys(2, 1000)
  const seq = sequence()
  await t.rejects(keys.take(request(1, () => false), seq.draw), { code: '0A000', message: /found no key from sequence seq for the transaction's shard after 8 draws/ })
  t.equal(seq.draws.length, 8, 'bounded')
  t.same(await keys.take(request(2), seq.draw), [1n, 2n], 'nothing was lost')
})

t.test('spare values are bounded: beyond the limit they are dropped (a gap, as a rolled-back nextval leaves)', async (t) => {
  const keys = new SequenceKeys(10, 3)
  const seq = sequence()
  t.same(await keys.take(request(1), seq.draw), [1n])
  t.same(await keys.take(request(5), seq.draw), [2n, 3n, 4n, 11n, 12n], 'three of the first block were kept')
  t.same(await keys.take(request(25), seq.draw), [13n, 14n, 15n, ...Array.from({ length: 22 }, (_, i) => BigInt(21 + i))], 'a request larger than the limit takes its draw whole')
})
