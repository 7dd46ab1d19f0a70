import { int8, text, type AdminCommand } from '../AdminCommand.js'

/**
 * Re-reads the config file and, when its shard map moves keys, moves the rows to their new shards while the
 * clients are held, then applies the file: one row per (database, table, from, to) that moved rows.
 */
export const reshard: AdminCommand = {
  words: ['RESHARD'],
  argument: 'none',
  usage: 'RESHARD',
  description: 're-read the config file, move the rows whose shard changes (clients held meanwhile) and apply it',
  columns: [text('database'), text('table'), text('from_shard'), text('to_shard'), int8('rows')],
  async run(ctx) {
    const { summary, moved } = await ctx.reshard()
    return { tag: 'RESHARD', rows: moved.map((m) => [m.database, m.table, m.from, m.to, m.rows]), notices: [summary] }
  },
}
