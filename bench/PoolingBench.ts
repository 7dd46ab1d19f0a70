import { loadavg } from 'node:os'
import { freeLoopbackPorts } from '../src/topology/FreePort.js'
import type { BenchOptions, TargetName } from './BenchOptions.js'
import type { BenchSetup } from './BenchSetup.js'
import type { BenchTarget } from './BenchTarget.js'
import { PgBench, type PgBenchResult } from './PgBench.js'
import { startNodeRelay } from './NodeRelayTarget.js'
import { startPgBouncer } from './PgBouncerTarget.js'
import { startPgpool } from './PgpoolTarget.js'
import { startPgshard } from './PgshardTarget.js'
import { groupCpuSeconds } from './ProcessStats.js'
import { WORKLOADS, type Workload } from './Workloads.js'

export interface RunRecord {
  workload: string
  target: TargetName
  repeat: number
  result: PgBenchResult
  /** CPU seconds the pooler's processes used during the run (null for direct Postgres). */
  proxyCpuS: number | null
  /** The machine's 1-minute load average just before the run (others may share it). */
  load1: number
}

export interface PoolingResults {
  records: RunRecord[]
  /** Order in which the targets ran, per repeat. */
  orders: TargetName[][]
  /** Lowest–highest 1-minute load average seen before the runs. */
  loadRange: string
}

const WARM_UP_S = 3
const SETTLE_MS = 1000

/** Starts every requested target, in front of the same primary, with the same pool size where it has one. */
async function startTargets(setup: BenchSetup, options: BenchOptions, pgshardBin: string, log: (l: string) => void): Promise<Map<TargetName, BenchTarget>> {
  const targets = new Map<TargetName, BenchTarget>()
  const ports = await freeLoopbackPorts(4)
  const maxClients = Math.max(...WORKLOADS.map((w) => w.clients))
  try {
    for (const name of options.targets) {
      log(`starting ${name}`)
      switch (name) {
        case 'direct':
          targets.set(name, { name, ...setup.primary, pid: undefined, stop: async () => {} })
          break
        case 'PgBouncer': {
          const [row] = await setup.topology.query(setup.topology.shards[0].primary, `SELECT rolpassword FROM pg_authid WHERE rolname = '${setup.login.user}'`)
          targets.set(name, await startPgBouncer({
            dir: await setup.subdir('pgbouncer'), port: ports[0], backend: setup.primary, login: setup.login,
            scramVerifier: String(row.rolpassword), poolSize: options.poolSize,
          }))
          break
        }
        case 'Pgpool-II':
          // A child per client (and a few spare for the readiness probe): fewer would leave clients unconnected.
          targets.set(name, await startPgpool({
            dir: await setup.subdir('pgpool'), port: ports[1], backend: setup.primary, login: setup.login, children: maxClients + 4,
          }))
          break
        case 'pgshard':
          targets.set(name, await startPgshard({
            bin: pgshardBin, dir: await setup.subdir('pgshard'), port: ports[2], backend: setup.primary, login: setup.login,
            control: setup.control, poolSize: options.poolSize,
          }))
          break
        case 'node-relay':
          targets.set(name, await startNodeRelay({ dir: await setup.subdir('node-relay'), port: ports[3], backend: setup.primary, login: setup.login }))
          break
      }
    }
  } catch (err) {
    await Promise.all([...targets.values()].map((t) => t.stop()))
    throw err
  }
  return targets
}

/** The order of the targets in repeat r: as listed, then reversed, so no target always runs first or last. */
function targetOrder(targets: TargetName[], repeat: number): TargetName[] {
  return repeat % 2 === 0 ? [...targets] : [...targets].reverse()
}

export async function runPoolingBench(setup: BenchSetup, options: BenchOptions, pgshardBin: string, log: (l: string) => void): Promise<PoolingResults> {
  const workloads = WORKLOADS.filter((w) => options.workloads.includes(w.id))
  const targets = await startTargets(setup, options, pgshardBin, log)
  const logDir = await setup.subdir('pgbench')
  const pgbench = new PgBench(setup.login, logDir)
  const records: RunRecord[] = []
  const orders: TargetName[][] = []
  try {
    // Warm every path first: pools filled, the proxy's JIT and statement cache warm, Postgres' caches hot.
    for (const [name, target] of targets) {
      const warm = await pgbench.run(target, { args: ['-S', '-c', '16'], durationS: Math.min(WARM_UP_S, options.durationS), samplingRate: 0.01 })
      log(`warm-up ${name}: ${warm.tps?.toFixed(0) ?? 'no'} tps`)
    }
    const total = options.repeats * workloads.length * targets.size
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      const order = targetOrder([...targets.keys()], repeat)
      orders.push(order)
      for (const workload of workloads) {
        for (const name of order) {
          const record = await runOne(pgbench, targets.get(name)!, name, workload, repeat, options.durationS)
          records.push(record)
          log(`[${records.length}/${total}] ${describe(record)}`)
          await new Promise((r) => setTimeout(r, SETTLE_MS))
        }
      }
    }
  } finally {
    for (const t of targets.values()) await t.stop()
  }
  const loads = records.map((r) => r.load1)
  return { records, orders, loadRange: `${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}` }
}

async function runOne(pgbench: PgBench, target: BenchTarget, name: TargetName, workload: Workload, repeat: number, durationS: number): Promise<RunRecord> {
  const load1 = loadavg()[0]
  const cpuBefore = target.pid === undefined ? null : groupCpuSeconds(target.pid)
  const result = await pgbench.run(target, { args: workload.args, durationS, samplingRate: workload.samplingRate })
  const proxyCpuS = cpuBefore === null ? null : groupCpuSeconds(target.pid!) - cpuBefore
  return { workload: workload.id, target: name, repeat, result, proxyCpuS, load1 }
}

function describe(r: RunRecord): string {
  const x = r.result
  const parts = [`${r.workload} ${r.target}:`, x.tps === null ? 'no tps' : `${x.tps.toFixed(0)} tps`]
  if (x.latencyMeanMs !== null) parts.push(`mean ${x.latencyMeanMs.toFixed(2)} ms`)
  if (x.p99Ms !== null) parts.push(`p99 ${x.p99Ms.toFixed(2)} ms`)
  if (x.failed > 0) parts.push(`${x.failed} failed`)
  if (x.aborted) parts.push('ABORTED')
  if (x.errors.length > 0) parts.push(`error: ${x.errors[0].line.slice(0, 160)}`)
  return parts.join(' ')
}
