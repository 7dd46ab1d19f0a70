import { parseArgs } from 'node:util'
import { loadConfig } from '../config/ConfigLoader.js'
import { ProxyApp } from '../proxy/ProxyApp.js'
import { waitForSignal } from './Signals.js'

/**
 * `pgshard start -c FILE`: the proxy for a real topology. SIGHUP reloads the file; SIGTERM and SIGINT stop
 * accepting clients, let transactions finish (up to shutdown_timeout) and exit 0.
 */
export async function startCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } })
  if (!values.config) {
    process.stderr.write('pgshard start: the shard map is required: pgshard start -c FILE\n')
    return 2
  }
  const config = await loadConfig(values.config)
  const app = await ProxyApp.start(config, { configFile: values.config })
  const signal = await waitForSignal(['SIGINT', 'SIGTERM'], {
    onHup: () => {
      app.reload().catch((err) => app.log.error({ err: err instanceof Error ? err.message : String(err) }, 'reload failed'))
    },
  })
  app.log.info({ signal }, 'shutting down')
  await app.stop()
  app.log.info('stopped')
  return 0
}
