import { PgError, SqlState } from '../protocol/PgError.js'
import { errorField } from '../protocol/ResponseTracker.js'
import { encodeStatement, type ShardStatement } from './MultiShardExecutor.js'
import type { Identity, SessionServices } from './SessionServices.js'
import type { SessionSettings } from './SessionSettings.js'
import { syncSettings } from './SettingsSync.js'
import { callShard } from './ShardCall.js'

/**
 * The shards whose committed rows an UPDATE or DELETE without a pinned key would change: each shard answers its
 * `probe` (the statement's table and WHERE as a SELECT, with the client's parameters) on a connection of its
 * pool, brought to the client's settings. `holding`: the client holds connections meanwhile (the pools'
 * reserve may serve it). A shard's error (a bad value, a missing column) is the statement's error.
 */
export async function locateRows(
  services: SessionServices,
  identity: Identity,
  settings: SessionSettings,
  signal: AbortSignal,
  probe: ShardStatement,
  holding: boolean,
): Promise<number[]> {
  const request = encodeStatement(probe)
  const shards = services.config().shards.map((_, i) => i)
  const found = await Promise.all(
    shards.map(async (shard) => {
      const placement = services.place(shard, 'primary', identity)
      const conn = await placement.pool.acquire(signal, holding)
      try {
        await syncSettings(conn, settings)
        const reply = await callShard(conn, request)
        if (reply.error) {
          throw new PgError(reply.error.code, errorField(reply.error.message.subarray(5), 0x4d) ?? 'error', { detail: `while pgshard looked for the rows on shard ${placement.shardName}` })
        }
        return reply.rows.length > 0
      } catch (err) {
        if (err instanceof PgError) throw err
        throw new PgError(SqlState.CONNECTION_FAILURE, `could not look for the rows on shard ${placement.shardName}: ${err instanceof Error ? err.message : String(err)}`)
      } finally {
        placement.pool.release(conn)
      }
    }),
  )
  return shards.filter((s) => found[s])
}
