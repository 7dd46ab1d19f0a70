import type { Test } from 'tap'
import { runCommand } from './runCommand.js'

/**
 * Runs a client program written in another language (a psycopg script, a JDBC program) that prints one JSON line
 * per check, `{"check": …, "ok": …, "detail": …}`, and asserts that it exited cleanly and that every expected
 * check ran and passed.
 */
export async function assertDriverChecks(t: Test, command: string, args: string[], expected: string[], timeoutMs: number): Promise<void> {
  const r = await runCommand(command, args, { timeoutMs })
  const results = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { check: string; ok: boolean; detail: string })
  t.equal(r.code, 0, `${command} exited cleanly ${r.stderr}`)
  for (const name of expected) {
    const got = results.find((x) => x.check === name)
    t.ok(got?.ok, `${name}${got ? ` (${got.detail})` : ': did not run'}`)
  }
}
