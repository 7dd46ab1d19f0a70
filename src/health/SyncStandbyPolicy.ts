import type { Config } from '../config/ConfigSchema.js'
import { quoteIdent } from '../router/SqlQuoting.js'

export type SyncPolicy = Config['health']['synchronous_policy']

export interface SyncSetting {
  /** The value for synchronous_standby_names on the new primary. */
  value: string
  /** Commits will wait until a standby connects (durability with no replica left to name). */
  commitsWait: boolean
}

/**
 * synchronous_standby_names for a freshly promoted primary. A list naming the old standbys (or itself) would be
 * stale; an empty one silently gives up the guarantee that an acknowledged commit survives the next failure.
 * - durability: quorum of one among the shard's remaining standbys. With none left, '*' keeps every commit
 *   waiting until some standby connects: the guarantee is kept, availability is not.
 * - availability: '' — commits return once local; a later failover may lose the newest ones.
 */
export function syncStandbySetting(policy: SyncPolicy, standbyNames: string[]): SyncSetting {
  if (policy === 'availability') return { value: '', commitsWait: false }
  const names = [...new Set(standbyNames)]
  if (names.length === 0) return { value: '*', commitsWait: true }
  return { value: `ANY 1 (${names.map(quoteIdent).join(', ')})`, commitsWait: false }
}
