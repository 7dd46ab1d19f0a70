import type { StatementPlan } from '../router/StatementPlan.js'

/**
 * What a transaction consists of so far, apart from its reads: its BEGIN, SET TRANSACTION, SET LOCAL and the
 * savepoints still open, in order. A READ ONLY transaction that goes on to another shard opens there with
 * these statements, so that the shard joins the same kind of transaction at the same savepoint depth.
 */
export class TransactionOpening {
  private entries: { sql: string; savepoint?: string }[] = []

  /** A transaction began with this BEGIN (and the statements that followed it before it reached a server). */
  start(begin: string, follow: readonly { sql: string; plan: StatementPlan }[]): void {
    this.entries = [{ sql: begin }]
    for (const f of follow) this.record(f.plan, f.sql)
  }

  get active(): boolean {
    return this.entries.length > 0
  }

  /** A savepoint is open: an error may be rolled back to it, and the transaction go on. */
  get inSavepoint(): boolean {
    return this.savepointDepth > 0
  }

  /** How many savepoints are open up to the innermost one named so, itself included; 0 when none is. */
  depthOf(name: string | undefined): number {
    const at = this.find(name)
    return at < 0 ? 0 : this.entries.slice(0, at + 1).filter((e) => e.savepoint !== undefined).length
  }

  /** How many savepoints are open. */
  get savepointDepth(): number {
    return this.entries.filter((e) => e.savepoint !== undefined).length
  }

  /** A SET TRANSACTION, SET LOCAL, SAVEPOINT, RELEASE or ROLLBACK TO the transaction ran. */
  record(plan: StatementPlan, sql: string): void {
    if (!this.active) return
    if (plan.tx === 'savepoint') {
      this.entries.push({ sql, savepoint: plan.savepoint ?? '' })
      return
    }
    if (plan.tx === 'release' || plan.tx === 'rollback_to') {
      const at = this.find(plan.savepoint)
      if (at < 0) return
      // RELEASE keeps what ran since the savepoint (its SET LOCAL) and ends it and the ones inside it;
      // ROLLBACK TO undoes what ran since and keeps the savepoint itself.
      if (plan.tx === 'rollback_to') this.entries.length = at + 1
      else this.entries = this.entries.filter((e, i) => i < at || e.savepoint === undefined)
      return
    }
    this.entries.push({ sql })
  }

  /** The statements as one query (a newline first ends a trailing `--` comment). */
  sql(): string {
    return this.entries.map((e) => e.sql).join('\n;')
  }

  end(): void {
    this.entries = []
  }

  /** The innermost open savepoint of this name, as Postgres picks it; -1 when there is none. */
  private find(name: string | undefined): number {
    for (let i = this.entries.length - 1; i > 0; i--) if (this.entries[i].savepoint === name) return i
    return -1
  }
}
