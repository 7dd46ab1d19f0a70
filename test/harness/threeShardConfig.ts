// The configuration routing unit tests share: one user and database, three shards s0–s2 (no servers behind them:
// the router only needs their names), and the test's own sharding section.
import type { ConfigInput } from '../../src/config/ConfigSchema.js'

export function threeShardConfig(sharding: NonNullable<ConfigInput['sharding']>): ConfigInput {
  return {
    users: [{ name: 'app', password: 'pw' }],
    databases: [{ name: 'app' }],
    shards: ['s0', 's1', 's2'].map((name, i) => ({ name, primary: { host: '127.0.0.1', port: 5432 + i } })),
    sharding,
  }
}
