// The keys and values pgshard makes or draws for a session's writes, and the shards a write without its key finds
// its rows on: keys for an INSERT that leaves its sharding key out (drawn from the key's sequence on its shard's
// primary, or random UUIDs), the client's own nextval() in a transaction, values made for a split COPY's rows,
// and the probe that locates an UPDATE's or DELETE's rows (RowLocator).
import { insertWithKeys } from '../router/InsertRowsAnalyzer.js'
import { restoreLiterals } from '../router/LiteralNormalizer.js'
import type { KeySource, Route } from '../router/Route.js'
import { quoteLiteral } from '../router/SqlQuoting.js'
import type { ClientTransaction } from './ClientTransaction.js'
import type { CopySplit } from './CopyInFanout.js'
import type { ShardStatement } from './MultiShardExecutor.js'
import { randomUuids } from './RandomKeys.js'
import { holdsRows, locateRows } from './RowLocator.js'
import { drawFromSequence, nextValues, type KeyRequest } from './SequenceKeys.js'
import type { ServerLease } from './ServerLease.js'
import type { DrawnValueRoute, SequenceDrawRoute, SessionRouting } from './SessionRouting.js'
import type { Analyzed, Identity, SessionServices } from './SessionServices.js'
import type { SessionSettings } from './SessionSettings.js'
import { splitPart } from './StatementParams.js'

export type KeysRoute = Extract<Route, { kind: 'keys' }>
export type LocateRoute = Extract<Route, { kind: 'locate' }>
type CopySplitRoute = Extract<Route, { kind: 'copy_split' }>

/** What making keys and finding rows read of the session that owns them. */
export interface KeyedSession {
  /** Aborted by the client's CancelRequest. */
  readonly cancelled: AbortSignal
  /** The session's status says it is in a transaction. */
  readonly inTransaction: boolean
  /** The transaction may go on to other shards. */
  readonly mayJoinShards: boolean
  /** The shard of the server connection the client holds, if it holds one. */
  readonly heldShard: number | undefined
  /** A pipeline runs on a server connection: its statements before the Sync are still on their way there. */
  readonly pipelining: boolean
}

export class SessionKeys {
  constructor(
    private readonly services: SessionServices,
    private readonly identity: Identity,
    private readonly settings: SessionSettings,
    private readonly lease: ServerLease,
    private readonly tx: ClientTransaction,
    private readonly routing: SessionRouting,
    private readonly session: KeyedSession,
  ) {}

  /**
   * The INSERT of a `keys` route with a key made for each row written in, as the client would have sent it with
   * them: keys of the transaction's shard when it cannot leave it, else the next ones drawn (or made).
   */
  async insertWithMadeKeys(route: KeysRoute, analyzed: Analyzed): Promise<string> {
    // Session pooling keeps a transaction on one shard whatever the map's cross_shard_transactions says; a
    // pipeline that already runs on a shard (psycopg's executemany) stays there.
    const held = route.places && ((this.session.inTransaction && !this.session.mayJoinShards) || this.session.pipelining)
    const fits = (route.places && route.oneShard) || held ? keysOfOneShard(route.shardOf, route.shard ?? (held ? this.session.heldShard : undefined)) : null
    const from = route.from
    const keys = await this.madeKeys(from, route.insert.rows.length, fits, this.session.heldShard !== undefined)
    if (from !== 'uuid') this.routing.drew(from.sequence, keys.at(-1)!)
    const literals = from === 'uuid' ? keys.map(quoteLiteral) : keys
    return restoreLiterals(insertWithKeys(route.insert, route.key, route.keyIndex, literals), analyzed.firstParam, analyzed.sources ?? [])
  }

  /** The client's nextval() in a transaction, drawn on the default shard's primary (SequenceDrawRoute). */
  async drawForClient(route: SequenceDrawRoute): Promise<DrawnValueRoute> {
    const placement = this.services.place(this.services.defaultShard(), 'primary', this.identity)
    const [value] = await drawFromSequence(placement, this.settings, this.session.cancelled, this.session.heldShard !== undefined, route.sequence, 1)
    this.routing.drewForClient(route.sequence, String(value))
    return { kind: 'drawn', value: String(value), column: route.column, reason: route.reason }
  }

  /**
   * `count` keys pgshard makes, as text: drawn from the sequence on its shard's primary, or random UUIDs; only
   * those `fits` takes when given. `holding`: the client holds server connections meanwhile (see nextValues).
   */
  private async madeKeys(from: KeySource, count: number, fits: ((key: string) => boolean) | null, holding: boolean): Promise<string[]> {
    const odds = this.services.config().shards.length
    if (from === 'uuid') return randomUuids(count, fits, odds)
    const request: KeyRequest = {
      source: `${this.identity.serverDatabase}\0${this.identity.user.name}\0${from.sequence}`,
      sequence: from.sequence,
      count,
      fits: fits && ((key) => fits(key.toString())),
      odds,
    }
    this.routing.keysDrawn()
    const placement = this.services.place(from.shard, 'primary', this.identity)
    const keys = await this.services.sequenceKeys.take(request, (n) => nextValues(placement, this.settings, this.session.cancelled, holding, from.sequence, n))
    return keys.map(String)
  }

  /**
   * The shards an UPDATE, DELETE or locking read without a pinned key touches rows on: asked on the connections
   * of the shards the client's transaction wrote (whose own rows only it sees), and on pool connections of the
   * others (RowLocator). A pipeline's statements before its Sync are still on their way to their server: its
   * shard counts as holding rows.
   */
  async located(route: LocateRoute, analyzed: Analyzed, whole: ShardStatement): Promise<number[]> {
    const probe = splitPart(restoreLiterals(route.probe, analyzed.firstParam, analyzed.sources ?? []), whole)
    const all = this.services.config().shards.map((_, i) => i)
    const own = this.session.inTransaction && !this.session.pipelining ? [...this.tx.writtenShards] : []
    const found = new Set(await locateRows(this.services, this.identity, this.settings, this.session.cancelled, probe, this.session.heldShard !== undefined, all.filter((s) => !own.includes(s))))
    for (const shard of own) {
      await this.lease.whenIdle()
      const held = this.lease.inTransaction(shard)
      if (!held || (await holdsRows(held.conn, probe, held.placement.shardName))) found.add(shard)
    }
    if (this.session.pipelining && this.session.heldShard !== undefined) found.add(this.session.heldShard)
    return [...found].sort((x, y) => x - y)
  }

  /** How a split COPY's rows find their shards; values pgshard makes for them are drawn while the rows come. */
  copySplit(route: CopySplitRoute): CopySplit {
    const made = route.made
    return {
      copy: route.copy,
      key: route.key,
      keyShard: route.keyShard,
      ...(made ? { made: { column: made.column, places: made.places, take: (count: number) => this.madeKeys(made.from, count, null, true) } } : {}),
    }
  }
}

/** Accepts keys of `shard`, or, without one, of the shard of the first key it sees. */
function keysOfOneShard(shardOf: (key: string) => number, shard: number | undefined): (key: string) => boolean {
  return (key) => {
    const s = shardOf(key)
    shard ??= s
    return s === shard
  }
}
