// pgshard beside one plain Postgres database that holds the same rows ("plain", on the first shard's server): what
// answers through pgshard is compared with what one Postgres answers.
import pg from 'pg'
import type { Test } from 'tap'
import { startProxy, type ProxyFixture } from './startProxy.js'

export interface PlainTwin {
  fx: ProxyFixture
  /** A client through pgshard, and one of the plain database; closed at the test's end. */
  proxy: pg.Client
  plain: pg.Client
  /** libpq connection string of the plain database. */
  plainDsn: string
}

/** A proxy over `shards` shards with `config`, `schema` run through it and in the plain database alike. */
export async function startWithPlainTwin(t: Test, shards: number, config: Record<string, unknown>, schema: readonly string[]): Promise<PlainTwin> {
  const fx = await startProxy(t, { topology: { shards, databases: ['app', 'plain'] }, config })
  const plainPort = fx.topo.shards[0]!.primary.port
  const proxy = new pg.Client(fx.pgOptions)
  const plain = new pg.Client({ ...fx.pgOptions, port: plainPort, database: 'plain' })
  await Promise.all([proxy.connect(), plain.connect()])
  t.teardown(() => Promise.all([proxy.end(), plain.end()]))
  for (const sql of schema) {
    await proxy.query(sql)
    await plain.query(sql)
  }
  return { fx, proxy, plain, plainDsn: fx.dsn.replace(`port=${fx.port}`, `port=${plainPort}`).replace('dbname=app', 'dbname=plain') }
}
