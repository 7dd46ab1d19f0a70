import pg from 'pg'
import type { Test } from 'tap'
import type { ProxyFixture } from './startProxy.js'

/** A node-postgres client connected through the proxy, ended when test `t` ends. */
export async function proxyClient(t: Test, fx: ProxyFixture): Promise<pg.Client> {
  const c = new pg.Client(fx.pgOptions)
  await c.connect()
  t.teardown(() => c.end())
  return c
}
