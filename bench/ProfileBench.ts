import { copyFile, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { freeLoopbackPorts } from '../src/topology/FreePort.js'
import type { BenchOptions } from './BenchOptions.js'
import type { BenchSetup } from './BenchSetup.js'
import { summarizeCpuProfile, type ProfileSummary } from './CpuProfileSummary.js'
import { PgBench, type PgBenchResult } from './PgBench.js'
import { PgshardTarget } from './PgshardTarget.js'
import { groupCpuSeconds } from './ProcessStats.js'

export interface ProfileResult {
  workload: string
  run: PgBenchResult
  /** CPU seconds pgshard used during the pgbench run (the profile samples wall time: see profileTable). */
  cpuSeconds: number
  summary: ProfileSummary
  /** Where the full profile was kept (open it in Chrome DevTools or speedscope). */
  file: string
}

const MIN_PROFILE_S = 10

/** pgshard under `pgbench -S -M simple -c 16` with V8's sampling profiler on (node --cpu-prof). */
export async function profilePgshard(setup: BenchSetup, bin: string, options: BenchOptions, keepAs: string): Promise<ProfileResult> {
  const profileDir = await setup.subdir('cpu-profile')
  const [port] = await freeLoopbackPorts(1)
  const target = await PgshardTarget.start({
    bin, dir: await setup.subdir('pgshard-profile'), port, backend: setup.primary, login: setup.login, control: setup.control,
    poolSize: options.poolSize, cpuProfileDir: profileDir,
  })
  const pgbench = new PgBench(setup.login, await setup.subdir('pgbench-profile'))
  const args = ['-S', '-M', 'simple', '-c', '16']
  let run: PgBenchResult
  let cpuSeconds: number
  try {
    const before = groupCpuSeconds(target.pid)
    run = await pgbench.run(target, { args, durationS: Math.max(options.durationS, MIN_PROFILE_S), samplingRate: 0.01 })
    cpuSeconds = groupCpuSeconds(target.pid) - before
  } finally {
    await target.stop()
  }
  const [file] = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error(`pgshard wrote no CPU profile into ${profileDir}`)
  const profile = JSON.parse(await readFile(join(profileDir, file), 'utf8'))
  await copyFile(join(profileDir, file), keepAs)
  return { workload: `pgbench ${args.join(' ')}`, run, cpuSeconds, summary: summarizeCpuProfile(profile), file: keepAs }
}
