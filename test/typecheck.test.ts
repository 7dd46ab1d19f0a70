// The whole project (sources, tests, benchmarks) type-checks under `strict`: tests run through a
// transpile-only loader, so without this a type error would never fail CI.
import { join } from 'node:path'
import t from 'tap'
import { runCommand } from './harness/runCommand.js'

t.test('tsc --noEmit is clean', async (t) => {
  const root = join(import.meta.dirname, '..')
  const r = await runCommand(join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', root], { cwd: root, timeoutMs: 240_000 })
  t.equal(r.code, 0, r.stdout.split('\n').slice(0, 30).join('\n'))
})
