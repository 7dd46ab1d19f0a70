import { spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import { cleanUpOnExit } from '../src/topology/ExitCleanup.js'
import { postgresOsUser } from '../src/topology/PostgresOsUser.js'
import { signalQuietly } from '../src/topology/ProcessScan.js'

export interface ServerProcessOptions {
  command: string
  args: string[]
  cwd: string
  /** stdout and stderr go here. */
  logFile: string
  /** Run as the postgres OS user (when we are root): PgBouncer and Pgpool-II refuse to run as root. */
  asPostgres: boolean
  /** Soft fd limit to raise to (up to the hard limit when we cannot raise that). */
  fdLimit: number
  env?: NodeJS.ProcessEnv
}

/**
 * A long-running program the bench starts and stops by its own pid. `exec` in the wrapper shell keeps that pid
 * the program's, so /proc/<pid> shows the program itself (its RSS, its fd limit). Killed if the bench exits.
 */
export class ServerProcess {
  readonly pid: number
  readonly exited: Promise<number | null>
  private readonly forgetCleanup: () => void

  private constructor(private readonly child: ChildProcess) {
    if (child.pid === undefined) throw new Error('the process did not start')
    this.pid = child.pid
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
    // The whole process group: Pgpool-II's children must not outlive a killed parent.
    this.forgetCleanup = cleanUpOnExit(() => signalQuietly(-this.pid, 'SIGKILL'))
    void this.exited.then(() => this.forgetCleanup())
  }

  static spawn(opts: ServerProcessOptions): ServerProcess {
    const user = opts.asPostgres ? postgresOsUser() : undefined
    const log = openSync(opts.logFile, 'a')
    try {
      // runuser and su reset the soft fd limit to 1024; PgBouncer with max_client_conn 1000 needs ~1,130.
      const raise = `ulimit -n ${opts.fdLimit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`
      const child = spawn('/bin/sh', ['-c', raise, opts.command, ...opts.args], {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        uid: user?.uid,
        gid: user?.gid,
        // Its own process group: a Ctrl-C at the terminal reaches the bench, which stops everything in order.
        detached: true,
        stdio: ['ignore', log, log],
      })
      child.on('error', () => {})
      return new ServerProcess(child)
    } finally {
      closeSync(log)
    }
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Asks it to stop; kills its process group if it has not exited within `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<void> {
    if (!this.running) return
    signalQuietly(this.pid, signal)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)))
    if ((await Promise.race([this.exited, late])) === 'late') {
      signalQuietly(-this.pid, 'SIGKILL')
      await this.exited
    }
    clearTimeout(timer)
  }
}
