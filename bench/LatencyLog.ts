import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Transaction latencies (µs) from pgbench's per-transaction logs (`-l --log-prefix PREFIX`): one file per
 * thread, PREFIX.<pid> and PREFIX.<pid>.<thread>, lines `client tx latency_us script epoch_s epoch_us`.
 * Lines whose latency is not a number (`failed`, `skipped`) are not latencies and are left out. The files are
 * removed once read.
 */
export async function readLatencies(dir: string, prefix: string): Promise<Float64Array> {
  const files = (await readdir(dir)).filter((f) => f.startsWith(`${prefix}.`))
  const values: number[] = []
  for (const f of files) {
    const text = await readFile(join(dir, f), 'utf8')
    for (const line of text.split('\n')) {
      const us = Number(line.split(' ', 3)[2])
      if (line.length > 0 && Number.isFinite(us)) values.push(us)
    }
    await rm(join(dir, f))
  }
  return Float64Array.from(values).sort()
}

/** The nearest-rank percentile (p in 0..100) of sorted values; null for none. */
export function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}
