// PeriodicTask: the loop behind the prepared-transaction resolver and the cross-shard deadlock detector.
import t from 'tap'
import { PeriodicTask } from '../src/health/PeriodicTask.js'

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('a round asked for while one runs shares it; a failed round is reported and the next comes', async (t) => {
  let rounds = 0
  let release!: () => void
  const errors: string[] = []
  const task = new PeriodicTask(
    async () => {
      rounds++
      await new Promise<void>((r) => (release = r))
      if (rounds === 1) throw new Error('first fails')
      return rounds
    },
    () => 5,
    (err) => errors.push(err.message),
  )
  const a = task.runNow()
  const b = task.runNow()
  t.equal(a, b, 'one round, shared')
  release()
  await t.rejects(a, { message: 'first fails' })
  t.equal(rounds, 1)
  task.start()
  for (let i = 0; i < 200 && rounds < 2; i++) await tick(5)
  t.equal(rounds, 2, 'started: the next round came on its own')
  task.stop()
  release()
  await tick(30)
  t.equal(rounds, 2, 'stopped while a round ran: no round is scheduled after it')
  t.same(errors, [], 'the failure of a round asked for directly went to its caller, not to onError')
})

t.test('start(now): the first round at once; started again, one chain of rounds, not two', async (t) => {
  let rounds = 0
  let scheduled = 0
  const task = new PeriodicTask(
    async () => ++rounds,
    () => {
      scheduled++
      return 60_000
    },
    () => undefined,
  )
  task.start(true)
  t.equal(rounds, 1, 'the first round ran at once')
  task.start(true)
  await task.runNow()
  await tick(0)
  t.equal(scheduled, 1, 'after both starts\u2019 rounds, one next round is planned: the first start\u2019s chain ended at the second start')
  task.stop()
})
