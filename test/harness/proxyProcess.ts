import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import type { Config } from '../../src/config/ConfigSchema.js'
import { runCommand } from './runCommand.js'

export const ROOT = join(import.meta.dirname, '..', '..')

export interface ProxyProcess {
  child: ChildProcess
  port: number
  /** The config file the process reads (rewrite it, then SIGHUP). */
  file: string
  dir: string
  /** Its JSON log lines so far. */
  logs: Record<string, unknown>[]
  /** What it wrote on stderr so far. */
  stderr(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Peak resident memory (VmHWM) and current (VmRSS), in bytes, from /proc. */
  memory(): Promise<{ peak: number; now: number }>
}

/** Builds dist/ if a source changed since (the test runner already does; a single file run may not have). */
export async function ensureBuilt(t: Test): Promise<void> {
  const build = await runCommand('sh', ['scripts/ensure-deps.sh'], { cwd: ROOT, timeoutMs: 300_000 })
  t.equal(build.code, 0, build.code === 0 ? 'dist is built' : build.stdout + build.stderr)
}

/**
 * `pgshard start -c FILE` as a child process (its own event loop and memory, as in production), killed at the
 * end of the test if still running. Resolves once it listens.
 */
export async function startProxyProcess(t: Test, config: Config, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<ProxyProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-proc-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pgshard.json')
  await writeFile(file, JSON.stringify(config))
  // tap's process-info and coverage hooks (which it adds to every child's NODE_OPTIONS) must not follow the
  // proxy: it runs as in production. `env -u` drops them after tap's spawn hook has added them.
  const args = ['-u', 'NODE_OPTIONS', '-u', 'NODE_V8_COVERAGE', join(ROOT, 'bin', 'pgshard'), 'start', '-c', file]
  const child = spawn('env', args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const logs: Record<string, unknown>[] = []
  let stderr = ''
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the proxy did not start: ${stderr}`)), 30_000)
    child.on('exit', () => reject(new Error(`the proxy exited: ${stderr}`)))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>
      try {
        entry = JSON.parse(line)
      } catch {
        return
      }
      logs.push(entry)
      if (entry.msg === 'listening') {
        clearTimeout(timer)
        resolve(entry.port as number)
      }
    })
  })
  const memory = async () => {
    const { readFile } = await import('node:fs/promises')
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024
    return { peak: kb('VmHWM'), now: kb('VmRSS') }
  }
  return { child, port, file, dir, logs, exited, memory, stderr: () => stderr }
}
