import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BenchLogin } from './BenchTarget.js'
import { SpawnedTarget } from './SpawnedTarget.js'

export interface PgshardOptions {
  /** bin/pgshard of a build (PgshardBuild). */
  bin: string
  dir: string
  port: number
  backend: { host: string; port: number }
  login: BenchLogin
  /** For the proxy's health checks (a superuser: it could also promote, which a one-node topology never needs). */
  control: { user: string; password: string }
  poolSize: number
  maxClientConnections?: number
  /** Extra node flags for the proxy (--cpu-prof, --perf-basic-prof, …): through bin/pgshard's PGSHARD_NODE_ARGS (NODE_OPTIONS refuses --cpu-prof). */
  nodeArgs?: string[]
  fdLimit?: number
}

/**
 * The compiled pgshard (`bin/pgshard start -c FILE`, as users run it) as a child process with its own
 * event loop, over a one-shard map in transaction mode. pgbench_accounts is sharded by aid, so `pgbench -S` pays
 * for key extraction and the ring lookup as a sharded application would.
 */
export async function startPgshard(opts: PgshardOptions): Promise<SpawnedTarget> {
  const configFile = join(opts.dir, 'pgshard.yaml')
  const config = {
    listen: { host: '127.0.0.1', port: opts.port, max_client_connections: opts.maxClientConnections ?? 10_000 },
    users: [{ name: opts.login.user, password: opts.login.password }],
    control: { user: opts.control.user, password: opts.control.password, database: 'postgres' },
    databases: [{ name: opts.login.database }],
    shards: [{ name: 's0', primary: { host: opts.backend.host, port: opts.backend.port } }],
    pool: { mode: 'transaction', size: opts.poolSize },
    // No replicas in this topology: reads stay on the primary.
    routing: { read_from: 'primary' },
    sharding: { tables: [{ name: 'pgbench_accounts', key: 'aid', type: 'integer' }] },
    log: { level: 'warn' },
  }
  // JSON is YAML: the loader reads it as any shard map.
  await writeFile(configFile, JSON.stringify(config, null, 2))
  const log = join(opts.dir, 'pgshard.log')
  return SpawnedTarget.launch({
    name: 'pgshard', port: opts.port, login: opts.login, log,
    // SIGTERM is the proxy's graceful stop (and the moment --cpu-prof writes its profile).
    stopSignal: 'SIGTERM', stopTimeoutMs: 30_000,
    process: {
      command: opts.bin,
      args: ['start', '-c', configFile],
      env: opts.nodeArgs?.length ? { ...process.env, PGSHARD_NODE_ARGS: opts.nodeArgs.join(' ') } : process.env,
      cwd: opts.dir, logFile: log, asPostgres: false, fdLimit: opts.fdLimit ?? 4096,
    },
  })
}
