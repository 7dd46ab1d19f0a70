import { Counter, Gauge, type Registry } from 'prom-client'

/** Reload outcomes and the shard map version in use. */
export class ConfigMetrics {
  private readonly reloads: Counter<'result'>
  private readonly lastReload: Gauge
  private readonly moved: Counter<'table'>
  private mapVersion: string

  constructor(registry: Registry, mapVersion: string) {
    const registers = [registry]
    this.mapVersion = mapVersion
    this.reloads = new Counter({ name: 'pgshard_config_reloads_total', help: 'Config reloads by result (ok: applied; failed: refused, nothing changed)', labelNames: ['result'], registers })
    // Both series exist from the start, so that a rate() or an alert on failures works before the first reload.
    this.reloads.inc({ result: 'ok' }, 0)
    this.reloads.inc({ result: 'failed' }, 0)
    this.lastReload = new Gauge({ name: 'pgshard_config_last_reload_success_timestamp_seconds', help: 'When the config was last loaded successfully (start or reload), Unix time', registers })
    this.lastReload.setToCurrentTime()
    this.moved = new Counter({ name: 'pgshard_reshard_rows_moved_total', help: 'Rows RESHARD moved to another shard (committed), by table', labelNames: ['table'], registers })
    const self = this
    new Gauge({
      name: 'pgshard_config_info',
      help: 'Always 1; the label map_version is the version of the shard map in use',
      labelNames: ['map_version'],
      registers,
      collect() {
        this.reset()
        this.set({ map_version: self.mapVersion }, 1)
      },
    })
  }

  reloaded(mapVersion: string): void {
    this.mapVersion = mapVersion
    this.reloads.inc({ result: 'ok' })
    this.lastReload.setToCurrentTime()
  }

  rowsMoved(table: string, rows: number): void {
    this.moved.inc({ table }, rows)
  }

  reloadFailed(): void {
    this.reloads.inc({ result: 'failed' })
  }
}
