import t from 'tap'
import { createLogger } from '../src/log/Logger.js'

function capture(): { lines: Record<string, unknown>[]; destination: { write(line: string): void } } {
  const lines: Record<string, unknown>[] = []
  return { lines, destination: { write: (line: string) => lines.push(JSON.parse(line)) } }
}

t.test('secrets are redacted wherever they sit in a logged object', async (t) => {
  const { lines, destination } = capture()
  const log = createLogger({ level: 'info', destination })
  log.info(
    {
      password: 'top-secret',
      user: { name: 'app', password: 'nested-secret', scram_verifier: 'SCRAM-SHA-256$4096:x$y:z' },
      users: [{ name: 'app', password: 'listed-secret', server_password: 'server-secret' }],
      config: { control: { password: 'control-secret' }, users: [{ password: 'config-secret' }] },
      params: ['42', 'alice@example.com'],
    },
    'login',
  )
  t.equal(lines.length, 1)
  const [line] = lines
  t.equal(line.password, '[Redacted]')
  t.same(line.user, { name: 'app', password: '[Redacted]', scram_verifier: '[Redacted]' })
  t.same(line.users, [{ name: 'app', password: '[Redacted]', server_password: '[Redacted]' }])
  t.same(line.config, { control: { password: '[Redacted]' }, users: [{ password: '[Redacted]' }] })
  t.equal(line.params, '[Redacted]', 'query parameters are hidden by default')
  t.notMatch(JSON.stringify(lines), /secret|alice/)
})

t.test('JSON lines with level names, ISO time, component children and level filtering', async (t) => {
  const { lines, destination } = capture()
  const log = createLogger({ level: 'info', destination, logParameters: true })
  const pool = log.child({ component: 'pool' })
  pool.debug('not shown at info')
  pool.warn({ params: ['42'], node: 'shard1-a' }, 'slow checkout')
  t.equal(lines.length, 1)
  t.match(lines[0], { level: 'warn', component: 'pool', node: 'shard1-a', msg: 'slow checkout' })
  t.same(lines[0].params, ['42'], 'log.log_parameters shows parameters')
  t.match(lines[0].time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  const silent = capture()
  createLogger({ level: 'silent', destination: silent.destination }).error('nothing')
  t.same(silent.lines, [])
})
