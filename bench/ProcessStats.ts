import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

let ticksPerSecond: number | undefined

function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  return ticksPerSecond
}

/** /proc/<pid>/stat fields after the command name (which may hold spaces and parentheses). */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/**
 * CPU seconds (user + system) used so far by every live process of a process group: a pooler started in its
 * own group (ServerProcess) with all its children, as Pgpool-II forks one per client. Children that already
 * exited are not counted, so compare readings over runs in which the group's processes stay up.
 */
export function groupCpuSeconds(pgid: number): number {
  let ticks = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const f = statFields(entry)
    // After the name: state(0) ppid(1) pgrp(2) … utime(11) stime(12).
    if (f !== undefined && Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks / clockTicks()
}

export interface Memory {
  /** Resident set size now, bytes. */
  rss: number
  /** Peak resident set size of the process's life so far (VmHWM), bytes. */
  hwm: number
}

/** Memory of one process, from /proc/<pid>/status; undefined once it has exited. */
export function processMemory(pid: number): Memory | undefined {
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
}

/** Samples a process's RSS on an interval and keeps the highest seen (VmHWM gives the true peak too). */
export class RssSampler {
  peak = 0
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs)
    this.sample()
  }

  sample(): Memory | undefined {
    const m = processMemory(this.pid)
    if (m !== undefined && m.rss > this.peak) this.peak = m.rss
    return m
  }

  stop(): void {
    clearInterval(this.timer)
  }
}
