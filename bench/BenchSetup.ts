import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { LocalTopology } from '../src/topology/LocalTopology.js'
import { giveToPostgres } from '../src/topology/PostgresOsUser.js'
import type { BenchLogin } from './BenchTarget.js'

export interface BenchSetup {
  /** A temp dir for the poolers' files, logs and pgbench's latency logs; removed by stop(). */
  dir: string
  topology: LocalTopology
  primary: { host: string; port: number }
  login: BenchLogin
  /** The topology's superuser, for pgshard's control connections (health checks). */
  control: { user: string; password: string }
  /** A fresh directory inside dir, reachable by the postgres OS user. */
  subdir(name: string): Promise<string>
  stop(): Promise<void>
}

/**
 * One shard, a primary and no replica: the comparison is of pooling, which a replica would not change, and every
 * target then talks to the same single server. pgbench's tables are created with `pgbench -i -s <scale>`.
 */
export async function startBenchSetup(scale: number, log: (line: string) => void): Promise<BenchSetup> {
  const dir = await mkdtemp('/tmp/pgshard-bench-')
  await chmod(dir, 0o755)
  const login: BenchLogin = { user: 'app', password: randomBytes(12).toString('base64url'), database: 'app' }
  let topology: LocalTopology | undefined
  try {
    topology = await LocalTopology.start({
      shards: 1,
      replicas: 0,
      users: [{ name: login.user, password: login.password }],
      databases: [login.database],
      // Scale 10 is ~160 MB: it fits, so -S measures the hops rather than buffer misses.
      settings: { shared_buffers: '256MB', max_connections: '400' },
      log,
    })
    const primary = { host: topology.shards[0].primary.host, port: topology.shards[0].primary.port }
    log(`pgbench -i -s ${scale} on ${primary.host}:${primary.port}`)
    const args = ['-i', '-s', String(scale), '-q', '-h', primary.host, '-p', String(primary.port), '-U', login.user, login.database]
    const init = spawnSync('pgbench', args, {
      env: { ...process.env, PGPASSWORD: login.password, PGSSLMODE: 'disable' },
      encoding: 'utf8',
      timeout: 600_000,
    })
    if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr.slice(-1500)}`)
    const topo = topology
    return {
      dir,
      topology: topo,
      primary,
      login,
      control: { ...topo.superuser },
      async subdir(name: string) {
        const sub = join(dir, name)
        await mkdir(sub)
        await giveToPostgres(sub)
        return sub
      },
      async stop() {
        await topo.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await topology?.stop()
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}
