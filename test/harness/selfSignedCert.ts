import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { runCommand } from './runCommand.js'

/**
 * A self-signed certificate (openssl) naming `altName` (default the loopback address, so verify-full to
 * 127.0.0.1 accepts it), in a temp dir removed when the test ends. Being self-signed, it is its own CA.
 */
export async function selfSignedCert(t: Test, altName = 'IP:127.0.0.1'): Promise<{ cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pgshard-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cert = join(dir, 'server.crt')
  const key = join(dir, 'server.key')
  const r = await runCommand('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${altName.replace(/^\w+:/, '')}`, '-addext', `subjectAltName=${altName}`])
  if (r.code !== 0) throw new Error(r.stderr)
  return { cert, key }
}
