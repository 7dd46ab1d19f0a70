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
  const reload = (app: ProxyApp) =>
    app.reload().catch((err) => app.log.error({ err: err instanceof Error ? err.message : String(err) }, 'reload failed'))
  // Listening for signals before start-up: a SIGHUP then (its default kills the process) reloads once the proxy
  // is up, a SIGTERM stops it as soon as it is.
  let started: ProxyApp | undefined
  let reloadWhenUp = false
  const stopSignal = waitForSignal(['SIGINT', 'SIGTERM'], {
    onHup: () => {
      if (started) reload(started)
      else reloadWhenUp = true
    },
  })
  const app = await ProxyApp.start(config, { configFile: values.config })
  started = app
  if (reloadWhenUp) reload(app)
  const signal = await stopSignal
  app.log.info({ signal }, 'shutting down')
  await app.stop()
  app.log.info('stopped')
  return 0
}
