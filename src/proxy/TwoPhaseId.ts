/**
 * The name under which a cross-shard transaction is prepared on its other shards: the shard that decides it
 * (the first) and its transaction id there, so that anyone can later learn its outcome with txid_status().
 */
export interface TwoPhaseId {
  /** The shard whose COMMIT decides the transaction. */
  decidingShard: string
  /** txid_current() of the transaction on that shard (64-bit, with epoch). */
  xid: string
}

const PREFIX = 'pgshard:'

/** SQL LIKE pattern matching every name this module makes (no wildcard in the prefix). */
export const TWO_PHASE_GID_PATTERN = `${PREFIX}%`

export function formatTwoPhaseId(id: TwoPhaseId): string {
  return `${PREFIX}${id.decidingShard}:${id.xid}`
}

/** The id a gid names, or null for a gid pgshard did not make. */
export function parseTwoPhaseId(gid: string): TwoPhaseId | null {
  if (!gid.startsWith(PREFIX)) return null
  const colon = gid.lastIndexOf(':')
  const xid = gid.slice(colon + 1)
  if (colon < PREFIX.length || !/^\d{1,20}$/.test(xid)) return null
  return { decidingShard: gid.slice(PREFIX.length, colon), xid }
}
