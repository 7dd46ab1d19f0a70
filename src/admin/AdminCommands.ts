import type { AdminCommand } from './AdminCommand.js'
import { admit } from './commands/Admit.js'
import { fence } from './commands/Fence.js'
import { kill } from './commands/Kill.js'
import { pause } from './commands/Pause.js'
import { promote } from './commands/Promote.js'
import { reconnect } from './commands/Reconnect.js'
import { reload } from './commands/Reload.js'
import { reshard } from './commands/Reshard.js'
import { resume } from './commands/Resume.js'
import { showClients } from './commands/ShowClients.js'
import { showConfig } from './commands/ShowConfig.js'
import { showHelp } from './commands/ShowHelp.js'
import { showNodes } from './commands/ShowNodes.js'
import { showPools } from './commands/ShowPools.js'
import { showRoute } from './commands/ShowRoute.js'
import { showServers } from './commands/ShowServers.js'
import { showShards } from './commands/ShowShards.js'
import { showStats } from './commands/ShowStats.js'
import { showVersion } from './commands/ShowVersion.js'

/** Every console command, in the order SHOW HELP lists them. */
export const ADMIN_COMMANDS: readonly AdminCommand[] = [
  showHelp,
  showPools,
  showServers,
  showClients,
  showStats,
  showShards,
  showNodes,
  showConfig,
  showVersion,
  showRoute,
  reload,
  reshard,
  pause,
  resume,
  reconnect,
  kill,
  promote,
  fence,
  admit,
]
