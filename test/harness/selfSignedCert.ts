import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { runCommand } from './runCommand.js'

/** A self-signed certificate for 127.0.0.1 (openssl), in a temp dir removed when the test ends. */
export async function selfSignedCert(t: Test): Promise<{ cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cert = join(dir, 'server.crt')
  const key = join(dir, 'server.key')
  const r = await runCommand('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1'])
  if (r.code !== 0) throw new Error(r.stderr)
  return { cert, key }
}
