import type { LocalTopology } from '../../src/topology/LocalTopology.js'

/** Server sessions of a database left inside a transaction, on every primary of the topology. */
export async function sessionsInTransaction(topo: LocalTopology, database = 'app'): Promise<number> {
  let n = 0
  for (const s of topo.shards) {
    const [row] = await topo.query(s.primary, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${database}' AND state LIKE 'idle in transaction%'`)
    n += row.n as number
  }
  return n
}
