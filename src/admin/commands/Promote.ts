import { nodeAction } from './NodeAction.js'

export const promote = nodeAction('promote', 'PROMOTE <node>', 'planned switchover: make this replica its shard\u2019s primary once it has caught up')
