// Keys for INSERTs that leave out a sharding key whose table draws it from a sequence. Values are drawn in
// blocks (one round trip serves many rows) and those a statement did not use wait for the next one, so that a
// transaction held on one shard can take only that shard's keys without wasting the others.
import { encodeQuery } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { errorField } from '../protocol/ResponseTracker.js'
import { quoteLiteral } from '../router/SqlQuoting.js'
import type { Placement } from './SessionServices.js'
import type { SessionSettings } from './SessionSettings.js'
import { syncSettings } from './SettingsSync.js'
import { callShard } from './ShardCall.js'

/** Draws `n` new values from the sequence (nextval on its server). */
export type DrawValues = (n: number) => Promise<bigint[]>

export interface KeyRequest {
  /** What the values come from: a database, a user and a sequence (each has its own spare values). */
  source: string
  /** The sequence as the configuration names it, for messages. */
  sequence: string
  count: number
  /** Only keys this accepts (those of the shard a transaction is held on), or any when null. */
  fits: ((key: bigint) => boolean) | null
  /** How many values it takes, on average, to find one that fits (the number of shards). */
  odds: number
}

/** How many times a request draws before it gives up finding keys that fit. */
const ROUNDS = 8

export class SequenceKeys {
  private readonly spare = new Map<string, bigint[]>()

  constructor(
    /** The least a draw asks for. */
    private readonly block = 32,
    /** Spare values kept per source; more are dropped (a gap in the sequence, as a rolled-back nextval leaves). */
    private readonly keep = 1024,
  ) {}

  /** `count` keys in the order drawn, spare values first; throws a PgError when none fit after a few draws. */
  async take(request: KeyRequest, draw: DrawValues): Promise<bigint[]> {
    const taken: bigint[] = []
    /** Takes what fits from `values` (in place), leaving the rest there. */
    const pick = (values: bigint[]): bigint[] => {
      let kept = 0
      for (const value of values) {
        if (taken.length < request.count && (request.fits === null || request.fits(value))) taken.push(value)
        else values[kept++] = value
      }
      values.length = kept
      return values
    }
    const spare = this.spare.get(request.source)
    if (spare) pick(spare)
    for (let round = 0; taken.length < request.count; round++) {
      if (round === ROUNDS) {
        this.give(request.source, taken)
        throw new PgError(
          SqlState.FEATURE_NOT_SUPPORTED,
          `found no key from sequence ${request.sequence} for the transaction's shard after ${ROUNDS} draws`,
          { hint: 'Give the key in the INSERT, or insert outside the transaction.' },
        )
      }
      const need = request.count - taken.length
      this.give(request.source, pick(await draw(Math.max(this.block, request.fits === null ? need : need * request.odds * 2))))
    }
    return taken
  }

  /**
   * Drops every spare value: a sequence may have been reset (ALTER SEQUENCE … RESTART, setval, TRUNCATE …
   * RESTART IDENTITY, its table dropped and made again), and its old values would come back as duplicates.
   */
  forget(): void {
    this.spare.clear()
  }

  /** Values back to the spare ones of `source` (in their order), up to the limit. */
  private give(source: string, values: bigint[]): void {
    let spare = this.spare.get(source)
    if (!spare) this.spare.set(source, (spare = []))
    for (const v of values) {
      if (spare.length >= this.keep) return
      spare.push(v)
    }
  }
}

/**
 * `n` values of `sequence` from a connection of `placement`'s pool, brought to the client's settings (its
 * search_path finds the sequence, its role needs USAGE on it). `holding`: the client holds a connection of its
 * transaction meanwhile, so the pool's reserve may serve it (no two clients wait on each other for the last one).
 * A server's error comes as that server's code and message.
 */
export async function drawFromSequence(placement: Placement, settings: SessionSettings, signal: AbortSignal, holding: boolean, sequence: string, n: number): Promise<bigint[]> {
  const conn = await placement.pool.acquire(signal, holding)
  try {
    await syncSettings(conn, settings)
    const reply = await callShard(conn, encodeQuery(`SELECT nextval(${quoteLiteral(sequence)}) FROM generate_series(1, ${n})`)).catch((err: Error) => {
      throw new PgError(SqlState.CONNECTION_FAILURE, `could not draw from sequence ${sequence}: ${err.message}`)
    })
    if (reply.error) throw new PgError(reply.error.code, errorField(reply.error.message.subarray(5), 0x4d) ?? 'error')
    return reply.rows.map((row) => BigInt(row[0]!.toString()))
  } finally {
    placement.pool.release(conn)
  }
}

/** Keys drawn for rows (drawFromSequence), a server's error saying which sequence of the configuration failed. */
export async function nextValues(placement: Placement, settings: SessionSettings, signal: AbortSignal, holding: boolean, sequence: string, n: number): Promise<bigint[]> {
  return drawFromSequence(placement, settings, signal, holding, sequence, n).catch((err: unknown) => {
    if (!(err instanceof PgError) || err.code === SqlState.CONNECTION_FAILURE) throw err
    throw new PgError(err.code, `could not draw keys from sequence ${sequence} on shard ${placement.shardName}: ${err.message}`, {
      hint: 'A sequence of sharding.tables[].key_sequence or sharding.made_columns must exist on the default shard, with USAGE for this user.',
    })
  })
}
