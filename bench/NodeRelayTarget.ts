import { join } from 'node:path'
import type { BenchLogin } from './BenchTarget.js'
import { SpawnedTarget } from './SpawnedTarget.js'

const RELAY = join(import.meta.dirname, 'node-relay.ts')
const LOADER = join(import.meta.dirname, '..', 'scripts', 'ts-loader.mjs')

/**
 * bench/node-relay.ts as a child process: bytes copied both ways, a server connection per client. Not a pooler:
 * it shows what Node's sockets alone cost per transaction, the floor under pgshard's figures.
 */
export function startNodeRelay(opts: { dir: string; port: number; backend: { host: string; port: number }; login: BenchLogin }): Promise<SpawnedTarget> {
  const log = join(opts.dir, 'node-relay.log')
  return SpawnedTarget.launch({
    name: 'node-relay', port: opts.port, login: opts.login, log, stopSignal: 'SIGTERM', stopTimeoutMs: 10_000,
    process: {
      command: process.execPath,
      args: ['--no-warnings', '--import', LOADER, RELAY, String(opts.port), opts.backend.host, String(opts.backend.port)],
      cwd: opts.dir, logFile: log, asPostgres: false, fdLimit: 4096,
    },
  })
}
