import { checkCommand } from './CheckCommand.js'
import { devCommand } from './DevCommand.js'
import { planCommand } from './PlanCommand.js'
import { routeCommand } from './RouteCommand.js'
import { startCommand } from './StartCommand.js'

const USAGE = `pgshard — a sharding, replicating, pooling PostgreSQL proxy

usage:
  pgshard dev [--port N] [--metrics-port N] [--shards N] [--replicas N]
                                 start a local demo: real Postgres shards and the proxy in front
  pgshard start -c FILE          run the proxy for the shard map in FILE
  pgshard check -c FILE          validate FILE; print the topology and the ring
  pgshard route -c FILE SQL [PARAM…]
                                 which shard and role SQL goes to, and why
  pgshard plan OLD NEW           what replacing shard map OLD by NEW moves (exit 3: rows must be moved)
`

/** Runs a command line; resolves with the exit code. */
export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'dev':
        return await devCommand(rest)
      case 'start':
        return await startCommand(rest)
      case 'check':
        return await checkCommand(rest)
      case 'route':
        return await routeCommand(rest)
      case 'plan':
        return await planCommand(rest)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE)
        return command === undefined ? 2 : 0
      default:
        process.stderr.write(`pgshard: unknown command "${command}"\n\n${USAGE}`)
        return 2
    }
  } catch (err) {
    process.stderr.write(`pgshard ${command}: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
}
