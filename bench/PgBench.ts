import { spawn } from 'node:child_process'
import type { BenchLogin, BenchTarget } from './BenchTarget.js'
import { percentile, readLatencies } from './LatencyLog.js'

export interface PgBenchRun {
  /** Workload arguments (-S, -M prepared, -C, -c N, …). */
  args: string[]
  durationS: number
  /** Share of transactions logged for the latency percentiles (pgbench --sampling-rate). */
  samplingRate: number
}

export interface PgBenchResult {
  /** As pgbench reports it; null when it reported none (a run aborted before any result). */
  tps: number | null
  latencyMeanMs: number | null
  p99Ms: number | null
  /** Logged latencies the p99 comes from. */
  samples: number
  transactions: number
  failed: number
  /** pgbench stopped clients on an error ("Run was aborted"). */
  aborted: boolean
  /** How many clients pgbench stopped on an error (the others ran on to the end). */
  abortedClients: number
  exitCode: number | null
  /** Distinct error lines from pgbench (client numbers folded), each with how often it appeared. */
  errors: { line: string; count: number }[]
}

const THREADS = 2
const GRACE_S = 60

/** pgbench as one login runs it, with its per-transaction logs in `logDir` (read back, then removed). */
export class PgBench {
  private runs = 0

  constructor(
    private readonly login: BenchLogin,
    private readonly logDir: string,
  ) {}

  /** Runs pgbench once against a target, bounded in time, and reads what it measured. */
  async run(target: BenchTarget, run: PgBenchRun): Promise<PgBenchResult> {
    const prefix = `tx${++this.runs}`
    const args = [
      '-h', target.host, '-p', String(target.port), '-U', this.login.user,
      // -n: pgbench's VACUUM before the run would go through each pooler; the tables were vacuumed once after -i.
      '-n', '-T', String(run.durationS), '-j', String(THREADS), ...run.args,
      '-l', '--sampling-rate', String(run.samplingRate), '--log-prefix', `${this.logDir}/${prefix}`,
      this.login.database,
    ]
    const { stdout, stderr, code } = await this.spawn(args, run.durationS)
    const latencies = await readLatencies(this.logDir, prefix)
    const p99 = percentile(latencies, 99)
    const number = (re: RegExp): number | null => {
      const m = re.exec(stdout)
      return m ? Number(m[1]) : null
    }
    return {
      tps: number(/^tps = ([\d.]+)/m),
      latencyMeanMs: number(/^latency average = ([\d.]+) ms/m),
      p99Ms: p99 === null ? null : p99 / 1000,
      samples: latencies.length,
      transactions: number(/^number of transactions actually processed: (\d+)/m) ?? 0,
      failed: number(/^number of failed transactions: (\d+)/m) ?? 0,
      aborted: /Run was aborted|aborted in command/.test(stderr),
      abortedClients: new Set([...stderr.matchAll(/client (\d+) script \d+ aborted/g)].map((m) => m[1])).size,
      exitCode: code,
      errors: distinctErrors(stderr),
    }
  }

  private spawn(args: string[], durationS: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
    const env = { ...process.env, PGPASSWORD: this.login.password, PGSSLMODE: 'disable', PGAPPNAME: 'pgbench' }
    return new Promise((resolve) => {
      const child = spawn('pgbench', args, { env, cwd: this.logDir, timeout: (durationS + GRACE_S) * 1000, killSignal: 'SIGKILL' })
      let out = ''
      let err = ''
      child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t))
      child.stderr.setEncoding('utf8').on('data', (t: string) => (err = (err + t).slice(-200_000)))
      child.on('error', (e) => (err += `\n${e.message}`))
      child.on('close', (c, signal) => resolve({ stdout: out, stderr: signal ? `${err}\nkilled by ${signal} (time limit)` : err, code: c }))
    })
  }
}

function distinctErrors(stderr: string): { line: string; count: number }[] {
  const counts = new Map<string, number>()
  for (const raw of stderr.split('\n')) {
    if (!/error|FATAL|killed/i.test(raw)) continue
    // Two threads share stderr, so prefixes can interleave ("pgbench:pgbench: error: …"): drop them all.
    const line = raw.replace(/^(?:\s*(?:pgbench:|error:))+/, '').replace(/client \d+/g, 'client N').replace(/\s+/g, ' ').trim()
    if (line.length === 0) continue
    counts.set(line, (counts.get(line) ?? 0) + 1)
  }
  return [...counts].map(([line, count]) => ({ line, count }))
}
