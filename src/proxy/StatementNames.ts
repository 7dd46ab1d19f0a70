/**
 * The proxy's own names for prepared statements, one per distinct (text, parameter types): clients that
 * prepare the same statement share one server-side statement whatever they call it, and no client can see or
 * collide with another client's names. Bounded: a forgotten entry only means a fresh name next time.
 */
export class StatementNames {
  private readonly names = new Map<string, string>()
  private counter = 0

  constructor(private readonly capacity = 100_000) {}

  nameFor(text: string, paramTypes: readonly number[]): string {
    const key = paramTypes.length ? `${paramTypes.join(',')}\u0000${text}` : text
    let name = this.names.get(key)
    if (name !== undefined) return name
    name = `pgshard_${(++this.counter).toString(36)}`
    if (this.names.size >= this.capacity) this.names.delete(this.names.keys().next().value!)
    this.names.set(key, name)
    return name
  }

  /**
   * DDL went through the proxy: a statement prepared from now on gets a new name, so it is planned against the
   * new tables, as a server plans a new statement. Those prepared before keep theirs, and meet the server's
   * "cached plan must not change result type" as they would on their own session.
   */
  forget(): void {
    this.names.clear()
  }
}
