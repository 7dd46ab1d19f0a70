import { join } from 'node:path'
import type { BenchLogin, BenchTarget } from './BenchTarget.js'
import { waitForLogin } from './LoginProbe.js'
import { ServerProcess } from './ServerProcess.js'

const RELAY = join(import.meta.dirname, 'node-relay.ts')
const LOADER = join(import.meta.dirname, '..', 'scripts', 'ts-loader.mjs')

/**
 * bench/node-relay.ts as a child process: bytes copied both ways, a server connection per client. Not a pooler:
 * it shows what Node's sockets alone cost per transaction, the floor under pgshard's figures.
 */
export class NodeRelayTarget implements BenchTarget {
  readonly name = 'node-relay'
  readonly host = '127.0.0.1'

  private constructor(
    readonly port: number,
    private readonly process: ServerProcess,
  ) {}

  get pid(): number {
    return this.process.pid
  }

  static async start(opts: { dir: string; port: number; backend: { host: string; port: number }; login: BenchLogin }): Promise<NodeRelayTarget> {
    const proc = ServerProcess.spawn({
      command: process.execPath,
      args: ['--no-warnings', '--import', LOADER, RELAY, String(opts.port), opts.backend.host, String(opts.backend.port)],
      cwd: opts.dir,
      logFile: join(opts.dir, 'node-relay.log'),
      asPostgres: false,
      fdLimit: 4096,
    })
    const target = new NodeRelayTarget(opts.port, proc)
    try {
      await waitForLogin(target.host, target.port, opts.login, () => proc.running)
    } catch (err) {
      await proc.stop('SIGKILL')
      throw new Error(`the Node relay did not come up (see ${join(opts.dir, 'node-relay.log')}): ${err instanceof Error ? err.message : err}`)
    }
    return target
  }

  stop(): Promise<void> {
    return this.process.stop('SIGTERM', 10_000)
  }
}
