// `npm run bench`: pgshard next to direct Postgres, PgBouncer and Pgpool-II (pgbench), its memory under a slow
// reader and 10,000 idle clients, a CPU profile of pgshard under `pgbench -S`, and the router's micro-benchmarks.
// Everything runs on 127.0.0.1 and every step is bounded in time. Results go to bench/results/<date>-<part>.md.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseBenchOptions } from './BenchOptions.js'
import { startBenchSetup } from './BenchSetup.js'
import { ensureDebianPackages } from './DebianPackages.js'
import { machineInfo } from './MachineInfo.js'
import { holdIdleClients, memoryReport, streamToSlowReader } from './MemoryBench.js'
import { PGBOUNCER_BINARY } from './PgBouncerTarget.js'
import { PGPOOL_BINARY } from './PgpoolTarget.js'
import { buildPgshard } from './PgshardBuild.js'
import { runPoolingBench } from './PoolingBench.js'
import { poolingTable } from './PoolingReport.js'
import { profilePgshard } from './ProfileBench.js'
import { routerTable, runRouterBench } from './RouterBench.js'

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)

const options = parseBenchOptions(process.argv.slice(2))
const date = new Date().toISOString().slice(0, 10)
const machine = machineInfo().map((l) => `- ${l}`)
await mkdir(options.resultsDir, { recursive: true })

async function report(part: string, title: string, lines: string[], body: string): Promise<void> {
  const file = join(options.resultsDir, `${date}-${part}.md`)
  await writeFile(file, [`# ${title} (${date})`, '', ...machine, ...lines, '', body, ''].join('\n'))
  process.stdout.write(`\n${body}\n\n`)
  log(`written ${file}`)
}

const wants = (part: (typeof options.parts)[number]) => options.parts.includes(part)

if (wants('pooling')) {
  const peers = [
    { name: 'pgbouncer', binary: PGBOUNCER_BINARY, target: 'PgBouncer' },
    { name: 'pgpool2', binary: PGPOOL_BINARY, target: 'Pgpool-II' },
  ]
  ensureDebianPackages(peers.filter((p) => options.targets.some((t) => t === p.target)), log)
}

if (wants('pooling') || wants('memory') || wants('profile')) {
  const setup = await startBenchSetup(options.scale, log)
  try {
    const build = await buildPgshard(process.env.BENCH_PGSHARD === 'worktree' ? 'worktree' : 'head', join(setup.dir, 'pgshard-build'))
    log(`pgshard: ${build.source}`)
    if (wants('pooling')) {
      const results = await runPoolingBench(setup, options, build.bin, log)
      await report('pooling', 'Pooling: direct Postgres, PgBouncer, Pgpool-II and pgshard', [
        `- pgshard: ${build.source}, transaction mode, pool size ${options.poolSize} (PgBouncer the same; Pgpool-II a child and a server connection per client); node-relay: bench/node-relay.ts, bytes copied between each client and a server connection of its own, the floor of Node's sockets`,
        `- pgbench scale ${options.scale}, ${options.durationS} s per run, -j 2, ${options.repeats} repeats; order per repeat: ${results.orders.map((o) => o.join(' → ')).join('; ')}`,
        `- load average before each run: ${results.loadRange}`,
      ], poolingTable(results))
    }
    if (wants('memory')) {
      const stream = await streamToSlowReader(setup, build.bin, options, log)
      const idle = await holdIdleClients(setup, build.bin, options, log)
      await report('memory', 'pgshard memory', [`- pgshard: ${build.source}`], memoryReport(stream, idle))
    }
    if (wants('profile')) {
      log('profiling pgshard under pgbench -S')
      const body = await profilePgshard(setup, build.bin, options, join(options.resultsDir, `${date}-pgshard-select.cpuprofile`))
      await report('profile', 'Where pgshard spends its time', [`- pgshard: ${build.source}`], body)
    }
  } finally {
    await setup.stop()
  }
}

if (wants('router')) {
  log('router micro-benchmarks')
  await report('router', 'Router micro-benchmarks', ['- in the bench process, after warm-up; 7 rounds'], routerTable(await runRouterBench()))
}
