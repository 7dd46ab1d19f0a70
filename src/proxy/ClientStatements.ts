import type { StatementPlan } from '../router/StatementPlan.js'

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

/** One client's prepared statements by the client's names; '' is its unnamed statement. */
export class ClientStatements {
  private readonly byName = new Map<string, ClientStatement>()

  constructor(private readonly limit: number) {}

  get(name: string): ClientStatement | undefined {
    return this.byName.get(name)
  }

  has(name: string): boolean {
    return this.byName.has(name)
  }

  /** False when the client already holds `limit` named statements. */
  set(name: string, stmt: ClientStatement): boolean {
    if (name !== '' && !this.byName.has(name) && this.byName.size >= this.limit) return false
    this.byName.set(name, stmt)
    return true
  }

  delete(name: string): void {
    this.byName.delete(name)
  }

  clear(): void {
    this.byName.clear()
  }

  names(): string[] {
    return [...this.byName.keys()]
  }

  get size(): number {
    return this.byName.size
  }
}
