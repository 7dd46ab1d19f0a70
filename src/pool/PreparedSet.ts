/**
 * The proxy's statement names prepared on one server connection, least recently used first, so that the
 * oldest can be closed when the connection holds too many.
 */
export class PreparedSet {
  // A Map iterates in insertion order: delete + set moves a name to the most recent end.
  private readonly names = new Map<string, true>()
  /** Names still prepared on the server under a plan it refuses to run: closed before they are prepared again. */
  private readonly stale = new Set<string>()

  constructor(readonly capacity: number) {}

  has(name: string): boolean {
    return this.names.has(name)
  }

  touch(name: string): void {
    if (this.names.delete(name)) this.names.set(name, true)
  }

  add(name: string): void {
    this.names.delete(name)
    this.names.set(name, true)
  }

  delete(name: string): void {
    this.names.delete(name)
  }

  clear(): void {
    this.names.clear()
    this.stale.clear()
  }

  /** The server's statement under `name` must be closed and prepared again before its next use. */
  markStale(name: string): void {
    if (this.names.delete(name)) this.stale.add(name)
  }

  /** Whether `name` was stale (it is not any more: the caller closes it). */
  takeStale(name: string): boolean {
    return this.stale.delete(name)
  }

  get size(): number {
    return this.names.size
  }

  /** Names to close so that one more fits, oldest first; `keep` (the one about to be used) is never chosen. */
  evictions(keep: string): string[] {
    const out: string[] = []
    let excess = this.names.size + 1 - this.capacity
    for (const name of this.names.keys()) {
      if (excess <= 0) break
      if (name === keep) continue
      out.push(name)
      excess--
    }
    return out
  }
}
