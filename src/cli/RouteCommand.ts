import { parseArgs } from 'node:util'
import { loadConfig } from '../config/ConfigLoader.js'
import { StatementRouter } from '../proxy/StatementRouter.js'
import { restoreLiterals } from '../router/LiteralNormalizer.js'
import { initSqlParser } from '../router/SqlParser.js'
import type { BoundParam, Route } from '../router/Route.js'

/** `pgshard route -c FILE SQL [PARAM…]`: where the proxy would send a statement, and why. */
export async function routeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, 'in-transaction': { type: 'boolean' } },
  })
  const [sql, ...params] = positionals
  if (!values.config || sql === undefined) {
    process.stderr.write('usage: pgshard route -c FILE "SQL" [PARAM…]   ($1, $2 … take the PARAMs as text)\n')
    return 2
  }
  const config = await loadConfig(values.config)
  await initSqlParser()
  const router = new StatementRouter(config)
  const analyzed = router.analyze(sql)
  const route = router.route(
    analyzed,
    (n): BoundParam | undefined => {
      if (n >= analyzed.firstParam && n - analyzed.firstParam < analyzed.literals.length) return { value: analyzed.literals[n - analyzed.firstParam], format: 0, typeOid: 0 }
      const v = params[n - 1]
      return v === undefined ? undefined : { value: v, format: 0, typeOid: 0 }
    },
    { inTransaction: values['in-transaction'] ?? false, txReadOnly: false },
  )
  // The plan came from the text with its literals taken out: show the shards' statements as they will run.
  const restore = (text: string) => restoreLiterals(text, analyzed.firstParam, analyzed.sources ?? [])
  const shown: Route =
    route.kind === 'scatter'
      ? { ...route, plan: { ...route.plan, shardSql: restore(route.plan.shardSql) } }
      : route.kind === 'split'
        ? { ...route, parts: route.parts.map((p) => ({ ...p, sql: restore(p.sql) })) }
        : route.kind === 'locate'
          ? { ...route, probe: restore(route.probe) }
          : route.kind === 'evaluate'
            ? { ...route, subqueries: route.subqueries.map((sub) => ({ ...sub, sql: restore(sub.sql) })) }
            : route
  process.stdout.write(describeRoute(shown, config.shards.map((s) => s.name)) + '\n')
  return route.kind === 'error' ? 1 : 0
}

/** A route as an operator reads it (also used by the admin console's SHOW ROUTE). */
export function describeRoute(route: Route, shardNames: string[]): string {
  switch (route.kind) {
    case 'shard':
      return `shard ${shardNames[route.shard]} (${route.role})\nwhy: ${route.reason}`
    case 'scatter':
      return `all shards, merged (${route.role})\nwhy: ${route.reason}\neach shard runs: ${route.plan.shardSql}`
    case 'broadcast':
      return `all shards (primary), all or nothing\nwhy: ${route.reason}`
    case 'split':
      return [`split into ${route.parts.length} statements`, `why: ${route.reason}`, ...route.parts.map((p) => `  ${shardNames[p.shard]}: ${p.rows} row(s): ${p.sql}`)].join('\n')
    case 'keys':
      return `${route.from === 'uuid' ? 'random UUID keys' : `keys drawn from sequence ${route.from.sequence} on shard ${shardNames[route.from.shard]}`}, then the INSERT routed by them\nwhy: ${route.reason}`
    case 'locate':
      return `each shard asked first which holds its rows, then that shard (primary); rows on several are refused\nwhy: ${route.reason}\neach shard is asked: ${route.probe}`
    case 'evaluate':
      return [`each subquery read first on its own, its answer written into the statement as constants, then the statement routed`, `why: ${route.reason}`, ...route.subqueries.map((sub) => `  read first: ${sub.sql}`)].join('\n')
    case 'copy_split':
      return `each row to the shard of its ${route.key} (primary), all or nothing\nwhy: ${route.reason}`
    case 'copy_out':
      return `all shards, their rows one after another (${route.role})\nwhy: ${route.reason}`
    case 'error':
      return `refused: ${route.code} ${route.message}${route.hint ? `\nhint: ${route.hint}` : ''}`
  }
}
