import { nodeAction } from './NodeAction.js'

export const admit = nodeAction('admit', 'ADMIT <node>', 're-admit a fenced node (after pg_rewind or a fresh base backup)')
