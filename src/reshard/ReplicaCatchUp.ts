import type { Config } from '../config/ConfigSchema.js'
import { ControlConnection, type ControlAccess } from '../health/ControlConnection.js'
import { defaultNodeName } from '../health/NodeState.js'
import { formatLsn } from '../health/Lsn.js'

const POLL_MS = 50
const QUERY_TIMEOUT_MS = 2_000

/**
 * After RESHARD's commit, waits until every replica of the new map has replayed what the move wrote on its
 * shard's primary (`written`, the primaries' WAL positions by shard), so that a read sent to a replica once the
 * clients go on cannot miss a row that just arrived on its shard. Bounded by `timeoutMs`; resolves with the
 * replicas that did not get there in time (down, or far behind).
 */
export async function waitForReplicas(config: Config, written: ReadonlyMap<string, bigint>, access: ControlAccess, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs
  const waits = config.shards.flatMap((shard) => {
    const lsn = written.get(shard.name)
    if (lsn === undefined) return []
    return shard.replicas.map(async (replica, i) => {
      const name = replica.name ?? defaultNodeName(shard.name, 'replica', i)
      const conn = new ControlConnection(replica, access)
      try {
        for (;;) {
          const ok = await conn
            .query<{ ok: boolean | null }>('SELECT pg_catalog.pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', QUERY_TIMEOUT_MS, [formatLsn(lsn)])
            .then((rows) => rows[0]?.ok === true, () => false)
          if (ok) return null
          if (Date.now() + POLL_MS > deadline) return name
          await new Promise((r) => setTimeout(r, POLL_MS))
        }
      } finally {
        conn.close()
      }
    })
  })
  return (await Promise.all(waits)).filter((n): n is string => n !== null)
}
