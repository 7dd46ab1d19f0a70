import type { SessionEffect, StatementPlan } from '../router/StatementPlan.js'
import { replaceIdentifierAt } from './SqlNameSplice.js'
import type { StatementNames } from './StatementNames.js'

/** A statement a client prepared (protocol-level Parse), under the client's own name. */
export interface ClientStatement {
  text: string
  paramTypes: number[]
  /** Parse body after the name (text + types): re-preparing it elsewhere copies these bytes. */
  tail: Buffer
  /** The proxy's name for it on servers ('' for the unnamed statement). */
  serverName: string
  plan: StatementPlan | null
  /** Normalizer values, when the analyzed text had literals pulled out. */
  literals: string[]
  sources: string[]
  firstParam: number
}

/** A statement a client made with SQL PREPARE: pgshard's name for it, the PREPARE that makes it, and its query's plan. */
export interface SqlStatement {
  serverName: string
  prepareSql: string
  plan: StatementPlan | null
}

export type SqlPreparedEffect = Extract<SessionEffect, { kind: 'prepare' | 'execute' | 'deallocate' }>

export function isSqlPrepared(e: SessionEffect): e is SqlPreparedEffect {
  return e.kind === 'prepare' || e.kind === 'execute' || e.kind === 'deallocate'
}

/** Keeps SQL PREPARE names apart from protocol-level ones for the same text. */
const SQL_PREPARE_KEY = [-1]

/**
 * The server-side form of `PREPARE name AS …` (name at `nameLocation`): under pgshard's name for its text, shared
 * by every client that prepares the same statement whatever it calls it.
 */
export function sqlStatementFor(sql: string, nameLocation: number, plan: StatementPlan | null, names: StatementNames): SqlStatement {
  const serverName = names.nameFor(replaceIdentifierAt(sql, nameLocation, '$name'), SQL_PREPARE_KEY)
  return { serverName, prepareSql: replaceIdentifierAt(sql, nameLocation, serverName), plan }
}

/**
 * One client's prepared statements by the client's names: those of protocol-level Parse ('' is the unnamed
 * one) and those of SQL PREPARE. As in Postgres, both kinds share one namespace and one limit.
 */
export class ClientStatements {
  private readonly byName = new Map<string, ClientStatement>()
  private readonly bySqlName = new Map<string, SqlStatement>()

  constructor(private readonly limit: number) {}

  /** A protocol-level statement. */
  get(name: string): ClientStatement | undefined {
    return this.byName.get(name)
  }

  /** A statement made by SQL PREPARE. */
  getSql(name: string): SqlStatement | undefined {
    return this.bySqlName.get(name)
  }

  /** Either kind holds this name. */
  has(name: string): boolean {
    return this.byName.has(name) || this.bySqlName.has(name)
  }

  /** The client holds `limit` named statements: a new name is refused. */
  get full(): boolean {
    return this.byName.size + this.bySqlName.size >= this.limit
  }

  /** False when the client is full and `name` is a new named statement. */
  set(name: string, stmt: ClientStatement): boolean {
    if (name !== '' && !this.byName.has(name) && this.full) return false
    this.byName.set(name, stmt)
    return true
  }

  /**
   * Records a SQL PREPARE that the server confirmed. The caller checked `full` before sending it; only
   * PREPAREs pipelined behind that check can go past the limit.
   */
  setSql(name: string, stmt: SqlStatement): void {
    this.bySqlName.set(name, stmt)
  }

  /** Forgets the name, of either kind (Close, DEALLOCATE); false when it was not there. */
  delete(name: string): boolean {
    return this.bySqlName.delete(name) || this.byName.delete(name)
  }

  /** DEALLOCATE ALL: every named statement goes; the unnamed one stays, as in Postgres. */
  deallocateAll(): void {
    this.bySqlName.clear()
    for (const name of this.byName.keys()) if (name !== '') this.byName.delete(name)
  }

  /** DISCARD ALL. */
  clear(): void {
    this.byName.clear()
    this.bySqlName.clear()
  }
}
