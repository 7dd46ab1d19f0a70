/**
 * A round of work run every `interval()` ms (read again each time, so a reload takes effect), one round at a
 * time: a round asked for while one runs shares it. The timer never keeps the process alive; a failed round goes
 * to `onError` and the next one comes as planned.
 */
export class PeriodicTask<T> {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<T> | null = null
  /** Moved on by stop(): a round that started before schedules nothing after it. */
  private generation = 0

  constructor(
    private readonly round: () => Promise<T>,
    private readonly interval: () => number,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Rounds every interval from now on; with `now`, the first one at once. */
  start(now = false): void {
    this.stop()
    const generation = this.generation
    const schedule = () => {
      if (generation !== this.generation) return
      this.timer = setTimeout(round, this.interval())
      this.timer.unref()
    }
    const round = () => {
      this.runNow()
        .catch((err: Error) => this.onError(err))
        .finally(schedule)
    }
    if (now) round()
    else schedule()
  }

  stop(): void {
    this.generation++
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  /** A round now (or the one running). */
  runNow(): Promise<T> {
    this.running ??= this.round().finally(() => (this.running = null))
    return this.running
  }
}
