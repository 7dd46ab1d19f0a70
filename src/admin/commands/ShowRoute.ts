import { describeRoute } from '../../cli/RouteCommand.js'
import type { BoundParam } from '../../router/Route.js'
import { text, type AdminCommand } from '../AdminCommand.js'

/** Where a statement would go, as `pgshard route` says it: outside a transaction, with the live shard map. */
export const showRoute: AdminCommand = {
  words: ['SHOW', 'ROUTE'],
  argument: 'required',
  usage: 'SHOW ROUTE <sql>',
  description: 'which shard and role a statement goes to, and why',
  columns: [text('route')],
  run(ctx, sql) {
    const { routing, config } = ctx.proxy
    const analyzed = routing.analyze(sql)
    const literal = (n: number): BoundParam | undefined => {
      const i = n - analyzed.firstParam
      return i >= 0 && i < analyzed.literals.length ? { value: analyzed.literals[i], format: 0, typeOid: 0 } : undefined
    }
    const route = routing.route(analyzed, literal, { inTransaction: false, txReadOnly: false })
    const lines = describeRoute(route, config.shards.map((s) => s.name)).split('\n')
    return { rows: lines.map((l) => [l]), tag: 'SHOW' }
  },
}
