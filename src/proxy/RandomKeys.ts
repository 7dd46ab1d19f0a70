// Random UUID keys for INSERTs that leave out a uuid sharding key pgshard makes (sharding.tables[].key_uuid):
// version 4, as gen_random_uuid() would have made them on the server.
import { randomUUID } from 'node:crypto'
import { PgError, SqlState } from '../protocol/PgError.js'

/**
 * `count` random UUIDs that `fits` accepts (all when null). With `fits`, at most `odds` × 64 tries per key (the
 * chance of one shard's key among `odds` shards), then a PgError.
 */
export function randomUuids(count: number, fits: ((key: string) => boolean) | null, odds: number): string[] {
  const keys: string[] = []
  let tries = count * odds * 64
  while (keys.length < count) {
    const key = randomUUID()
    if (fits === null || fits(key)) keys.push(key)
    else if (--tries === 0) {
      throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `found no random UUID for the transaction's shard in ${count * odds * 64} tries`, {
        hint: 'Give the key in the INSERT, or insert outside the transaction.',
      })
    }
  }
  return keys
}
