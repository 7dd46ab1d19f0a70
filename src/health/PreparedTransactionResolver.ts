import type { Config } from '../config/ConfigSchema.js'
import type { Logger } from '../log/Logger.js'
import { SqlState } from '../protocol/PgError.js'
import type { TwoPhaseMetrics } from '../metrics/TwoPhaseMetrics.js'
import { quoteLiteral } from '../router/SqlQuoting.js'
import { TWO_PHASE_GID_PATTERN, parseTwoPhaseId } from '../proxy/TwoPhaseId.js'
import { controlAccess, queryOnce } from './ControlConnection.js'
import type { NodeState } from './NodeState.js'
import { PeriodicTask } from './PeriodicTask.js'
import type { Topology } from './Topology.js'

/** What one round did, by gid. */
export interface ResolveRound {
  committed: string[]
  rolledBack: string[]
  /** The deciding shard has not decided yet (its transaction is still open), or cannot be asked now. */
  waiting: string[]
}

type Outcome = 'commit' | 'rollback' | 'wait'


/**
 * Finishes cross-shard transactions left prepared on a shard (a proxy stopped or lost a server between
 * PREPARE TRANSACTION and COMMIT PREPARED). Each one's name holds the shard that decided it and its transaction
 * id there; txid_status() on that shard's primary says committed or aborted, and the prepared part follows.
 * Safe with several proxies (each decision is the deciding shard's) and alongside the commit in progress
 * (an open transaction there is left alone).
 */
export class PreparedTransactionResolver {
  private readonly task = new PeriodicTask(
    () => this.resolveAll(),
    () => this.config.health.resolve_prepared_interval,
    (err) => this.log.error({ err: err.message }, 'resolving prepared cross-shard transactions failed'),
  )
  private readonly warned = new Set<string>()
  /** Primaries seen with max_prepared_transactions above 0. */
  private readonly canPrepare = new Set<string>()
  private readonly log: Logger

  constructor(
    private readonly topology: Topology,
    private config: Config,
    log: Logger,
    private readonly metrics?: TwoPhaseMetrics,
  ) {
    this.log = log.child({ component: 'two-phase' })
  }

  /** The first round at once: parts a stopped proxy left are finished at start-up, and a shard that cannot prepare is told of. */
  start(): void {
    this.task.start(true)
  }

  stop(): void {
    this.task.stop()
  }

  reconfigure(config: Config): void {
    this.config = config
  }

  /** Looks at every shard's primary once; rounds asked for while one runs share it. */
  resolve(): Promise<ResolveRound> {
    return this.task.runNow()
  }

  private async resolveAll(): Promise<ResolveRound> {
    const done: ResolveRound = { committed: [], rolledBack: [], waiting: [] }
    for (const shard of this.topology.shards) {
      const primary = this.topology.primaryOf(shard.index)
      if (!primary?.up) continue
      if (this.config.sharding.cross_shard_transactions === 'two_phase' && !this.canPrepare.has(primary.name)) await this.checkCanPrepare(primary)
      let prepared: { gid: string; database: string }[]
      try {
        prepared = await this.query(primary, `SELECT gid, database FROM pg_catalog.pg_prepared_xacts WHERE gid LIKE ${quoteLiteral(TWO_PHASE_GID_PATTERN)}`)
      } catch (err) {
        this.warnOnce(`list:${primary.name}`, { node: primary.name, err: (err as Error).message }, 'could not look for prepared cross-shard transactions')
        continue
      }
      for (const { gid, database } of prepared) {
        const outcome = await this.outcomeOf(gid)
        if (outcome === 'wait') {
          done.waiting.push(gid)
          continue
        }
        try {
          await this.query(primary, `${outcome === 'commit' ? 'COMMIT' : 'ROLLBACK'} PREPARED ${quoteLiteral(gid)}`, database)
          ;(outcome === 'commit' ? done.committed : done.rolledBack).push(gid)
          this.log.warn({ gid, node: primary.name, outcome }, 'finished a cross-shard transaction left prepared')
        } catch (err) {
          // No such prepared transaction: another proxy finished it first.
          if ((err as { code?: string }).code === SqlState.UNDEFINED_OBJECT) continue
          done.waiting.push(gid)
          this.warnOnce(`finish:${gid}`, { gid, node: primary.name, err: (err as Error).message }, 'could not finish a prepared cross-shard transaction')
        }
      }
    }
    this.metrics?.resolvedRound(done.committed.length, done.rolledBack.length, done.waiting.length)
    return done
  }

  /** Two-phase commit needs max_prepared_transactions above 0 on every primary: said once per node, at start-up. */
  private async checkCanPrepare(primary: NodeState): Promise<void> {
    try {
      const [row] = await this.query<{ n: number }>(primary, "SELECT pg_catalog.current_setting('max_prepared_transactions')::int AS n")
      if ((row?.n ?? 0) > 0) this.canPrepare.add(primary.name)
      else this.warnOnce(`prepare:${primary.name}`, { node: primary.name }, 'max_prepared_transactions is 0 on this primary: every COMMIT of a transaction across shards that involves it will fail and roll back; set it above 0 and restart the server')
    } catch (err) {
      this.warnOnce(`prepare?:${primary.name}`, { node: primary.name, err: (err as Error).message }, 'could not read max_prepared_transactions')
    }
  }

  /** What the deciding shard did with the transaction. */
  private async outcomeOf(gid: string): Promise<Outcome> {
    const id = parseTwoPhaseId(gid)
    const deciding = id && this.topology.shards.find((s) => s.name === id.decidingShard)
    const primary = deciding && this.topology.primaryOf(deciding.index)
    if (!id || !deciding) {
      this.warnOnce(`unknown:${gid}`, { gid }, 'a prepared cross-shard transaction names a shard not in the map: finish it by hand (COMMIT PREPARED or ROLLBACK PREPARED)')
      return 'wait'
    }
    if (!primary?.up) return 'wait'
    try {
      const [row] = await this.query<{ status: string | null }>(primary, `SELECT pg_catalog.txid_status(${id.xid})::text AS status`)
      if (row?.status === 'committed') return 'commit'
      if (row?.status === 'aborted') return 'rollback'
      if (row?.status == null) this.warnOnce(`old:${gid}`, { gid }, 'the deciding shard no longer knows this transaction id: finish it by hand')
      return 'wait'
    } catch (err) {
      // "transaction ID … is in the future": never assigned on the deciding shard's current primary, so its
      // transaction was lost with the old one.
      if ((err as { code?: string }).code === SqlState.INVALID_PARAMETER_VALUE) return 'rollback'
      this.warnOnce(`ask:${gid}`, { gid, node: primary.name, err: (err as Error).message }, 'could not learn the outcome of a cross-shard transaction')
      return 'wait'
    }
  }

  private query<Row extends Record<string, unknown>>(node: NodeState, sql: string, database?: string): Promise<Row[]> {
    return queryOnce<Row>({ host: node.host, port: node.port }, controlAccess(this.config), sql, this.config.health.timeout * 5, database)
  }

  private warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.warned.has(key)) return
    this.warned.add(key)
    this.log.warn(fields, message)
  }
}
