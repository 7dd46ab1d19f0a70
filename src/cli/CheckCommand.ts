import { parseArgs } from 'node:util'
import { loadConfig } from '../config/ConfigLoader.js'
import { BALANCE_LIMIT, balanceOf, pointsForBalance } from '../router/RingBalance.js'
import { ShardMap } from '../router/ShardMap.js'

/**
 * `pgshard check -c FILE`: validates the file (exit 1 with every mistake by path) and prints what it describes,
 * with a warning when the ring is unbalanced (exit 0: the file is valid).
 */
export async function checkCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } })
  if (!values.config) {
    process.stderr.write('pgshard check: which file? pgshard check -c FILE\n')
    return 2
  }
  let config
  try {
    config = await loadConfig(values.config)
  } catch (err) {
    process.stderr.write(`${values.config} is not valid:\n${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
  const map = new ShardMap(config)
  const shares = map.ring.shares()
  const out: string[] = [`${values.config}: valid (shard map version ${config.map_version})`, '', 'shards:']
  config.shards.forEach((s, i) => {
    const marks = [i === map.defaultShard ? 'default' : '', `failover ${s.failover}`].filter(Boolean).join(', ')
    out.push(`  ${s.name}  ${(shares[i] * 100).toFixed(2)}% of the keyspace  (${marks})`)
    out.push(`    primary  ${s.primary.host}:${s.primary.port}`)
    for (const r of s.replicas) out.push(`    replica  ${r.host}:${r.port}  weight ${r.weight}`)
  })
  const ring = config.sharding.ring
  const balance = balanceOf(map.ring)
  out.push('', `ring: version ${ring.version}, ${ring.points_per_shard} points per shard, seed "${ring.seed}", max/mean share ${balance.toFixed(3)}`)
  if (balance > BALANCE_LIMIT) out.push(...balanceWarning(map, balance))
  out.push('', 'sharded tables:')
  for (const t of map.shardedTables) {
    const made = t.generatedKey === undefined ? '' : t.generatedKey === 'uuid' ? ', random UUID keys' : `, keys from sequence ${t.generatedKey.sequence}`
    out.push(`  ${t.schema ?? 'public'}.${t.name} by ${t.key} (${t.keyType})${made}${t.broadcastWrites ? ', unpinned writes broadcast' : ''}`)
  }
  if (map.shardedTables.length === 0) out.push('  (none)')
  out.push('', `reference tables: ${map.referenceTables.length ? map.referenceTables.join(', ') : '(none)'}`)
  for (const c of config.sharding.made_columns) out.push(`  ${c.table}.${c.column}: ${c.sequence !== undefined ? `values from sequence ${c.sequence}` : 'random UUIDs'} when an INSERT leaves it out`)
  out.push(`everything else lives on ${config.shards[map.defaultShard].name}`)
  out.push('', `pool: ${config.pool.mode} mode, ${config.pool.size} connections per node, user and database`)
  out.push(`users: ${config.users.map((u) => `${u.name} (${u.auth}${u.admin ? ', admin' : ''})`).join(', ')}`)
  process.stdout.write(out.join('\n') + '\n')
  return 0
}

function balanceWarning(map: ShardMap, balance: number): string[] {
  const points = pointsForBalance(map.ring)
  const busiest = map.ring.shardNames[map.ring.shares().indexOf(Math.max(...map.ring.shares()))]
  return [
    `warning: the ring is unbalanced: shard ${busiest} owns ${balance.toFixed(3)}× the mean share (above ${BALANCE_LIMIT}); how even it is depends on the shard names and the seed`,
    points === undefined
      ? '  try another sharding.ring.seed'
      : `  sharding.ring.points_per_shard: ${points} balances it (or try another sharding.ring.seed)`,
    '  either change places keys anew: run pgshard plan on the two files and move the rows before you reload',
  ]
}
