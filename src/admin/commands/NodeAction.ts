import { PgError } from '../../protocol/PgError.js'
import { nameArgument } from '../AdminArgument.js'
import type { AdminCommand } from '../AdminCommand.js'
import type { NodeActions } from '../AdminContext.js'

/** 55000: the proxy is not in a state where the action can run (no failover manager, node not eligible …). */
const NOT_IN_PREREQUISITE_STATE = '55000'

/** PROMOTE, FENCE and ADMIT: a node of the topology, handed to the failover manager. */
export function nodeAction(action: keyof NodeActions, usage: string, description: string): AdminCommand {
  const word = action.toUpperCase()
  return {
    words: [word],
    argument: 'required',
    usage,
    description,
    columns: [],
    async run(ctx, arg) {
      const name = nameArgument(arg)
      const nodes = ctx.proxy.topology.nodes()
      if (!nodes.some((n) => n.name === name))
        throw new PgError('42704', `no node named "${name}"`, { hint: `Nodes: ${nodes.map((n) => n.name).join(', ')} (SHOW NODES).` })
      const failover = ctx.failover()
      if (!failover)
        throw new PgError(NOT_IN_PREREQUISITE_STATE, `failover is not configured: ${word} needs the failover manager, which this proxy does not run`, {
          hint: 'Health checks and failover start with the proxy when the shard map has nodes to watch.',
        })
      ctx.log.info({ node: name, action }, 'node action from the admin console')
      try {
        return { tag: word, notices: [await failover[action](name)] }
      } catch (err) {
        const code = (err as { code?: unknown }).code
        throw new PgError(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : NOT_IN_PREREQUISITE_STATE, `${word} ${name} failed: ${err instanceof Error ? err.message : String(err)}`)
      }
    },
  }
}
