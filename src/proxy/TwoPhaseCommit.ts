import type { Logger } from '../log/Logger.js'
import type { CrossShardCommitOutcome } from '../metrics/TwoPhaseMetrics.js'
import type { ServerConnection } from '../pool/ServerConnection.js'
import { encodeQuery } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { commandComplete, errorResponse } from '../protocol/ServerMessages.js'
import { quoteLiteral } from '../router/SqlQuoting.js'
import { callShard, type ShardReply } from './ShardCall.js'
import { formatTwoPhaseId } from './TwoPhaseId.js'

/** One shard of the transaction: the connection that holds it there. */
export interface Participant {
  shardName: string
  nodeName: string
  conn: ServerConnection
}

export interface CommitOutcome {
  outcome: CrossShardCommitOutcome
  /** What the client gets before ReadyForQuery: CommandComplete, or the ErrorResponse that says why not. */
  reply: Buffer
}

/** A server's answer, or null when the connection was lost before it came. */
async function ask(conn: ServerConnection, sql: string): Promise<ShardReply | null> {
  try {
    return await callShard(conn, encodeQuery(sql))
  } catch {
    return null
  }
}

const failed = (reply: ShardReply | null, tag: string) => reply === null || reply.error !== null || reply.tags[reply.tags.length - 1] !== tag

/**
 * Commits a transaction that ran on several shards (`parts`, in shard order), all or nothing. The first shard
 * decides: the others PREPARE TRANSACTION under a name holding the first shard's transaction id, then the first
 * COMMITs, then the others COMMIT PREPARED. Should pgshard or a server fail in between, the outcome is on record
 * in the first shard's commit log, and PreparedTransactionResolver finishes the others the same way
 * (txid_status), whichever proxy finds them.
 */
export async function commitAcrossShards(parts: Participant[], log: Logger): Promise<CommitOutcome> {
  const [first, ...others] = parts
  const rollBack = async (prepared: Participant[], gid: string | null) => {
    const undo = [ask(first.conn, 'ROLLBACK'), ...others.map((p) => (gid !== null && prepared.includes(p) ? ask(p.conn, `ROLLBACK PREPARED ${quoteLiteral(gid)}`) : ask(p.conn, 'ROLLBACK')))]
    await Promise.all(undo)
  }
  const lost = (p: Participant, when: string, outcome: CrossShardCommitOutcome = 'rolled_back'): CommitOutcome => {
    const code = outcome === 'unknown' ? SqlState.TRANSACTION_RESOLUTION_UNKNOWN : SqlState.CONNECTION_FAILURE
    return { outcome, reply: errorResponse(new PgError(code, `lost the connection to server ${p.nodeName} (shard ${p.shardName}) ${when}`)) }
  }
  const refused = (reply: ShardReply): CommitOutcome => ({ outcome: 'rolled_back', reply: reply.error?.message ?? commandComplete('ROLLBACK') })

  const id = await ask(first.conn, 'SELECT pg_catalog.txid_current()')
  if (failed(id, 'SELECT 1') || id!.rows[0]?.[0] == null) {
    await rollBack([], null)
    return id === null ? lost(first, 'before COMMIT; the transaction was rolled back on every shard') : refused(id)
  }
  const gid = formatTwoPhaseId({ decidingShard: first.shardName, xid: id!.rows[0][0]!.toString() })

  const prepares = await Promise.all(others.map((p) => ask(p.conn, `PREPARE TRANSACTION ${quoteLiteral(gid)}`)))
  const refusal = prepares.findIndex((r) => failed(r, 'PREPARE TRANSACTION'))
  if (refusal >= 0) {
    await rollBack(others.filter((_, i) => !failed(prepares[i], 'PREPARE TRANSACTION')), gid)
    const r = prepares[refusal]
    return r === null ? lost(others[refusal], 'while it prepared to COMMIT; the transaction was rolled back on every shard') : refused(r)
  }

  const commit = await ask(first.conn, 'COMMIT')
  if (commit === null) {
    // Committed or not, the first shard's commit log knows; the resolver finishes the others accordingly.
    log.error({ gid, node: first.nodeName }, 'lost the deciding shard during a cross-shard COMMIT: the prepared shards follow its outcome once it is known')
    return lost(first, `during COMMIT: whether the transaction committed is unknown until it answers again; its other shards then follow its outcome (${gid})`, 'unknown')
  }
  if (failed(commit, 'COMMIT')) {
    await Promise.all(others.map((p) => ask(p.conn, `ROLLBACK PREPARED ${quoteLiteral(gid)}`)))
    return refused(commit)
  }

  // Decided: the transaction committed. A shard that does not confirm now is finished by the resolver.
  const finishes = await Promise.all(others.map((p) => ask(p.conn, `COMMIT PREPARED ${quoteLiteral(gid)}`)))
  finishes.forEach((r, i) => {
    // 42704 (no such prepared transaction): a resolver finished it first.
    if (failed(r, 'COMMIT PREPARED') && r?.error?.code !== SqlState.UNDEFINED_OBJECT) {
      log.warn({ gid, node: others[i].nodeName, sqlstate: r?.error?.code ?? 'connection lost' }, 'a committed cross-shard transaction is still prepared on this shard: the resolver will finish it')
    }
  })
  return { outcome: 'committed', reply: commandComplete('COMMIT') }
}
