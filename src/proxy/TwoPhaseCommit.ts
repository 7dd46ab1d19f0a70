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
 * Commits a read-write transaction that holds several shards (`parts`, in shard order), all or nothing. Only the
 * shards where it wrote (a transaction id was assigned there) have anything to agree on: with one, that one
 * commits alone and the others, which only read, end after it; with several, two-phase commit when `twoPhase`
 * (commitPrepared), else everything rolls back (the router keeps such a transaction's writes to one shard: a
 * write it could not see, in a function, is caught here).
 */
export async function commitAcrossShards(parts: Participant[], log: Logger, twoPhase: boolean): Promise<CommitOutcome> {
  const assigned = await Promise.all(parts.map((p) => ask(p.conn, 'SELECT pg_catalog.pg_current_xact_id_if_assigned()')))
  // A shard that did not say it only read counts as written.
  const writers = parts.filter((_, i) => failed(assigned[i], 'SELECT 1') || assigned[i]!.rows[0]?.[0] != null)
  if (writers.length > 1 && twoPhase) return commitPrepared(parts, log)
  const readers = parts.filter((p) => !writers.includes(p))
  if (writers.length > 1) {
    await Promise.all(parts.map((p) => ask(p.conn, 'ROLLBACK')))
    const names = writers.map((p) => p.shardName).join(', ')
    return {
      outcome: 'rolled_back',
      reply: errorResponse(
        new PgError(SqlState.FEATURE_NOT_SUPPORTED, `the transaction wrote shards ${names}, and cross-shard transactions are not supported: it was rolled back on every shard`, {
          hint: 'keep a transaction\u2019s writes to one shard, or set sharding.cross_shard_transactions: two_phase (docs/routing.md)',
        }),
      ),
    }
  }
  const decider = writers[0] ?? parts[0]
  const others = parts.filter((p) => p !== decider)
  const commit = await ask(decider.conn, 'COMMIT')
  // The others only read: whatever the decider's outcome, there is nothing of theirs to keep.
  await Promise.all(others.map((p) => ask(p.conn, readers.includes(p) && commit !== null && !failed(commit, 'COMMIT') ? 'COMMIT' : 'ROLLBACK')))
  if (commit === null) {
    const code = SqlState.TRANSACTION_RESOLUTION_UNKNOWN
    return { outcome: 'unknown', reply: errorResponse(new PgError(code, `lost the connection to server ${decider.nodeName} (shard ${decider.shardName}) during COMMIT: whether the transaction committed is unknown`)) }
  }
  if (failed(commit, 'COMMIT')) return { outcome: 'rolled_back', reply: commit.error?.message ?? commandComplete('ROLLBACK') }
  return { outcome: 'committed', reply: commandComplete('COMMIT') }
}

/**
 * Two-phase commit of a transaction that wrote several shards. The first shard decides: the others PREPARE
 * TRANSACTION under a name holding the first shard's transaction id, then the first COMMITs, then the others
 * COMMIT PREPARED. Should pgshard or a server fail in between, the outcome is on record in the first shard's
 * commit log, and PreparedTransactionResolver finishes the others the same way (txid_status), whichever proxy
 * finds them.
 */
async function commitPrepared(parts: Participant[], log: Logger): Promise<CommitOutcome> {
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
