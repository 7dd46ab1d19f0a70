import { parseLsn } from '../health/Lsn.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import { encodeQuery } from '../protocol/FrontendMessages.js'
import { Expect } from '../protocol/ResponseTracker.js'
import { decodeDataRow } from '../protocol/RowMessages.js'
import type { Role } from '../router/Route.js'
import { callShard } from './ShardCall.js'

const CURRENT_LSN_QUERY = encodeQuery('SELECT pg_catalog.pg_current_wal_lsn()')

/**
 * One client's read-your-writes state: per shard, the primary's WAL position after the client's last committed
 * write. A replica serves the client's reads there only once it has replayed that far.
 */
export class ReadYourWrites {
  private readonly written = new Map<number, bigint>()
  /** Shards whose commit position is being read. */
  private readonly pending = new Set<number>()

  /** While the commit position on a shard is being read, only its primary surely has the write. */
  roleFor(shard: number, wanted: Role): Role {
    return wanted === 'replica' && this.pending.has(shard) ? 'primary' : wanted
  }

  /** The WAL position a replica of this shard must have replayed, if the client wrote there. */
  minLsn(shard: number): bigint | undefined {
    return this.written.get(shard)
  }

  /**
   * Reads the primary's WAL position on the connection that just committed, before it goes back to the pool
   * (the client already has its answer).
   */
  capture(conn: ServerConnection, shard: number): void {
    this.pending.add(shard)
    conn.tracker.push({
      expect: Expect.Query,
      mode: 'suppress',
      onRow: (body) => this.wrote(shard, decodeDataRow(body)[0]),
      done: () => this.pending.delete(shard),
    })
    conn.write(CURRENT_LSN_QUERY)
  }

  /**
   * The same on a connection the caller reads itself, after a cross-shard commit the client is still to hear of:
   * a lost connection, or an answer that is no LSN, records nothing (never fails that commit's answer).
   */
  async captureNow(conn: ServerConnection, shard: number): Promise<void> {
    try {
      const reply = await callShard(conn, CURRENT_LSN_QUERY)
      if (reply.error === null) this.wrote(shard, reply.rows[0]?.[0])
    } catch {
      return
    }
  }

  private wrote(shard: number, value: Buffer | null | undefined): void {
    const lsn = parseLsn(value?.toString())
    if (lsn > (this.written.get(shard) ?? 0n)) this.written.set(shard, lsn)
  }
}
