import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { WORKLOADS } from './Workloads.js'

const TARGET_NAMES = ['direct', 'PgBouncer', 'Pgpool-II', 'pgshard', 'node-relay'] as const
export type TargetName = (typeof TARGET_NAMES)[number]
const PARTS = ['pooling', 'memory', 'profile', 'router'] as const
export type Part = (typeof PARTS)[number]

export interface BenchOptions {
  quick: boolean
  /** Seconds per pgbench run. */
  durationS: number
  /** Rounds over every workload and target; the table shows medians. */
  repeats: number
  /** pgbench scale factor (-i -s). */
  scale: number
  /** Server connections per pool, for pgshard and PgBouncer alike. */
  poolSize: number
  targets: TargetName[]
  workloads: string[]
  parts: Part[]
  /** Rows of the ~1 GB result streamed to the slow reader, and how fast it reads (MB/s). */
  streamRows: number
  readerMBps: number
  idleClients: number
  resultsDir: string
}

const USAGE = `usage: npm run bench -- [--quick] [--duration S] [--repeats N] [--scale N] [--pool-size N]
       [--targets ${TARGET_NAMES.join(',')}] [--workloads ${WORKLOADS.map((w) => w.id).join(',')}]
       [--parts ${PARTS.join(',')}] [--idle-clients N] [--reader-mbps N] [--stream-rows N] [--results-dir DIR]
Environment: BENCH_DURATION, BENCH_REPEATS (flags win); BENCH_PGSHARD=worktree runs dist/ (npm run build)
instead of compiling the last commit. --quick: 2 s runs, a faster reader, shorter profiles (about 5 minutes).`

function list<T extends string>(what: string, value: string | undefined, allowed: readonly T[]): T[] {
  if (value === undefined) return [...allowed]
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`unknown ${what} "${item}" (have ${allowed.join(', ')})\n${USAGE}`)
  }
  return items as T[]
}

function positive(what: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number, got "${value}"\n${USAGE}`)
  return n
}

export function parseBenchOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      repeats: { type: 'string' },
      scale: { type: 'string' },
      'pool-size': { type: 'string' },
      targets: { type: 'string' },
      workloads: { type: 'string' },
      parts: { type: 'string' },
      'idle-clients': { type: 'string' },
      'reader-mbps': { type: 'string' },
      'stream-rows': { type: 'string' },
      'results-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const quick = values.quick === true
  const workloadIds = WORKLOADS.map((w) => w.id)
  return {
    quick,
    durationS: positive('--duration', values.duration ?? env.BENCH_DURATION, quick ? 2 : 10),
    repeats: Math.round(positive('--repeats', values.repeats ?? env.BENCH_REPEATS, 2)),
    scale: Math.round(positive('--scale', values.scale, 10)),
    poolSize: Math.round(positive('--pool-size', values['pool-size'], 20)),
    targets: list('target', values.targets, TARGET_NAMES),
    workloads: list('workload', values.workloads, workloadIds),
    parts: list('part', values.parts, PARTS),
    streamRows: Math.round(positive('--stream-rows', values['stream-rows'], 1_000_000)),
    readerMBps: positive('--reader-mbps', values['reader-mbps'], quick ? 100 : 25),
    idleClients: Math.round(positive('--idle-clients', values['idle-clients'], 10_000)),
    resultsDir: values['results-dir'] ?? join(import.meta.dirname, 'results'),
  }
}
