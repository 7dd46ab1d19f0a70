import { PgError, SqlState } from '../protocol/PgError.js'
import { errorField } from '../protocol/ResponseTracker.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import { encodeStatement, type ShardStatement } from './MultiShardExecutor.js'
import type { Identity, SessionServices } from './SessionServices.js'
import type { SessionSettings } from './SessionSettings.js'
import { syncSettings } from './SettingsSync.js'
import { callShard } from './ShardCall.js'

/**
 * Which of `shards` hold committed rows an UPDATE, DELETE or locking read without a pinned key would touch: each
 * answers its `probe` (the statement's table and WHERE as a SELECT, with the client's parameters) on a
 * connection of its pool, brought to the client's settings. `holding`: the client holds connections meanwhile
 * (the pools' reserve may serve it). A shard's error (a bad value, a missing column) is the statement's error.
 */
export async function locateRows(
  services: SessionServices,
  identity: Identity,
  settings: SessionSettings,
  signal: AbortSignal,
  probe: ShardStatement,
  holding: boolean,
  shards: number[],
): Promise<number[]> {
  const found = await Promise.all(
    shards.map(async (shard) => {
      const placement = services.place(shard, 'primary', identity)
      const conn = await placement.pool.acquire(signal, holding)
      try {
        await syncSettings(conn, settings)
        return await holdsRows(conn, probe, placement.shardName)
      } finally {
        placement.pool.release(conn)
      }
    }),
  )
  return shards.filter((_, i) => found[i])
}

/** Whether `conn` answers the probe with a row (on the transaction's own connection: its own rows too). */
export async function holdsRows(conn: ServerConnection, probe: ShardStatement, shardName: string): Promise<boolean> {
  let reply
  try {
    reply = await callShard(conn, encodeStatement(probe, conn))
  } catch (err) {
    throw new PgError(SqlState.CONNECTION_FAILURE, `could not look for the rows on shard ${shardName}: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (reply.error) {
    throw new PgError(reply.error.code, errorField(reply.error.message.subarray(5), 0x4d) ?? 'error', { detail: `while pgshard looked for the rows on shard ${shardName}` })
  }
  return reply.rows.length > 0
}
