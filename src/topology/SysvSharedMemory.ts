import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { PostmasterPidFile } from './PostmasterPidFile.js'

/**
 * A postmaster killed with SIGKILL leaves its small System V segment behind (a clean or immediate shutdown
 * removes it; a restart reclaims it). Removes it only when /proc/sysvipc/shm shows that exact postmaster
 * created it and nothing is attached, so another server's segment is never touched.
 */
export function removeStaleSharedMemory(pidFile: PostmasterPidFile): void {
  if (pidFile.shmId === undefined) return
  let table: string
  try {
    table = readFileSync('/proc/sysvipc/shm', 'utf8')
  } catch {
    return
  }
  // Columns: key shmid perms size cpid lpid nattch …
  const row = table
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/).map(Number))
    .find((cols) => cols[1] === pidFile.shmId)
  if (row === undefined || row[4] !== pidFile.pid || row[6] !== 0) return
  try {
    execFileSync('ipcrm', ['-m', String(pidFile.shmId)], { stdio: 'ignore' })
  } catch {
    // Already gone, or ipcrm is missing: the segment is 56 bytes, not worth failing a stop for.
  }
}
