import type { TargetName } from './BenchOptions.js'
import type { PoolingResults, RunRecord } from './PoolingBench.js'
import { WORKLOADS } from './Workloads.js'

function median(values: number[]): number | null {
  if (values.length === 0) return null
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const fixed = (v: number | null, digits: number): string => (v === null ? '—' : v.toFixed(digits))

/** TPS of a run that completed; an aborted run's TPS covers only the time before its clients died. */
function completedTps(r: RunRecord): number | null {
  return r.result.aborted || r.result.tps === null ? null : r.result.tps
}

/**
 * A target's TPS against a reference target's, taken within each repeat (the two ran minutes apart at most),
 * then the median and range over repeats.
 */
function ratio(records: RunRecord[], workload: string, target: TargetName, reference: TargetName): string {
  const per: number[] = []
  for (const r of records.filter((x) => x.workload === workload && x.target === target)) {
    const ref = records.find((x) => x.workload === workload && x.target === reference && x.repeat === r.repeat)
    const a = completedTps(r)
    const b = ref === undefined ? null : completedTps(ref)
    if (a !== null && b !== null && b > 0) per.push(a / b)
  }
  const m = median(per)
  if (m === null) return '—'
  if (per.length === 1) return m.toFixed(2)
  return `${m.toFixed(2)} (${Math.min(...per).toFixed(2)}–${Math.max(...per).toFixed(2)})`
}

function problems(runs: RunRecord[], clients: number): string {
  const failed = runs.reduce((n, r) => n + r.result.failed, 0)
  const aborted = runs.filter((r) => r.result.aborted)
  const parts: string[] = []
  if (failed > 0) parts.push(`${failed} failed tx`)
  if (aborted.length > 0) {
    const stopped = aborted.map((r) => r.result.abortedClients).join(', ')
    parts.push(`aborted ${aborted.length}/${runs.length} runs (clients stopped by an error, of ${clients}: ${stopped})`)
  }
  const timedOut = runs.filter((r) => r.result.exitCode === null).length
  if (timedOut > 0) parts.push(`${timedOut} killed at the time limit`)
  return parts.length === 0 ? '0' : parts.join(', ')
}

/** The comparison table in Markdown, with the distinct errors seen below it. */
export function poolingTable(results: PoolingResults): string {
  const { records } = results
  const targets = [...new Set(records.map((r) => r.target))]
  const lines = [
    '| workload | target | TPS (median) | TPS per run | mean latency ms | p99 latency ms | × direct | × PgBouncer | pooler CPU µs/tx | failed / errors |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---|',
  ]
  for (const w of WORKLOADS) {
    for (const target of targets) {
      const runs = records.filter((r) => r.workload === w.id && r.target === target)
      if (runs.length === 0) continue
      const done = runs.filter((r) => completedTps(r) !== null)
      const cpu = median(done.filter((r) => r.proxyCpuS !== null && r.result.transactions > 0).map((r) => (r.proxyCpuS! * 1e6) / r.result.transactions))
      lines.push(
        [
          '', w.title, target,
          done.length === 0 ? 'aborted' : fixed(median(done.map((r) => r.result.tps!)), 0),
          runs.map((r) => (r.result.aborted ? `(${fixed(r.result.tps, 0)}, aborted)` : fixed(r.result.tps, 0))).join(', '),
          fixed(median(done.flatMap((r) => (r.result.latencyMeanMs === null ? [] : [r.result.latencyMeanMs]))), 3),
          fixed(median(done.flatMap((r) => (r.result.p99Ms === null ? [] : [r.result.p99Ms]))), 3),
          target === 'direct' ? '1' : ratio(records, w.id, target, 'direct'),
          target === 'PgBouncer' ? '1' : ratio(records, w.id, target, 'PgBouncer'),
          fixed(cpu, 0),
          problems(runs, w.clients),
          '',
        ].join(' | ').trim(),
      )
    }
  }
  const errors = new Map<string, { count: number; where: Set<string> }>()
  for (const r of records) {
    for (const e of r.result.errors) {
      const entry = errors.get(e.line) ?? { count: 0, where: new Set<string>() }
      entry.count += e.count
      entry.where.add(`${r.target} ${r.workload}`)
      errors.set(e.line, entry)
    }
  }
  if (errors.size > 0) {
    lines.push('', 'Errors pgbench reported (client numbers folded into N):', '')
    for (const [line, e] of [...errors].slice(0, 20)) lines.push(`- ${[...e.where].join('; ')} (${e.count}×): \`${line.slice(0, 300)}\``)
  }
  return lines.join('\n')
}
