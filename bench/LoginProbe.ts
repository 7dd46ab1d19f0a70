import pg from 'pg'
import type { BenchLogin } from './BenchTarget.js'

/**
 * Waits until a login through host:port answers `SELECT 1`: the pooler is up and its auth set-up works.
 * Stops early when `alive()` turns false (the program died: its log says why).
 */
export async function waitForLogin(host: string, port: number, login: BenchLogin, alive: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no attempt'
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`the process serving ${host}:${port} exited (last error: ${last})`)
    const client = new pg.Client({ host, port, ...login, connectionTimeoutMillis: 3000 })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.query('SELECT 1')
      return
    } catch (err) {
      last = err instanceof Error ? err.message : String(err)
    } finally {
      await client.end().catch(() => {})
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`no login through ${host}:${port} within ${timeoutMs} ms (last error: ${last})`)
}
