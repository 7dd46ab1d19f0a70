import { text, type AdminCommand } from '../AdminCommand.js'

export const showHelp: AdminCommand = {
  words: ['SHOW', 'HELP'],
  argument: 'none',
  usage: 'SHOW HELP',
  description: 'this list',
  columns: [text('command'), text('description')],
  run: (ctx) => ({ rows: ctx.commands.map((c) => [c.usage, c.description]), tag: 'SHOW' }),
}
