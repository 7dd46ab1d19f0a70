import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { giveToPostgres } from '../src/topology/PostgresOsUser.js'
import { runAsPostgres } from '../src/topology/PostgresProgram.js'
import type { BenchLogin, BenchTarget } from './BenchTarget.js'
import { waitForLogin } from './LoginProbe.js'
import { ServerProcess } from './ServerProcess.js'

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
export class PgpoolTarget implements BenchTarget {
  readonly name = 'Pgpool-II'
  readonly host = '127.0.0.1'

  private constructor(
    readonly port: number,
    private readonly process: ServerProcess,
  ) {}

  get pid(): number {
    return this.process.pid
  }

  static async start(opts: PgpoolOptions): Promise<PgpoolTarget> {
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
    const proc = ServerProcess.spawn({
      command: PGPOOL_BINARY,
      args: ['-n', '-D', '-f', file('pgpool.conf'), '-F', file('pcp.conf'), '-a', file('pool_hba.conf'), '-k', file('pgpool.key')],
      cwd: dir,
      logFile: file('pgpool.log'),
      asPostgres: true,
      fdLimit: 4096,
    })
    const target = new PgpoolTarget(opts.port, proc)
    try {
      await waitForLogin(target.host, target.port, opts.login, () => proc.running, 30_000)
    } catch (err) {
      await proc.stop('SIGKILL')
      throw new Error(`Pgpool-II did not come up (see ${file('pgpool.log')}): ${err instanceof Error ? err.message : err}`)
    }
    return target
  }

  stop(): Promise<void> {
    // SIGINT is Pgpool-II's fast shutdown: it ends its children and exits.
    return this.process.stop('SIGINT')
  }
}
