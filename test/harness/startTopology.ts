import { existsSync } from 'node:fs'
import type { Test } from 'tap'
import { LocalTopology, type LocalTopologyOptions } from '../../src/topology/LocalTopology.js'
import { processesUnder } from '../../src/topology/ProcessScan.js'

/** What a stopped topology left behind: running pids and/or its directory (empty when clean). */
export function leftoversOf(baseDir: string): string[] {
  const pids = processesUnder(baseDir)
  return [...(pids.length > 0 ? [`processes ${pids.join(', ')}`] : []), ...(existsSync(baseDir) ? [`directory ${baseDir}`] : [])]
}

/**
 * Starts a LocalTopology for one tap test and stops it when the test ends. The teardown fails the test if any
 * process of the topology survived or its directory is still there.
 */
export async function startTopology(t: Test, opts: LocalTopologyOptions): Promise<LocalTopology> {
  const topo = await LocalTopology.start(opts)
  t.teardown(async () => {
    await topo.stop()
    const left = leftoversOf(topo.baseDir)
    if (left.length > 0) throw new Error(`LocalTopology left behind ${left.join(' and ')}`)
  })
  return topo
}
