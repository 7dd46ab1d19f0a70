import { rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { readPostmasterPidFile, type PostmasterPidFile } from './PostmasterPidFile.js'
import { processesUnder, signalQuietly, waitFor, worksIn } from './ProcessScan.js'
import { removeStaleSharedMemory } from './SysvSharedMemory.js'

// An immediate shutdown takes milliseconds; the grace only matters for a wedged process.
const GRACE_MS = 3000
const KILL_WAIT_MS = 2000

/** Wakes stopped processes and asks every postmaster for an immediate shutdown (what `pg_ctl -m immediate` sends). */
function signalShutdown(baseDir: string, dataDirs: string[]): PostmasterPidFile[] {
  const pidFiles: PostmasterPidFile[] = []
  for (const pid of processesUnder(baseDir)) signalQuietly(pid, 'SIGCONT')
  for (const dir of dataDirs) {
    const file = readPostmasterPidFile(dir)
    if (file === undefined) continue
    pidFiles.push(file)
    // A stale file's pid may belong to another process by now (pids wrap at 32768 here): only ours is signalled.
    if (worksIn(file.pid, dir)) signalQuietly(file.pid, 'SIGQUIT')
  }
  return pidFiles
}

const killLeftovers = (baseDir: string) => {
  for (const pid of processesUnder(baseDir)) signalQuietly(pid, 'SIGKILL')
}
const allGone = (baseDir: string) => processesUnder(baseDir).length === 0

/** Stops every process working in `baseDir`, then removes it. */
export async function tearDown(baseDir: string, dataDirs: string[]): Promise<void> {
  const pidFiles = signalShutdown(baseDir, dataDirs)
  if (!(await waitFor(() => allGone(baseDir), GRACE_MS))) {
    killLeftovers(baseDir)
    await waitFor(() => allGone(baseDir), KILL_WAIT_MS)
  }
  pidFiles.forEach(removeStaleSharedMemory)
  await rm(baseDir, { recursive: true, force: true, maxRetries: 3 })
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

function waitForSync(done: () => boolean, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() >= deadline) return false
    sleepSync(20)
  }
  return true
}

/** The same, blocking: for process 'exit' and signal hooks, where nothing asynchronous runs any more. */
export function tearDownSync(baseDir: string, dataDirs: string[]): void {
  const pidFiles = signalShutdown(baseDir, dataDirs)
  if (!waitForSync(() => allGone(baseDir), GRACE_MS)) {
    killLeftovers(baseDir)
    waitForSync(() => allGone(baseDir), KILL_WAIT_MS)
  }
  pidFiles.forEach(removeStaleSharedMemory)
  rmSync(baseDir, { recursive: true, force: true, maxRetries: 3 })
}
