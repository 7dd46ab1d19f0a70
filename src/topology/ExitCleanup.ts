type SyncCleanup = () => void

const pending = new Set<SyncCleanup>()
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

function runAll(): void {
  for (const cleanup of pending) {
    try {
      cleanup()
    } catch {
      // Best effort while exiting: the orphan reaper is the second line.
    }
  }
  pending.clear()
}

// Runs first (prepended) and then steps aside: with no other listener the signal is raised again and kills us as
// if we had never listened; otherwise the others, called right after us in the same emit, decide. A listener that
// defers when it is not alone (signal-exit, used by tap) then finds itself alone and exits as it should.
function onSignal(signal: NodeJS.Signals): void {
  runAll()
  process.removeListener(signal, onSignal)
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

/**
 * Registers a synchronous clean-up to run if the process exits, or dies of SIGINT/SIGTERM/SIGHUP, before it was
 * unregistered. Returns the unregister function.
 */
export function cleanUpOnExit(cleanup: SyncCleanup): () => void {
  if (!process.listeners('exit').includes(runAll)) process.on('exit', runAll)
  for (const signal of SIGNALS) {
    if (!process.listeners(signal).includes(onSignal)) process.prependListener(signal, onSignal)
  }
  pending.add(cleanup)
  return () => pending.delete(cleanup)
}
