import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { giveToPostgres } from '../src/topology/PostgresOsUser.js'
import type { BenchLogin } from './BenchTarget.js'
import { SpawnedTarget } from './SpawnedTarget.js'

export const PGBOUNCER_BINARY = '/usr/sbin/pgbouncer'

export interface PgBouncerOptions {
  /** Its own directory (owned by the postgres OS user): config, auth file, log, pid file. */
  dir: string
  port: number
  backend: { host: string; port: number }
  login: BenchLogin
  /** rolpassword from pg_authid: PgBouncer then reuses the client's SCRAM keys to log in to Postgres. */
  scramVerifier: string
  poolSize: number
}

/** PgBouncer in transaction mode, run from a directory of its own as the postgres OS user. */
export async function startPgBouncer(opts: PgBouncerOptions): Promise<SpawnedTarget> {
  const ini = join(opts.dir, 'pgbouncer.ini')
  const authFile = join(opts.dir, 'userlist.txt')
  const { user, database } = opts.login
  await writeFile(authFile, `"${user}" "${opts.scramVerifier}"\n`, { mode: 0o600 })
  await writeFile(
    ini,
    [
      '[databases]',
      `${database} = host=${opts.backend.host} port=${opts.backend.port} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${opts.port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${authFile}`,
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize}`,
      'max_client_conn = 1000',
      // Per-connection log lines would tax the connection-per-transaction run; pgshard logs at warn.
      'log_connections = 0',
      'log_disconnections = 0',
      `logfile = ${join(opts.dir, 'pgbouncer.log')}`,
      `pidfile = ${join(opts.dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  )
  for (const f of [ini, authFile]) await giveToPostgres(f)
  return SpawnedTarget.launch({
    name: 'PgBouncer', port: opts.port, login: opts.login, log: join(opts.dir, 'pgbouncer.log'),
    // In 1.18 SIGTERM is the immediate shutdown (SIGINT would wait for clients to finish).
    stopSignal: 'SIGTERM',
    process: { command: PGBOUNCER_BINARY, args: [ini], cwd: opts.dir, logFile: join(opts.dir, 'stdout.log'), asPostgres: true, fdLimit: 4096 },
  })
}
