import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { giveToPostgres } from '../src/topology/PostgresOsUser.js'
import { runAsPostgres } from '../src/topology/PostgresProgram.js'
import type { BenchLogin } from './BenchTarget.js'
import { SpawnedTarget } from './SpawnedTarget.js'

export const PGPOOL_BINARY = '/usr/sbin/pgpool'
const PG_ENC = '/usr/sbin/pg_enc'

export interface PgpoolOptions {
  dir: string
  port: number
  backend: { host: string; port: number }
  login: BenchLogin
  /** Pgpool-II serves each client from a child process of its own: at least the most clients of any run. */
  children: number
}

/**
 * Pgpool-II in streaming-replication mode over the one primary. SCRAM both ways needs the clear password:
 * pool_passwd holds it AES-encrypted (pg_enc) and pgpool decrypts it with the key file given by -k.
 */
export async function startPgpool(opts: PgpoolOptions): Promise<SpawnedTarget> {
  const { dir } = opts
  const { user, password } = opts.login
  const file = (name: string) => join(dir, name)
  const conf = {
    backend_clustering_mode: `'streaming_replication'`,
    listen_addresses: `'127.0.0.1'`,
    port: String(opts.port),
    socket_dir: `'${dir}'`,
    pcp_listen_addresses: `''`,
    pcp_socket_dir: `'${dir}'`,
    backend_hostname0: `'${opts.backend.host}'`,
    backend_port0: String(opts.backend.port),
    backend_weight0: '1',
    enable_pool_hba: 'on',
    pool_passwd: `'pool_passwd'`,
    num_init_children: String(opts.children),
    max_pool: '1',
    // The primary check at start-up logs in as this user (its password comes from pool_passwd); no periodic checks.
    sr_check_user: `'${user}'`,
    sr_check_password: `''`,
    sr_check_period: '0',
    health_check_period: '0',
    failover_on_backend_error: 'off',
    use_watchdog: 'off',
    log_destination: `'stderr'`,
    log_min_messages: 'warning',
    logdir: `'${dir}'`,
    pid_file_name: `'${file('pgpool.pid')}'`,
    wd_ipc_socket_dir: `'${dir}'`,
    memqcache_oiddir: `'${file('oiddir')}'`,
  }
  await mkdir(file('oiddir'))
  await writeFile(file('pgpool.conf'), Object.entries(conf).map(([k, v]) => `${k} = ${v}\n`).join(''))
  await writeFile(file('pool_hba.conf'), 'host all all 127.0.0.1/32 scram-sha-256\n')
  await writeFile(file('pcp.conf'), '')
  await writeFile(file('pgpool.key'), 'pgshard-bench-key\n', { mode: 0o600 })
  for (const f of ['oiddir', 'pgpool.conf', 'pool_hba.conf', 'pcp.conf', 'pgpool.key']) await giveToPostgres(file(f))
  await runAsPostgres(PG_ENC, ['-m', '-k', file('pgpool.key'), '-f', file('pgpool.conf'), '-u', user, password], { cwd: dir })
  return SpawnedTarget.launch({
    name: 'Pgpool-II', port: opts.port, login: opts.login, log: file('pgpool.log'), loginTimeoutMs: 30_000,
    // SIGINT is Pgpool-II's fast shutdown: it ends its children and exits.
    stopSignal: 'SIGINT',
    process: {
      command: PGPOOL_BINARY,
      args: ['-n', '-D', '-f', file('pgpool.conf'), '-F', file('pcp.conf'), '-a', file('pool_hba.conf'), '-k', file('pgpool.key')],
      cwd: dir, logFile: file('pgpool.log'), asPostgres: true, fdLimit: 4096,
    },
  })
}
