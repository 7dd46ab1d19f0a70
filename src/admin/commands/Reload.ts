import type { AdminCommand } from '../AdminCommand.js'

/** Re-reads the config file; a refused file answers its problems with SQLSTATE F0000 and changes nothing. */
export const reload: AdminCommand = {
  words: ['RELOAD'],
  argument: 'none',
  usage: 'RELOAD',
  description: 're-read the config file and apply what changed',
  columns: [],
  async run(ctx) {
    return { tag: 'RELOAD', notices: [await ctx.reload()] }
  },
}
