type SyncCleanup = () => void

const pending = new Set<SyncCleanup>()
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']

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

// A topology lives and dies with its process, and whoever handles SIGINT/SIGTERM means to exit, so this cleans
// up first (prepended) and then steps aside: with no other listener the signal is raised again and kills us as if
// we had never listened; otherwise the others, called right after us in the same emit, finish the job. A listener
// that defers while it is not alone (signal-exit, loaded by tap) then finds itself alone and exits as it should.
// SIGHUP is left alone: daemons, `pgshard dev` included, reload on it; a hang-up that kills us is the reaper's.
function onSignal(signal: NodeJS.Signals): void {
  runAll()
  process.removeListener(signal, onSignal)
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

/**
 * Registers a synchronous clean-up to run if the process exits, or is told to by SIGINT/SIGTERM, before it was
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
