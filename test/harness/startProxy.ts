import type { Test } from 'tap'
import { parseConfig } from '../../src/config/ConfigLoader.js'
import type { Config } from '../../src/config/ConfigSchema.js'
import { createLogger } from '../../src/log/Logger.js'
import { ProxyApp } from '../../src/proxy/ProxyApp.js'
import type { LocalTopology, LocalTopologyOptions } from '../../src/topology/LocalTopology.js'
import { startTopology } from './startTopology.js'

export const APP_USER = 'app'
export const APP_PASSWORD = 'app-secret'
export const ADMIN_USER = 'admin'
export const ADMIN_PASSWORD = 'admin-secret'

export interface ProxyFixture {
  topo: LocalTopology
  app: ProxyApp
  port: number
  /** libpq connection string for the app user through the proxy. */
  dsn: string
  /** postgres:// URL for the app user through the proxy. */
  url: string
  /** Environment for psql/pgbench/python child processes (PGPASSWORD set). */
  env: NodeJS.ProcessEnv
  /** node-postgres client options through the proxy. */
  pgOptions: { host: string; port: number; user: string; password: string; database: string }
}

/** A config for a proxy in front of `topo`, on a free port, quiet logs; `extra` is merged on top (shallowly per section). */
export function proxyConfig(topo: LocalTopology, extra: Record<string, unknown> = {}): Config {
  const base: Record<string, unknown> = {
    listen: { host: '127.0.0.1', port: 0 },
    users: [
      { name: APP_USER, password: APP_PASSWORD },
      { name: ADMIN_USER, password: ADMIN_PASSWORD, admin: true },
    ],
    databases: [{ name: 'app' }],
    shards: topo.shardsConfig(),
    control: { user: 'postgres', password: topo.superuser.password },
    log: { level: 'warn' },
  }
  for (const [k, v] of Object.entries(extra)) {
    const b = base[k]
    base[k] = b && typeof b === 'object' && !Array.isArray(b) && v && typeof v === 'object' && !Array.isArray(v) ? { ...b, ...v } : v
  }
  return parseConfig(JSON.stringify(base), 'test config')
}

/**
 * Starts real Postgres servers and a proxy in front of them for one tap test; both stop when the test ends.
 * The app user exists on every server with the same password as in the proxy's config.
 */
export async function startProxy(
  t: Test,
  opts: { topology?: Partial<LocalTopologyOptions>; config?: Record<string, unknown>; configFile?: string } = {},
): Promise<ProxyFixture> {
  const topo = await startTopology(t, {
    shards: 1,
    replicas: 0,
    users: [{ name: APP_USER, password: APP_PASSWORD }],
    databases: ['app'],
    ...opts.topology,
  })
  const config = proxyConfig(topo, opts.config)
  const app = await ProxyApp.start(config, { log: createLogger({ level: config.log.level }), configFile: opts.configFile })
  t.teardown(() => app.stop(500))
  const port = app.address.port
  return {
    topo,
    app,
    port,
    dsn: `host=127.0.0.1 port=${port} user=${APP_USER} dbname=app`,
    url: `postgres://${APP_USER}:${APP_PASSWORD}@127.0.0.1:${port}/app`,
    env: { ...process.env, PGPASSWORD: APP_PASSWORD, PGCONNECT_TIMEOUT: '10' },
    pgOptions: { host: '127.0.0.1', port, user: APP_USER, password: APP_PASSWORD, database: 'app' },
  }
}
