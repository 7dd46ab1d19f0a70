/** Resolves with the first of `signals` the process receives; SIGHUP (if onHup is given) calls it instead. */
export function waitForSignal(signals: NodeJS.Signals[], opts: { onHup?: () => void } = {}): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handlers = new Map<NodeJS.Signals, () => void>()
    const stop = (sig: NodeJS.Signals) => {
      for (const [s, h] of handlers) process.off(s, h)
      resolve(sig)
    }
    for (const s of signals) {
      const h = () => stop(s)
      handlers.set(s, h)
      process.on(s, h)
    }
    if (opts.onHup) {
      const h = opts.onHup
      handlers.set('SIGHUP', h)
      process.on('SIGHUP', h)
    }
  })
}
