// A child of the memory bench: opens N client connections to a proxy, each through the full start-up and SCRAM
// log-in, then holds them idle until its stdin closes. A process of its own so that its fd limit can be raised
// (`ulimit -n` in the shell that starts it) and its CPU does not count as the bench's.
// Usage: idle-clients.ts HOST PORT USER DATABASE COUNT CONCURRENCY, password in BENCH_PASSWORD.
// Prints JSON lines: {"progress":n} now and then, then {"done":true,"connected":n,"failed":n,"firstError":…}.
import type net from 'node:net'
import { loginToServer } from '../src/protocol/ServerLogin.js'

const [host, port, user, database, count, concurrency] = process.argv.slice(2)
const total = Number(count)
const sockets: net.Socket[] = []
let failed = 0
let firstError: string | undefined
let next = 0

const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`)

async function worker(): Promise<void> {
  while (next < total) {
    next++
    try {
      const { socket } = await loginToServer(
        { host, port: Number(port) },
        { user, database, password: process.env.BENCH_PASSWORD, tls: 'disable', timeoutMs: 30_000 },
      )
      socket.on('error', () => {})
      sockets.push(socket)
      if (sockets.length % 1000 === 0) say({ progress: sockets.length })
    } catch (err) {
      failed++
      firstError ??= err instanceof Error ? err.message : String(err)
    }
  }
}

await Promise.all(Array.from({ length: Number(concurrency) }, worker))
say({ done: true, connected: sockets.length, failed, firstError })
process.stdin.resume()
process.stdin.on('end', () => {
  for (const s of sockets) s.destroy()
  process.exit(0)
})
