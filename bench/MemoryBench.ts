import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { loginToServer } from '../src/protocol/ServerLogin.js'
import { freeLoopbackPorts } from '../src/topology/FreePort.js'
import type { BenchOptions } from './BenchOptions.js'
import type { BenchSetup } from './BenchSetup.js'
import { waitForLogin } from './LoginProbe.js'
import { startPgshard } from './PgshardTarget.js'
import { processMemory, RssSampler, type Memory } from './ProcessStats.js'
import { readSlowly, type SlowReadResult } from './SlowReader.js'

export interface StreamResult {
  sql: string
  expectedRows: number
  readerMBps: number
  read: SlowReadResult
  /** pgshard before the query, and its peak (sampled every 50 ms, and VmHWM) while the answer streamed. */
  before: Memory
  sampledPeakRss: number
  hwm: number
}

export interface IdleResult {
  wanted: number
  connected: number
  failed: number
  firstError?: string
  connectSeconds: number
  before: Memory
  held: Memory
  /** File descriptors the proxy had open while the clients were held. */
  proxyFds: number
  /** Server connections Postgres saw for the bench role while the clients were held. */
  serverConnections: number
  /** A fresh login while all were held, in ms (null: it failed). */
  extraLoginMs: number | null
  afterRelease: Memory
}

const MB = 1e6
const SETTLE_MS = 3000
const HOLDER = join(import.meta.dirname, 'idle-clients.ts')
const LOADER = join(import.meta.dirname, '..', 'scripts', 'ts-loader.mjs')

/** pgshard streaming a ~1 GB result (1,000 rows of ~1 kB per MB) to a client that reads it slowly. */
export async function streamToSlowReader(setup: BenchSetup, bin: string, options: BenchOptions, log: (l: string) => void): Promise<StreamResult> {
  const [port] = await freeLoopbackPorts(1)
  const target = await startPgshard({ bin, dir: await setup.subdir('pgshard-stream'), port, backend: setup.primary, login: setup.login, control: setup.control, poolSize: options.poolSize })
  try {
    const before = processMemory(target.pid)!
    const sampler = new RssSampler(target.pid, 50)
    const conn = await loginToServer({ host: target.host, port }, { ...setup.login, tls: 'disable', timeoutMs: 10_000 })
    const sql = `SELECT repeat('x', 1000) FROM generate_series(1, ${options.streamRows})`
    const expectedS = (options.streamRows * 1000) / (options.readerMBps * MB)
    log(`streaming ${options.streamRows} rows of ~1 kB through pgshard to a reader at ${options.readerMBps} MB/s (~${expectedS.toFixed(0)} s)`)
    try {
      const read = await readSlowly(conn, sql, options.readerMBps * MB, (expectedS * 3 + 120) * 1000)
      const end = processMemory(target.pid)!
      return { sql, expectedRows: options.streamRows, readerMBps: options.readerMBps, read, before, sampledPeakRss: Math.max(sampler.peak, end.rss), hwm: end.hwm }
    } finally {
      sampler.stop()
      conn.socket.destroy()
    }
  } finally {
    await target.stop()
  }
}

/** pgshard holding `idleClients` logged-in, idle client connections, each from a minimal client (ServerLogin). */
export async function holdIdleClients(setup: BenchSetup, bin: string, options: BenchOptions, log: (l: string) => void): Promise<IdleResult> {
  const wanted = options.idleClients
  const fdLimit = wanted + 2048
  const [port] = await freeLoopbackPorts(1)
  const target = await startPgshard({
    bin, dir: await setup.subdir('pgshard-idle'), port, backend: setup.primary, login: setup.login, control: setup.control, poolSize: options.poolSize,
    maxClientConnections: wanted + 100, fdLimit,
  })
  try {
    await new Promise((r) => setTimeout(r, SETTLE_MS))
    const before = processMemory(target.pid)!
    log(`opening ${wanted} idle client connections to pgshard (SCRAM log-in each)`)
    const began = Date.now()
    const raise = `ulimit -n ${fdLimit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`
    const holder = spawn('/bin/sh', ['-c', raise, process.execPath, '--no-warnings', '--import', LOADER, HOLDER,
      target.host, String(port), setup.login.user, setup.login.database, String(wanted), '64'], {
      env: { ...process.env, BENCH_PASSWORD: setup.login.password },
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()))
    try {
      const done = await new Promise<{ connected: number; failed: number; firstError?: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the idle clients did not all connect within 10 minutes')), 600_000)
        createInterface({ input: holder.stdout! }).on('line', (line) => {
          const msg = JSON.parse(line) as { progress?: number; done?: boolean; connected: number; failed: number; firstError?: string }
          if (msg.progress !== undefined) log(`  ${msg.progress} connected`)
          if (msg.done) {
            clearTimeout(timer)
            resolve(msg)
          }
        })
        holder.once('exit', (code) => reject(new Error(`the idle-client holder exited (${code}) before connecting`)))
      })
      const connectSeconds = (Date.now() - began) / 1000
      await new Promise((r) => setTimeout(r, SETTLE_MS))
      const held = processMemory(target.pid)!
      const proxyFds = readdirSync(`/proc/${target.pid}/fd`).length
      const [row] = await setup.topology.query(setup.topology.shards[0].primary, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = '${setup.login.user}'`)
      const t0 = Date.now()
      const extraLoginMs = await waitForLogin(target.host, port, setup.login, () => true, 10_000).then(() => Date.now() - t0, () => null)
      holder.stdin!.end()
      await exited
      await new Promise((r) => setTimeout(r, SETTLE_MS))
      const afterRelease = processMemory(target.pid)!
      return { wanted, ...done, connectSeconds, before, held, proxyFds, serverConnections: Number(row.n), extraLoginMs, afterRelease }
    } finally {
      holder.kill('SIGKILL')
    }
  } finally {
    await target.stop()
  }
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

export function memoryReport(stream: StreamResult | undefined, idle: IdleResult | undefined): string {
  const lines: string[] = []
  if (stream) {
    const r = stream.read
    lines.push(
      `**Streaming to a slow reader.** \`${stream.sql}\` through pgshard to a raw client reading at most ${stream.readerMBps} MB/s:`,
      '',
      '| DataRows read (of) | bytes read | seconds | reader MB/s | pgshard RSS before | VmHWM before | peak RSS (sampled 50 ms) | VmHWM after | error |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      `| ${r.rows} (${stream.expectedRows}) | ${(r.bytes / MB).toFixed(0)} MB | ${r.seconds.toFixed(1)} | ${(r.bytes / MB / r.seconds).toFixed(1)} | ${mib(stream.before.rss)} | ${mib(stream.before.hwm)} | ${mib(stream.sampledPeakRss)} | ${mib(stream.hwm)} | ${r.error ?? 'none'} |`,
      '',
    )
  }
  if (idle) {
    const perConn = idle.connected > 0 ? (idle.held.rss - idle.before.rss) / idle.connected : NaN
    lines.push(
      `**Idle clients.** ${idle.wanted} connections opened (start-up + SCRAM each, 64 at a time) and held idle:`,
      '',
      '| connected | failed | time to connect | pgshard RSS before | RSS holding them | per connection | proxy fds | server connections | a new login meanwhile | RSS after release |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      `| ${idle.connected} | ${idle.failed} | ${idle.connectSeconds.toFixed(1)} s | ${mib(idle.before.rss)} | ${mib(idle.held.rss)} | ${(perConn / 1024).toFixed(1)} KiB | ${idle.proxyFds} | ${idle.serverConnections} | ${idle.extraLoginMs === null ? 'failed' : `${idle.extraLoginMs} ms`} | ${mib(idle.afterRelease.rss)} |`,
      '',
    )
    if (idle.firstError) lines.push(`First connection error: \`${idle.firstError}\``, '')
  }
  return lines.join('\n')
}
