import type { Config } from '../config/ConfigSchema.js'
import type { Topology } from '../health/Topology.js'
import { defaultNodeName } from '../health/NodeState.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import type { RingDiff } from '../router/RingDiff.js'
import { ShardMap } from '../router/ShardMap.js'
import type { ShardPrimary } from './MoveTransaction.js'
import type { RowMovePlan } from './RowMover.js'

/**
 * What RESHARD will do to go from the running map to a new one, or why it cannot. It moves rows of sharded
 * tables between shards and nothing else: a table changing placement or key, or another default shard, means
 * moving whole tables, which stays the DBA's to do.
 */
export function reshardPlan(before: Config, after: Config, topology: Topology, diff: RingDiff): RowMovePlan {
  const refusals = [
    ...diff.tableChanges.map((t) => `table ${t.table}: ${t.from} becomes ${t.to}`),
    ...diff.keyTypeChanges.map((k) => `table ${k.table}: sharding key ${k.from.key} (${k.from.type}) becomes ${k.to.key} (${k.to.type})`),
    ...(diff.defaultShard ? [`unsharded tables would move from shard ${diff.defaultShard.from} to ${diff.defaultShard.to}`] : []),
  ]
  if (refusals.length > 0)
    throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `RESHARD moves rows of sharded tables between shards only; the new file also changes:\n${refusals.join('\n')}`, {
      hint: 'Make those changes in a reload of their own (moving those tables yourself), or set sharding.default_shard to the shard that holds the unsharded tables now.',
    })
  const primaries = new Map<string, ShardPrimary>()
  // Shards already in the map are reached at their primary now (after any failover); new ones as the file says.
  for (const shard of topology.shards) {
    const node = topology.primaryOf(shard.index)
    if (!node?.up) throw new PgError(SqlState.CANNOT_CONNECT_NOW, `RESHARD needs every primary: shard ${shard.name} has none up`, { hint: 'Bring the primary back or PROMOTE a replica, then RESHARD again.' })
    primaries.set(shard.name, { shard: shard.name, node: node.name, host: node.host, port: node.port })
  }
  for (const s of after.shards) {
    if (!primaries.has(s.name)) primaries.set(s.name, { shard: s.name, node: s.primary.name ?? defaultNodeName(s.name, 'primary', 0), host: s.primary.host, port: s.primary.port })
  }
  const nodeDatabase = new Map<string, string | undefined>([...before.shards, ...after.shards].map((s) => [s.name, s.primary.database]))
  const plan: RowMovePlan = {
    oldMap: new ShardMap(before),
    newMap: new ShardMap(after),
    primaries,
    databases: after.databases,
    serverDatabase: (shard, database) => nodeDatabase.get(shard) ?? database.server_database ?? database.name,
  }
  refuseSharedDatabases(plan)
  return plan
}

/** Two shards in one server database would have rows deleted as they are "moved" into the same table. */
function refuseSharedDatabases(plan: RowMovePlan): void {
  for (const database of plan.databases) {
    const seen = new Map<string, string>()
    for (const p of plan.primaries.values()) {
      const at = `${p.host}:${p.port}/${plan.serverDatabase(p.shard, database)}`
      const other = seen.get(at)
      if (other !== undefined)
        throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `shards ${other} and ${p.shard} are the same server database (${at}): RESHARD cannot move rows between them`)
      seen.set(at, p.shard)
    }
  }
}
