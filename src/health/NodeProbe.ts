import { parseLsn } from './Lsn.js'

/** What one health check learns about a server. */
export interface ProbeResult {
  inRecovery: boolean
  /** Primary: WAL written so far (0 on a standby). */
  currentLsn: bigint
  /** Standby: WAL received and flushed, and WAL replayed (0 on a primary). */
  receiveLsn: bigint
  replayLsn: bigint
  /** Standby: age of the last replayed commit while WAL is still waiting to be replayed; 0 when caught up. */
  replayDelaySeconds: number
  /** synchronous_standby_names is set, and the standbys that are synchronous now (commits wait while 0). */
  syncRequired: boolean
  syncStandbys: number
}

/**
 * One round trip. The delay counts only while something is left to replay: a standby of an idle primary has an
 * old last-replay timestamp but is not behind.
 */
export const PROBE_SQL = `SELECT pg_is_in_recovery() AS recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current,
  pg_last_wal_receive_lsn()::text AS receive,
  pg_last_wal_replay_lsn()::text AS replay,
  CASE WHEN NOT pg_is_in_recovery()
         OR pg_last_wal_receive_lsn() IS NULL
         OR pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() THEN 0
       ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8 END AS delay,
  current_setting('synchronous_standby_names') <> '' AS sync_required,
  (SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum'))::int AS sync_standbys`

export interface ProbeRow extends Record<string, unknown> {
  recovery: boolean
  current: string | null
  receive: string | null
  replay: string | null
  delay: number
  sync_required: boolean
  sync_standbys: number
}

export function probeResult(row: ProbeRow): ProbeResult {
  return {
    inRecovery: row.recovery,
    currentLsn: parseLsn(row.current),
    receiveLsn: parseLsn(row.receive),
    replayLsn: parseLsn(row.replay),
    replayDelaySeconds: Math.max(0, Number(row.delay)),
    syncRequired: row.sync_required,
    syncStandbys: row.sync_standbys,
  }
}
