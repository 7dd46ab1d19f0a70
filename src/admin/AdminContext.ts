import type { Logger } from '../log/Logger.js'
import type { ClientTotals } from '../metrics/ClientTotals.js'
import type { ProxyServer } from '../proxy/ProxyServer.js'
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
  /** null while no failover manager runs. */
  failover(): NodeActions | null
}
