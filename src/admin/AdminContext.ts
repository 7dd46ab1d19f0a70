import type { Logger } from '../log/Logger.js'
import type { ClientTotals } from '../metrics/ClientTotals.js'
import type { ProxyServer } from '../proxy/ProxyServer.js'
import type { MovedRows } from '../reshard/RowMover.js'
import type { AdminCommand } from './AdminCommand.js'

/** The node actions of the failover manager, as the console calls them: the resolved text is shown to the DBA. */
export interface NodeActions {
  promote(nodeName: string): Promise<string> | string
  fence(nodeName: string): Promise<string> | string
  admit(nodeName: string): Promise<string> | string
}

/** What console commands read and control. */
export interface AdminContext {
  readonly proxy: ProxyServer
  readonly totals: ClientTotals
  readonly log: Logger
  readonly version: string
  readonly commands: readonly AdminCommand[]
  /** Reads the config file again and applies it; resolves with what changed, rejects with why nothing did. */
  reload(): Promise<string>
  /** RESHARD: moves the rows whose shard the file's map changes, then applies the file. */
  reshard(): Promise<{ summary: string; moved: MovedRows[] }>
  /** null while no failover manager runs. */
  failover(): NodeActions | null
}
