// pgjdbc from Debian (libpostgresql-jdbc-java), the driver that breaks behind most transaction poolers: its
// server-side statements S_1, S_2, … are per connection, so two clients sharing a server connection collide on
// the names, or find them missing. Run in both pool modes, with more clients than server connections.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { assertDriverChecks } from './harness/driverChecks.js'
import { APP_PASSWORD, APP_USER, startProxy } from './harness/startProxy.js'

const program = join(dirname(fileURLToPath(import.meta.url)), 'java', 'JdbcClient.java')
const JDBC_JAR = '/usr/share/java/postgresql.jar'
const expected = [
  'prepared statements across pooled connections',
  "server-side statements under the proxy's names",
  'batch insert',
  'fetch in batches',
  'error then the connection goes on',
]

for (const mode of ['session', 'transaction'] as const) {
  t.test(`pgjdbc in ${mode} pooling`, async (t) => {
    // Session pooling needs a server connection per client: the program opens 24 at once.
    const fx = await startProxy(t, { config: { pool: { mode, size: mode === 'session' ? 30 : 4, checkout_timeout: '60s' } } })
    const url = `jdbc:postgresql://127.0.0.1:${fx.port}/app`
    await assertDriverChecks(t, 'java', ['-cp', JDBC_JAR, program, url, APP_USER, APP_PASSWORD], expected, 180_000)
  })
}
