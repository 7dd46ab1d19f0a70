import { PgError, SqlState } from '../protocol/PgError.js'
import type { MadeKeys } from '../router/CopyRowRouter.js'

/**
 * Values pgshard makes for the rows of a COPY that leaves out the key or a drawn column, taken ahead of routing
 * the rows: one
 * request per chunk of rows that finds too few waiting, for at least BATCH (psql sends a row per message).
 * Those left at the end are not used: a gap in the sequence, as a rolled-back nextval() leaves.
 */
export class CopyKeyQueue implements MadeKeys {
  private static readonly BATCH = 256
  private keys: string[] = []
  private at = 0

  constructor(
    readonly column: string,
    readonly places: boolean,
    private readonly take: (count: number) => Promise<string[]>,
  ) {}

  next(): string {
    const key = this.keys[this.at++]
    if (key === undefined) throw new PgError(SqlState.INTERNAL_ERROR, 'a COPY row came without a key made for it')
    return key
  }

  /** Resolves once `count` keys wait; null when they already do. */
  ensure(count: number): Promise<void> | null {
    const left = this.keys.length - this.at
    if (left >= count) return null
    return this.take(Math.max(count - left, CopyKeyQueue.BATCH)).then((more) => {
      this.keys = [...this.keys.slice(this.at), ...more]
      this.at = 0
    })
  }
}
