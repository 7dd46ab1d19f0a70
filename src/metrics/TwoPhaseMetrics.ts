import { Counter, Gauge, type Registry } from 'prom-client'

export type CrossShardCommitOutcome = 'committed' | 'rolled_back' | 'unknown'

/** Two-phase commit: how cross-shard COMMITs ended, what the resolver found left prepared, deadlocks broken. */
export class TwoPhaseMetrics {
  private readonly commits: Counter<'outcome'>
  private readonly resolved: Counter<'action'>
  private readonly waiting: Gauge
  private readonly deadlocks: Counter

  constructor(registry: Registry) {
    const registers = [registry]
    this.commits = new Counter({
      name: 'pgshard_cross_shard_commits_total',
      help: 'COMMITs of read-write transactions that held several shards (with two-phase commit when they wrote several), by outcome: committed, rolled_back, unknown (the deciding shard was lost during its COMMIT)',
      labelNames: ['outcome'],
      registers,
    })
    this.resolved = new Counter({ name: 'pgshard_prepared_resolved_total', help: 'Prepared parts of cross-shard transactions the resolver finished, by action (commit or rollback)', labelNames: ['action'], registers })
    this.waiting = new Gauge({ name: 'pgshard_prepared_waiting', help: 'Prepared parts of cross-shard transactions the resolver found and could not finish yet, at its last look', registers })
    this.deadlocks = new Counter({ name: 'pgshard_cross_shard_deadlocks_total', help: 'Deadlocks between transactions across shards that pgshard broke (no server sees them)', registers })
    // Every series exists from the start: an alert on them works before the first cross-shard commit.
    for (const outcome of ['committed', 'rolled_back', 'unknown']) this.commits.inc({ outcome }, 0)
    for (const action of ['commit', 'rollback']) this.resolved.inc({ action }, 0)
  }

  commit(outcome: CrossShardCommitOutcome): void {
    this.commits.inc({ outcome })
  }

  deadlockBroken(): void {
    this.deadlocks.inc()
  }

  resolvedRound(committed: number, rolledBack: number, waiting: number): void {
    this.resolved.inc({ action: 'commit' }, committed)
    this.resolved.inc({ action: 'rollback' }, rolledBack)
    this.waiting.set(waiting)
  }
}
