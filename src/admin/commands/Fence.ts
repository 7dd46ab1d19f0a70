import { nodeAction } from './NodeAction.js'

export const fence = nodeAction('fence', 'FENCE <node>', 'never route to this node again until ADMIT')
