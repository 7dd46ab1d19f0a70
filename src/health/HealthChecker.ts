import type { Config } from '../config/ConfigSchema.js'
import type { Logger } from '../log/Logger.js'
import { ControlConnection, type ControlAccess } from './ControlConnection.js'
import type { NodeState } from './NodeState.js'
import { PROBE_SQL, probeResult, type ProbeResult, type ProbeRow } from './NodeProbe.js'

export type Transition = 'up' | 'down' | null

export interface CheckOutcome {
  node: NodeState
  /** null when the check failed, or when the server answered but refused the control user. */
  probe: ProbeResult | null
  ok: boolean
  transition: Transition
  /** The control connection was (re-)established by this check. */
  reconnected: boolean
}

/**
 * Answers that prove the server is alive even though the check could not run: wrong control credentials or
 * database (class 28, 3D000, 42501) or a full server (class 53). Counting them as failures would mark a
 * busy or misconfigured primary down and promote over a live one.
 */
export function isAliveAnswer(err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  if (typeof code !== 'string' || code.length !== 5) return false
  return code.startsWith('28') || code.startsWith('53') || code === '3D000' || code === '42501'
}

/**
 * Checks one node every `health.interval`, each check bounded by `health.timeout`, over one kept-open control
 * connection. `health.failures` failures in a row mark the node down, `health.successes` successes bring it
 * back. Data-path errors (`evidence`) count as a failure at once and trigger a check right away.
 */
export class HealthChecker {
  private conn: ControlConnection
  /** The connection a reload replaced while a check was still using it. */
  private retired: ControlConnection | null = null
  private timer: NodeJS.Timeout | null = null
  private running: Promise<CheckOutcome> | null = null
  private evidenceCounted = false
  private stopped = true
  private refusedLogged = false

  constructor(
    readonly node: NodeState,
    private health: Config['health'],
    private control: ControlAccess,
    private readonly log: Logger,
    private readonly onOutcome: (outcome: CheckOutcome) => void,
  ) {
    this.conn = new ControlConnection({ host: node.host, port: node.port }, control)
  }

  start(): void {
    this.stopped = false
    this.schedule(0)
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.conn.close()
    this.retired?.close()
  }

  /** New settings from a reload; new control credentials or TLS mode take a new connection at the next check. */
  reconfigure(health: Config['health'], control: ControlAccess): void {
    this.health = health
    if (JSON.stringify(control) === JSON.stringify(this.control)) return
    this.control = control
    this.refusedLogged = false
    const old = this.conn
    this.conn = new ControlConnection({ host: this.node.host, port: this.node.port }, control)
    // A check in flight finishes on the old connection (closing it would count as a failure); it goes after.
    if (this.running) {
      this.retired?.close()
      this.retired = old
    } else old.close()
  }

  /** Runs a check now (or joins the one in flight). */
  checkNow(): Promise<CheckOutcome> {
    return this.run(false)
  }

  private run(scheduled: boolean): Promise<CheckOutcome> {
    this.running ??= this.check(scheduled).finally(() => {
      this.running = null
      this.retired?.close()
      this.retired = null
      this.schedule(this.health.interval)
    })
    return this.running
  }

  /** A server connection to this node failed on the data path: one failure now, and a check right away. */
  evidence(err: Error): void {
    if (this.stopped) return
    if (this.evidenceCounted) return
    this.evidenceCounted = true
    const transition = this.recordFailure(`data path: ${err.message}`)
    this.emit({ node: this.node, probe: null, ok: false, transition, reconnected: false })
    if (!this.running) {
      if (this.timer) clearTimeout(this.timer)
      void this.checkNow()
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      void this.run(true)
    }, ms)
    this.timer.unref()
  }

  private async check(scheduled: boolean): Promise<CheckOutcome> {
    const conn = this.conn
    const before = conn.connects
    let outcome: CheckOutcome
    try {
      const [row] = await conn.query<ProbeRow>(PROBE_SQL, this.health.timeout)
      const probe = probeResult(row)
      this.node.applyProbe(probe)
      this.refusedLogged = false
      outcome = { node: this.node, probe, ok: true, transition: this.recordSuccess(), reconnected: conn.connects !== before }
    } catch (err) {
      if (isAliveAnswer(err)) {
        if (!this.refusedLogged) {
          this.refusedLogged = true
          this.log.error(
            { node: this.node.name, err: (err as Error).message },
            'the server refused the control connection: it counts as alive, but lag and role are unknown (check control.user/password/database, and server_tls when the server asks for TLS)',
          )
        }
        outcome = { node: this.node, probe: null, ok: true, transition: this.recordSuccess(), reconnected: false }
      } else {
        outcome = { node: this.node, probe: null, ok: false, transition: this.recordFailure((err as Error).message), reconnected: false }
      }
    }
    // Evidence counts once per interval: a burst of failing client connections is one piece of evidence, so a
    // node goes down no sooner than one interval after the first sign, with checks of our own in between.
    if (scheduled) this.evidenceCounted = false
    this.node.lastCheckAt = Date.now()
    if (!this.stopped) this.emit(outcome)
    return outcome
  }

  /** A listener's mistake must not become an unhandled rejection (the process would exit). */
  private emit(outcome: CheckOutcome): void {
    try {
      this.onOutcome(outcome)
    } catch (err) {
      this.log.error({ node: this.node.name, err: (err as Error).message }, 'health check listener failed')
    }
  }

  private recordSuccess(): Transition {
    const n = this.node
    n.failures = 0
    n.successes++
    if (!n.up && n.successes >= this.health.successes) {
      n.up = true
      n.lastError = null
      this.log.info({ node: n.name }, 'node is up')
      return 'up'
    }
    return null
  }

  private recordFailure(message: string): Transition {
    const n = this.node
    n.successes = 0
    n.failures++
    n.lastError = message
    if (n.up && n.failures >= this.health.failures) {
      n.up = false
      this.log.warn({ node: n.name, failures: n.failures, err: message }, 'node is down')
      return 'down'
    }
    return null
  }
}
