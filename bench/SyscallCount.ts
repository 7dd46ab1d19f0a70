import { spawn, spawnSync } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'

export interface SyscallCounts {
  /** Calls per syscall name, over the traced window. */
  calls: Map<string, number>
}

export function straceAvailable(): boolean {
  return spawnSync('strace', ['-V']).status === 0
}

/**
 * Counts a process's syscalls (all its threads) while `during` runs: `strace -c -f`. strace slows the process
 * down a lot, so only counts per transaction mean anything, never the time.
 */
export async function countSyscalls(pid: number, outFile: string, during: () => Promise<void>): Promise<SyscallCounts> {
  const child = spawn('strace', ['-c', '-f', '-p', String(pid), '-o', outFile], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  // strace needs a moment to attach to every thread before the window opens.
  await new Promise((r) => setTimeout(r, 500))
  try {
    await during()
  } finally {
    child.kill('SIGINT')
    await exited
  }
  const calls = new Map<string, number>()
  // Lines: "% time  seconds  usecs/call  calls  [errors]  syscall".
  for (const line of (await readFile(outFile, 'utf8')).split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line)
    if (m !== null && m[2] !== 'total') calls.set(m[2], Number(m[1]))
  }
  await rm(outFile, { force: true })
  return { calls }
}
