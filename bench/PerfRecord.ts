import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'

export interface PerfShare {
  name: string
  /** Percent of the process's sampled CPU time. */
  percent: number
}

export interface PerfSummary {
  byObject: PerfShare[]
  /** JavaScript frames with everything they call (syscalls included), highest first. */
  jsInclusive: PerfShare[]
  /** Symbols by their own time, kernel included. */
  self: PerfShare[]
}

export function perfAvailable(): boolean {
  return spawnSync('perf', ['--version']).status === 0
}

/**
 * `perf record` on one process: CPU time only (unlike V8's wall-time sampler), kernel included. Node must run
 * with --perf-basic-prof so that perf can name JIT-compiled JavaScript (it writes /tmp/perf-<pid>.map).
 */
export class PerfRecord {
  private readonly child: ChildProcess
  private readonly exited: Promise<void>

  constructor(
    private readonly pid: number,
    private readonly dataFile: string,
  ) {
    this.child = spawn('perf', ['record', '-F', '999', '-g', '-p', String(pid), '-o', dataFile], { stdio: 'ignore' })
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()))
  }

  /** Stops recording and reads the report; removes the data and the process's perf map. */
  async stop(): Promise<PerfSummary> {
    this.child.kill('SIGINT')
    await this.exited
    const report = (...args: string[]) =>
      spawnSync('perf', ['report', '-i', this.dataFile, '-g', 'none', '-q', ...args], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, timeout: 120_000 }).stdout ?? ''
    const summary = {
      byObject: shares(report('--no-children', '--sort', 'dso'), 8),
      jsInclusive: shares(report('--children', '--sort', 'sym'), 400).filter((s) => s.name.startsWith('JS ')).slice(0, 25),
      self: shares(report('--no-children', '--sort', 'sym'), 25),
    }
    await rm(this.dataFile, { force: true })
    const map = `/tmp/perf-${this.pid}.map`
    if (existsSync(map)) await rm(map)
    return summary
  }
}

/** Lines such as `  48.37%  0.57%  [.] JS:*scan file:///…/dist/protocol/BackendScanner.js:31:9`: first percent, name. */
function shares(text: string, limit: number): PerfShare[] {
  const out: PerfShare[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(?:[\d.]+%\s+)?(?:\[[.k]\]\s+)?(.+?)\s*$/.exec(line)
    if (m === null) continue
    out.push({ percent: Number(m[1]), name: shortName(m[2]) })
    if (out.length >= limit) break
  }
  return out
}

/** `JS:*onQuery file:///tmp/…/dist/proxy/Session.js:194:18` → `JS onQuery dist/proxy/Session.js:194`. */
function shortName(name: string): string {
  const js = /^JS:[*^~+]?(\S*)\s+(\S+?)(?::(\d+):\d+)?$/.exec(name)
  if (js === null) return name
  const url = js[2]
  const dist = url.indexOf('/dist/')
  const modules = url.lastIndexOf('/node_modules/')
  const file = modules >= 0 ? url.slice(modules + 14) : dist >= 0 ? url.slice(dist + 1) : url.replace(/^file:\/\//, '')
  return `JS ${js[1] || '(anonymous)'} ${file}${js[3] ? `:${js[3]}` : ''}`
}

export function perfTable(s: PerfSummary): string {
  const rows = (items: PerfShare[]) => items.map((i) => `| ${i.name.replace(/\|/g, '\\|')} | ${i.percent.toFixed(1)}% |`)
  return [
    '| where the CPU went (by object) | share |', '|---|---:|', ...rows(s.byObject), '',
    '| JavaScript frame, with what it calls (syscalls included) | share |', '|---|---:|', ...rows(s.jsInclusive), '',
    '| symbol, self time | share |', '|---|---:|', ...rows(s.self),
  ].join('\n')
}
