import { spawn } from 'node:child_process'
import { signalQuietly } from './ProcessScan.js'

// Polls our pid; once we are gone without having removed the base dir (SIGKILL, OOM), it wakes and stops every
// process working in that dir (SIGQUIT is Postgres' immediate shutdown, SIGKILL for stragglers) and removes it.
// The paths come in through the environment so that the reaper's own command line never matches them.
const SCRIPT = `
while kill -0 "$PGSHARD_OWNER" 2>/dev/null && [ -d "$PGSHARD_DIR" ]; do sleep 0.5; done
[ -d "$PGSHARD_DIR" ] || exit 0
ours() {
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/cwd" 2>/dev/null)" in "$PGSHARD_DIR"|"$PGSHARD_DIR"/*) echo "\${p#/proc/}";; esac
  done
}
for sig in CONT QUIT; do for pid in $(ours); do kill -$sig "$pid" 2>/dev/null; done; done
i=0
while [ -n "$(ours)" ] && [ $i -lt 20 ]; do sleep 0.25; i=$((i + 1)); done
for pid in $(ours); do kill -KILL "$pid" 2>/dev/null; done
rm -rf "$PGSHARD_DIR"
`

/** A detached shell that cleans `dir` up if this process dies without doing it. */
export class OrphanReaper {
  private constructor(private readonly pid: number | undefined) {}

  static start(dir: string): OrphanReaper {
    const child = spawn('sh', ['-c', SCRIPT], {
      detached: true,
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGSHARD_OWNER: String(process.pid), PGSHARD_DIR: dir },
    })
    child.on('error', () => {})
    child.unref()
    return new OrphanReaper(child.pid)
  }

  /** After a normal stop: ends the shell and its sleep (it leads its own process group). */
  stop(): void {
    if (this.pid !== undefined) signalQuietly(-this.pid, 'SIGKILL')
  }
}
