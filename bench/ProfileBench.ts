import { existsSync } from 'node:fs'
import { copyFile, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freeLoopbackPorts } from '../src/topology/FreePort.js'
import type { BenchOptions } from './BenchOptions.js'
import type { BenchSetup } from './BenchSetup.js'
import type { BenchTarget } from './BenchTarget.js'
import { profileTable, summarizeCpuProfile } from './CpuProfileSummary.js'
import { PgBench, type PgBenchResult } from './PgBench.js'
import { PGBOUNCER_BINARY, startPgBouncer } from './PgBouncerTarget.js'
import { startPgshard } from './PgshardTarget.js'
import { perfAvailable, PerfRecord, perfTable } from './PerfRecord.js'
import { groupCpuSeconds } from './ProcessStats.js'
import type { SpawnedTarget } from './SpawnedTarget.js'
import { countSyscalls, straceAvailable } from './SyscallCount.js'

const WORKLOAD = ['-S', '-M', 'simple', '-c', '16']
const MIN_PROFILE_S = 10
const WARM_UP_S = 3
const STRACE_S = 5
const QUICK_S = 3

interface ProfileContext {
  setup: BenchSetup
  bin: string
  options: BenchOptions
  pgbench: PgBench
  durationS: number
}

/**
 * Where pgshard's time goes under `pgbench -S -M simple -c 16`, three ways: V8's sampling profiler
 * (node --cpu-prof, wall time, JavaScript names), perf (CPU time, kernel included) when perf is installed, and
 * syscalls per transaction next to PgBouncer's when strace is installed. Returns the Markdown report.
 */
export async function profilePgshard(setup: BenchSetup, bin: string, options: BenchOptions, keepProfileAs: string): Promise<string> {
  const ctx: ProfileContext = {
    setup, bin, options, pgbench: new PgBench(setup.login, await setup.subdir('pgbench-profile')),
    durationS: options.quick ? QUICK_S : Math.max(options.durationS, MIN_PROFILE_S),
  }
  const sections = [await v8Profile(ctx, keepProfileAs)]
  if (perfAvailable()) sections.push(await perfProfile(ctx))
  else sections.push('perf is not installed: no CPU-time profile.')
  if (straceAvailable()) sections.push(await syscallsPerTransaction(ctx))
  return sections.join('\n\n')
}

async function startProfiled(ctx: ProfileContext, name: string, nodeArgs: string[]): Promise<SpawnedTarget> {
  const [port] = await freeLoopbackPorts(1)
  const { setup } = ctx
  return startPgshard({
    bin: ctx.bin, dir: await setup.subdir(name), port, backend: setup.primary, login: setup.login, control: setup.control,
    poolSize: ctx.options.poolSize, nodeArgs,
  })
}

const describeRun = (run: PgBenchResult, cpuSeconds: number) =>
  `${run.tps?.toFixed(0) ?? 'no'} tps; pgshard used ${cpuSeconds.toFixed(1)} CPU-seconds, ${run.transactions > 0 ? ((cpuSeconds * 1e6) / run.transactions).toFixed(0) : '—'} µs per transaction`

async function v8Profile(ctx: ProfileContext, keepAs: string): Promise<string> {
  const profileDir = await ctx.setup.subdir('cpu-profile')
  const target = await startProfiled(ctx, 'pgshard-v8-profile', ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])
  let line: string
  try {
    const before = groupCpuSeconds(target.pid)
    const run = await ctx.pgbench.run(target, { args: WORKLOAD, durationS: ctx.durationS, samplingRate: 0.01 })
    line = describeRun(run, groupCpuSeconds(target.pid) - before)
  } finally {
    // The profile is written when the process exits.
    await target.stop()
  }
  const [file] = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error(`pgshard wrote no CPU profile into ${profileDir}`)
  await copyFile(join(profileDir, file), keepAs)
  const summary = summarizeCpuProfile(JSON.parse(await readFile(join(profileDir, file), 'utf8')))
  return [
    `### V8 sampling profiler (\`node --cpu-prof\`), \`pgbench ${WORKLOAD.join(' ')}\` for ${ctx.durationS} s`,
    '',
    `${line} (profiler on, start-up included). Full profile (not committed): \`${keepAs}\`.`,
    '',
    profileTable(summary),
  ].join('\n')
}

async function perfProfile(ctx: ProfileContext): Promise<string> {
  const target = await startProfiled(ctx, 'pgshard-perf', ['--perf-basic-prof'])
  try {
    await ctx.pgbench.run(target, { args: WORKLOAD, durationS: WARM_UP_S, samplingRate: 0.01 })
    const before = groupCpuSeconds(target.pid)
    const perf = new PerfRecord(target.pid, join(ctx.setup.dir, 'perf.data'))
    const run = await ctx.pgbench.run(target, { args: WORKLOAD, durationS: ctx.durationS, samplingRate: 0.01 })
    const cpu = groupCpuSeconds(target.pid) - before
    const summary = await perf.stop()
    return [
      `### perf (CPU time, kernel included), the same workload after a ${WARM_UP_S} s warm-up`,
      '',
      `${describeRun(run, cpu)} (perf on).`,
      '',
      perfTable(summary),
    ].join('\n')
  } finally {
    await target.stop()
  }
}

async function syscallsPerTransaction(ctx: ProfileContext): Promise<string> {
  const targets: BenchTarget[] = [await startProfiled(ctx, 'pgshard-strace', [])]
  const { setup } = ctx
  try {
    if (existsSync(PGBOUNCER_BINARY)) {
      const [row] = await setup.topology.query(setup.topology.shards[0].primary, `SELECT rolpassword FROM pg_authid WHERE rolname = '${setup.login.user}'`)
      const [port] = await freeLoopbackPorts(1)
      targets.push(await startPgBouncer({
        dir: await setup.subdir('pgbouncer-strace'), port, backend: setup.primary, login: setup.login,
        scramVerifier: String(row.rolpassword), poolSize: ctx.options.poolSize,
      }))
    }
    const perTx = new Map<string, Map<string, number>>()
    for (const t of targets) {
      await ctx.pgbench.run(t, { args: WORKLOAD, durationS: WARM_UP_S, samplingRate: 0.01 })
      let transactions = 0
      const counts = await countSyscalls(t.pid!, join(setup.dir, `strace-${t.name}.txt`), async () => {
        transactions = (await ctx.pgbench.run(t, { args: WORKLOAD, durationS: Math.min(STRACE_S, ctx.durationS), samplingRate: 0.01 })).transactions
      })
      perTx.set(t.name, new Map([...counts.calls].map(([name, n]) => [name, transactions > 0 ? n / transactions : NaN])))
    }
    const names = [...new Set([...perTx.values()].flatMap((m) => [...m.keys()]))]
      .filter((n) => [...perTx.values()].some((m) => (m.get(n) ?? 0) >= 0.01))
      .sort((a, b) => Math.max(...[...perTx.values()].map((m) => m.get(b) ?? 0)) - Math.max(...[...perTx.values()].map((m) => m.get(a) ?? 0)))
    const cols = [...perTx.keys()]
    return [
      `### Syscalls per transaction (\`strace -c -f\` for ${Math.min(STRACE_S, ctx.durationS)} s of the same workload; counts only, strace slows everything)`,
      '',
      `| syscall | ${cols.join(' | ')} |`,
      `|---|${cols.map(() => '---:').join('|')}|`,
      ...names.map((n) => `| ${n} | ${cols.map((c) => (perTx.get(c)!.get(n) ?? 0).toFixed(2)).join(' | ')} |`),
    ].join('\n')
  } finally {
    for (const t of targets) await t.stop()
  }
}
