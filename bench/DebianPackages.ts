import { spawnSync } from 'node:child_process'
import { existsSync, unlinkSync, writeFileSync } from 'node:fs'

export interface DebianPackage {
  name: string
  /** The binary the bench runs: apt-get is used only when it is absent. */
  binary: string
}

const POLICY_RC = '/usr/sbin/policy-rc.d'

/**
 * Installs the packages whose binaries are missing, without starting their system services: a policy-rc.d that
 * exits 101 makes invoke-rc.d skip every start while apt runs (one already in place is left as it is).
 */
export function ensureDebianPackages(packages: DebianPackage[], log: (line: string) => void): void {
  const missing = packages.filter((p) => !existsSync(p.binary))
  if (missing.length === 0) return
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.map((p) => p.binary).join(', ')}: install ${missing.map((p) => p.name).join(' ')} (needs root)`)
  }
  log(`installing ${missing.map((p) => p.name).join(', ')} from Debian (services kept stopped)`)
  const madePolicy = !existsSync(POLICY_RC)
  if (madePolicy) writeFileSync(POLICY_RC, '#!/bin/sh\nexit 101\n', { mode: 0o755 })
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const apt = (args: string[]) => {
      const r = spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 600_000 })
      if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-1500)}`)
    }
    apt(['update', '-qq'])
    apt(['install', '-y', '-qq', '--no-install-recommends', ...missing.map((p) => p.name)])
  } finally {
    if (madePolicy) unlinkSync(POLICY_RC)
  }
  const still = missing.filter((p) => !existsSync(p.binary))
  if (still.length > 0) throw new Error(`installed, but ${still.map((p) => p.binary).join(', ')} still missing`)
}
