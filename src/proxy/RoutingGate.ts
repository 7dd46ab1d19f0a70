/**
 * Holds clients between transactions while the shard map or a shard's primary changes under them (RESHARD, a
 * planned switchover): a client held here has not routed its next statement yet, so it routes by what holds
 * once the gate opens. Clients inside a transaction pass, so that their transaction can end. Holds nest: the
 * gate opens when the last holder lets go.
 */
export class RoutingGate {
  private opened: Promise<void> | null = null
  private release: (() => void) | null = null
  private holders = 0

  /** What a client between transactions waits for; null while the gate is open (the usual case). */
  get closed(): Promise<void> | null {
    return this.opened
  }

  close(): void {
    this.holders++
    if (this.opened) return
    this.opened = new Promise((resolve) => {
      this.release = resolve
    })
  }

  open(): void {
    if (this.holders > 0) this.holders--
    if (this.holders > 0) return
    this.release?.()
    this.opened = null
    this.release = null
  }
}
