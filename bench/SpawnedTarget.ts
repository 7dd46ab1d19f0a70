import type { BenchLogin, BenchTarget } from './BenchTarget.js'
import { waitForLogin } from './LoginProbe.js'
import { ServerProcess, type ServerProcessOptions } from './ServerProcess.js'

export interface LaunchSpec {
  name: string
  port: number
  login: BenchLogin
  process: ServerProcessOptions
  /** Where to look when it does not come up. */
  log: string
  loginTimeoutMs?: number
  /** How the program shuts down quickly (PgBouncer: SIGTERM; Pgpool-II: SIGINT). */
  stopSignal: NodeJS.Signals
  stopTimeoutMs?: number
}

/** A pooler (or relay) the bench runs as a child process on 127.0.0.1, ready once a login through it answers. */
export class SpawnedTarget implements BenchTarget {
  readonly host = '127.0.0.1'

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly process: ServerProcess,
    private readonly spec: LaunchSpec,
  ) {}

  get pid(): number {
    return this.process.pid
  }

  static async launch(spec: LaunchSpec): Promise<SpawnedTarget> {
    const proc = ServerProcess.spawn(spec.process)
    const target = new SpawnedTarget(spec.name, spec.port, proc, spec)
    try {
      await waitForLogin(target.host, target.port, spec.login, () => proc.running, spec.loginTimeoutMs)
    } catch (err) {
      await proc.stop('SIGKILL')
      throw new Error(`${spec.name} did not come up (see ${spec.log}): ${err instanceof Error ? err.message : err}`)
    }
    return target
  }

  stop(): Promise<void> {
    return this.process.stop(this.spec.stopSignal, this.spec.stopTimeoutMs)
  }
}
