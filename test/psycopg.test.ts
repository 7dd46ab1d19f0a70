// psycopg 3 from Debian (python3-psycopg) through the proxy: pipeline mode, server-side cursors, COPY, binary
// parameters and server-side prepared statements — in both pool modes.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { assertDriverChecks } from './harness/driverChecks.js'
import { APP_PASSWORD, startProxy } from './harness/startProxy.js'

const script = join(dirname(fileURLToPath(import.meta.url)), 'python', 'psycopg_client.py')
const expected = [
  'executemany in pipeline mode',
  'server-side cursor',
  'COPY in and out',
  'binary prepared statements',
  'prepared statements in pipeline mode',
  'error inside a pipeline',
]

for (const mode of ['session', 'transaction'] as const) {
  t.test(`psycopg in ${mode} pooling`, async (t) => {
    const fx = await startProxy(t, { config: { pool: { mode, size: 2 } } })
    await assertDriverChecks(t, '/usr/bin/python3', [script, `${fx.dsn} password=${APP_PASSWORD}`], expected, 60_000)
  })
}
