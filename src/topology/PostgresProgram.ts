import { spawn } from 'node:child_process'
import { basename } from 'node:path'
import { postgresOsUser } from './PostgresOsUser.js'

export interface ProgramResult {
  stdout: string
  stderr: string
}

/** A Postgres program exited non-zero, timed out, or could not start. */
export class ProgramFailedError extends Error {
  constructor(
    readonly program: string,
    readonly exitCode: number | null,
    readonly output: string,
  ) {
    super(`${program} failed (${exitCode === null ? 'killed or timed out' : `exit code ${exitCode}`}): ${output.trim().slice(-2000)}`)
    this.name = 'ProgramFailedError'
  }
}

export interface RunOptions {
  cwd: string
  input?: string
  env?: Record<string, string>
  timeoutMs?: number
  /** Start it in its own process group, so a Ctrl-C meant for us does not reach the servers it starts. */
  detached?: boolean
}

/**
 * Runs a program (a path, or a name found on PATH) as the postgres OS user when we are root. The environment is
 * built from scratch: inherited PG* variables (PGHOST, PGPORT, …) must not redirect the tools.
 */
export function runAsPostgres(file: string, args: string[], opts: RunOptions): Promise<ProgramResult> {
  const program = basename(file)
  const user = postgresOsUser()
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', HOME: opts.cwd, ...opts.env }
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env,
      uid: user?.uid,
      gid: user?.gid,
      detached: opts.detached ?? false,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', (err) => reject(new ProgramFailedError(program, null, err.message)))
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr })
      else reject(new ProgramFailedError(program, code, `${stderr}\n${stdout}`))
    })
    // A program that dies early closes its stdin: the EPIPE is reported through 'close', not as a crash.
    child.stdin?.on('error', () => {})
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })
}
