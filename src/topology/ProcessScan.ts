import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/**
 * Pids of processes that belong to a directory tree: their working directory is inside it (a postmaster and
 * every backend chdir to the data dir; the tools we run start there) or their command line names a path in it.
 * Synchronous so that process-exit hooks can use it.
 */
export function processesUnder(dir: string): number[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    if (pid === process.pid) continue
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`)
      if (cwd === dir || cwd.startsWith(prefix) || readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(prefix)) {
        pids.push(pid)
      }
    } catch {
      // The process exited while we looked, or is not ours to inspect.
    }
  }
  return pids
}

/** Sends a signal, ignoring processes that are already gone. */
export function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // ESRCH: it exited meanwhile.
  }
}

/**
 * Whether `pid` is a process working in `dir` (a postmaster's working directory is its data dir). Pids come back:
 * a pid read from a stale postmaster.pid may by now be any other process on the machine.
 */
export function worksIn(pid: number, dir: string): boolean {
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`)
    return cwd === dir || cwd.startsWith(dir.endsWith('/') ? dir : `${dir}/`)
  } catch {
    return false
  }
}

/** Running, and not a zombie (an init that does not reap would make a dead postmaster look alive). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `done()` holds or the time is up; returns whether it held. */
export async function waitFor(done: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await done()) return true
    if (Date.now() >= deadline) return false
    await sleep(intervalMs)
  }
}
