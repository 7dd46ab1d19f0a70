/**
 * Holds clients between transactions while the shard map changes under them (RESHARD): a client held here
 * has not routed its next statement yet, so it routes by the new map once the gate opens. Clients inside a
 * transaction pass, so that their transaction can end.
 */
export class RoutingGate {
  private opened: Promise<void> | null = null
  private release: (() => void) | null = null

  /** What a client between transactions waits for; null while the gate is open (the usual case). */
  get closed(): Promise<void> | null {
    return this.opened
  }

  close(): void {
    if (this.opened) return
    this.opened = new Promise((resolve) => {
      this.release = resolve
    })
  }

  open(): void {
    this.release?.()
    this.opened = null
    this.release = null
  }
}
