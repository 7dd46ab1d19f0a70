import { text, type AdminCommand } from '../AdminCommand.js'

export const showVersion: AdminCommand = {
  words: ['SHOW', 'VERSION'],
  argument: 'none',
  usage: 'SHOW VERSION',
  description: 'the pgshard version',
  columns: [text('version')],
  run: (ctx) => ({ rows: [[`pgshard ${ctx.version}`]], tag: 'SHOW' }),
}
