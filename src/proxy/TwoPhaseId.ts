/**
 * The name under which a cross-shard transaction is prepared on its other shards: the shard that decides it
 * (the first) and its transaction id there, so that anyone can later learn its outcome with txid_status().
 */
export interface TwoPhaseId {
  /** The shard whose COMMIT decides the transaction. */
  decidingShard: string
  /** txid_current() of the transaction on that shard (64-bit, with epoch). */
  xid: string
  /**
   * Tells apart parts of one decision prepared on the same server (a gid is unique per server, not per
   * database): RESHARD prepares one part per server database. Absent for a client's transaction.
   */
  part?: number
}

const PREFIX = 'pgshard:'
const XID_AND_PART = /^(\d{1,20})(?:\.(\d{1,9}))?$/

/** SQL LIKE pattern matching every name this module makes (no wildcard in the prefix). */
export const TWO_PHASE_GID_PATTERN = `${PREFIX}%`

export function formatTwoPhaseId(id: TwoPhaseId): string {
  return `${PREFIX}${id.decidingShard}:${id.xid}${id.part === undefined ? '' : `.${id.part}`}`
}

/** The id a gid names, or null for a gid pgshard did not make. */
export function parseTwoPhaseId(gid: string): TwoPhaseId | null {
  if (!gid.startsWith(PREFIX)) return null
  const colon = gid.lastIndexOf(':')
  const m = XID_AND_PART.exec(gid.slice(colon + 1))
  if (colon < PREFIX.length || !m) return null
  return { decidingShard: gid.slice(PREFIX.length, colon), xid: m[1], ...(m[2] === undefined ? {} : { part: Number(m[2]) }) }
}
