import { ControlConnection, queryOnce, type ControlAccess } from '../health/ControlConnection.js'
import { parseLsn } from '../health/Lsn.js'
import type { Logger } from '../log/Logger.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { formatTwoPhaseId } from '../proxy/TwoPhaseId.js'
import { quoteLiteral } from '../router/SqlQuoting.js'

/** A shard's primary as RESHARD reaches it: the live one for shards already in the map. */
export interface ShardPrimary {
  shard: string
  node: string
  host: string
  port: number
}

/** One server database taking part in the move, in a transaction of its own until the common commit. */
export interface MoveParticipant {
  readonly primary: ShardPrimary
  readonly database: string
  query<Row extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>
}

const OBJECT_NOT_IN_PREREQUISITE_STATE = '55000'
const UNDEFINED_TABLE = '42P01'

class Participant implements MoveParticipant {
  readonly conn: ControlConnection
  gid: string | null = null

  constructor(
    readonly primary: ShardPrimary,
    readonly database: string,
    access: ControlAccess,
    private readonly timeoutMs: number,
  ) {
    this.conn = new ControlConnection(primary, access, database)
  }

  async query<Row extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]> {
    try {
      return await this.conn.query<Row>(sql, this.timeoutMs, params)
    } catch (err) {
      throw this.explain(err)
    }
  }

  /** The server's error, told where it happened (the operator runs RESHARD against many servers at once). */
  explain(err: unknown): PgError {
    const e = err as { code?: string; message?: string; detail?: string; hint?: string }
    const code = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : SqlState.CONNECTION_FAILURE
    let hint = e.hint
    if (code === OBJECT_NOT_IN_PREREQUISITE_STATE && /prepared transactions are disabled/i.test(e.message ?? ''))
      hint = 'RESHARD commits on every primary at once with two-phase commit: set max_prepared_transactions above 0 on every primary and restart it.'
    if (code === UNDEFINED_TABLE) hint = 'Create every sharded table on every shard before RESHARD (pg_dump --schema-only from a shard that has them).'
    if (code === SqlState.INSUFFICIENT_PRIVILEGE) hint = 'RESHARD runs as control.user, which must be a superuser (it moves rows with triggers and foreign keys off, as replication does).'
    return new PgError(code, `on ${this.primary.node} (shard ${this.primary.shard}, database ${this.database}): ${e.message ?? String(err)}`, {
      ...(e.detail ? { detail: e.detail } : {}),
      ...(hint ? { hint } : {}),
    })
  }
}

/**
 * The transactions of one RESHARD, one per server database it touches, committed all or nothing. Each runs
 * with session_replication_role = replica: rows are moved, not deleted and inserted, so no trigger fires and
 * no foreign key acts (an ON DELETE CASCADE on the source would delete rows that are still to be moved).
 * The commit is pgshard's two-phase commit: the others PREPARE under a name holding the deciding
 * transaction's id, the deciding one COMMITs, the others COMMIT PREPARED; should pgshard stop in between,
 * PreparedTransactionResolver finishes them as the deciding shard's commit log says.
 */
export class MoveTransaction {
  private readonly parts = new Map<string, Participant>()

  constructor(
    private readonly access: ControlAccess,
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  /** The participant for a server database, its transaction begun on first use. */
  async on(primary: ShardPrimary, database: string): Promise<MoveParticipant> {
    const id = `${primary.host}:${primary.port}/${database}`
    const known = this.parts.get(id)
    if (known) return known
    const part = new Participant(primary, database, this.access, this.timeoutMs)
    this.parts.set(id, part)
    await part.query('BEGIN')
    await part.query('SET LOCAL session_replication_role = replica')
    return part
  }

  /**
   * Commits every participant, or none. `deciders` are the shards that may decide: the resolver asks the
   * deciding shard by name, so it must be one of the new map's.
   */
  async commit(deciders: ReadonlySet<string>): Promise<Map<string, bigint>> {
    const parts = [...this.parts.values()]
    const decider = parts.find((p) => deciders.has(p.primary.shard))
    if (!decider) throw new PgError(SqlState.INTERNAL_ERROR, 'no shard of the new map takes part in the move')
    const others = parts.filter((p) => p !== decider)
    const [{ xid }] = await decider.query<{ xid: string }>('SELECT pg_catalog.txid_current()::text AS xid')
    try {
      for (const [i, p] of others.entries()) {
        const gid = formatTwoPhaseId({ decidingShard: decider.primary.shard, xid, part: i + 1 })
        await p.query(`PREPARE TRANSACTION ${quoteLiteral(gid)}`)
        p.gid = gid
      }
    } catch (err) {
      await this.rollback()
      throw err
    }
    try {
      await decider.query('COMMIT')
    } catch (err) {
      const outcome = await this.outcome(decider, xid)
      if (outcome === null) {
        this.close()
        throw new PgError(SqlState.TRANSACTION_RESOLUTION_UNKNOWN, `RESHARD lost ${decider.primary.node} during its COMMIT: whether the rows moved is unknown until it answers again`, {
          hint: `The other parts stay prepared and follow its outcome. pgshard stays paused: once txid_status(${xid}) on ${decider.primary.node} says committed, RELOAD with sharding.allow_key_movement: true; if aborted, restore the old file; then RESUME.`,
        })
      }
      if (outcome !== 'committed') {
        await this.rollback()
        throw err
      }
    }
    for (const p of others) {
      try {
        await p.query(`COMMIT PREPARED ${quoteLiteral(p.gid!)}`)
      } catch (err) {
        this.log.warn({ gid: p.gid, node: p.primary.node, database: p.database, err: (err as Error).message }, 'RESHARD committed, but this part is still prepared: the resolver finishes it (or run COMMIT PREPARED there if the shard left the map)')
      }
    }
    const written = await this.walPositions(parts)
    this.close()
    return written
  }

  /** Where each shard's primary's WAL stands now, the move included (a primary that does not say is left out). */
  private async walPositions(parts: Participant[]): Promise<Map<string, bigint>> {
    const written = new Map<string, bigint>()
    for (const p of parts) {
      try {
        const [row] = await p.query<{ lsn: string }>('SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn')
        const lsn = parseLsn(row?.lsn)
        if (lsn > (written.get(p.primary.shard) ?? 0n)) written.set(p.primary.shard, lsn)
      } catch {
        // Its replicas are then not waited for; the health checks' lag limits still apply to them.
      }
    }
    return written
  }

  /** Undoes every participant: open transactions roll back, prepared ones ROLLBACK PREPARED. Never throws. */
  async rollback(): Promise<void> {
    await Promise.all(
      [...this.parts.values()].map(async (p) => {
        try {
          if (p.gid === null) await p.query('ROLLBACK')
          else await queryOnce(p.primary, this.access, `ROLLBACK PREPARED ${quoteLiteral(p.gid)}`, this.timeoutMs, p.database)
        } catch (err) {
          // A lost connection rolled its transaction back already; a prepared part left is the resolver's.
          this.log.warn({ node: p.primary.node, database: p.database, gid: p.gid, err: (err as Error).message }, 'RESHARD could not roll back one part')
        }
      }),
    )
    this.close()
  }

  private close(): void {
    for (const p of this.parts.values()) p.conn.close()
    this.parts.clear()
  }

  /** After a COMMIT without answer: what the deciding server did, asked on a new connection. */
  private async outcome(decider: Participant, xid: string): Promise<string | null> {
    try {
      const [row] = await queryOnce<{ status: string | null }>(decider.primary, this.access, `SELECT pg_catalog.txid_status(${xid})::text AS status`, this.timeoutMs, decider.database)
      return row?.status ?? null
    } catch {
      return null
    }
  }
}
