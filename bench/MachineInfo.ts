import { spawnSync } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'

/** Output of a `--version` style command (stdout or stderr, first line); 'not installed' when it cannot run. */
function version(command: string, args: string[] = ['--version']): string {
  const r = spawnSync(command, args, { encoding: 'utf8' })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0]
  return r.error ? 'not installed' : out
}

/** What a result depends on besides the code: the machine, its load when the run began, the programs' versions. */
export function machineInfo(): string[] {
  return [
    `CPU: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}, RAM ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `Node ${process.version}; ${version('pgbench')}; ${version('/usr/lib/postgresql/15/bin/postgres')}`,
    `${version('/usr/sbin/pgbouncer')}; ${version('/usr/sbin/pgpool')}`,
  ]
}
