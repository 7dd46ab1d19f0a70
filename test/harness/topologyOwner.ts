// A process that starts a small topology, announces its base dir on stdout and then waits to be killed:
// local-topology.test.ts kills it to prove nothing outlives its owner.
import { LocalTopology } from '../../src/topology/LocalTopology.js'

const topo = await LocalTopology.start({ shards: 1, replicas: 0, databases: [] })
process.stdout.write(`${JSON.stringify({ baseDir: topo.baseDir, dataDir: topo.nodes[0].dataDir })}\n`)
setInterval(() => {}, 60_000)
