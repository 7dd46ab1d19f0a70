// What a change of the shard map would move (`pgshard plan OLD NEW`). The key space is walked exactly:
// every position of the ring, weighted by the share of key hashes that land there, is compared between
// the two rings, so the shares are exact for keys that hash uniformly (no sampling error).
// A shard is identified by its name: the same name in both maps is the same shard.
import type { KeyType } from './KeyEncoding.js'
import type { ShardMap } from './ShardMap.js'
import { positionWeights, RING_POSITIONS } from './ShardRing.js'

export interface ShardMove {
  from: string
  to: string
  /** Share of all keys (0..1). */
  share: number
}

export interface KeyChange {
  /** schema.table */
  table: string
  from: { key: string; type: KeyType }
  to: { key: string; type: KeyType }
}

export type TablePlacement = 'sharded' | 'reference' | 'unsharded'

export interface TableChange {
  table: string
  from: TablePlacement
  to: TablePlacement
}

export interface RingDiff {
  /** Share of the key space whose shard changes (0..1). */
  movedShare: number
  /** Largest first. */
  moves: ShardMove[]
  /** Sharded in both maps, with another key column or key type: existing rows may be on the wrong shard. */
  keyTypeChanges: KeyChange[]
  /** Tables that became or stopped being sharded or reference tables. */
  tableChanges: TableChange[]
  /** The shard holding unsharded tables, when it changes. */
  defaultShard?: { from: string; to: string }
  /** Changes of the ring itself (seed, points per shard, version, shard renamed or removed), explained. */
  ringChanges: string[]
}

export function diffRings(oldMap: ShardMap, newMap: ShardMap): RingDiff {
  const oldOwners = oldMap.ring.positionOwners()
  const newOwners = newMap.ring.positionOwners()
  const oldNames = oldMap.ring.shardNames
  const newNames = newMap.ring.shardNames
  const weights = positionWeights()
  const moved = new Map<string, ShardMove>()
  let movedShare = 0
  for (let p = 0; p < RING_POSITIONS; p++) {
    const from = oldNames[oldOwners[p]]
    const to = newNames[newOwners[p]]
    if (from === to) continue
    movedShare += weights[p]
    const id = `${from}\u0000${to}`
    const move = moved.get(id) ?? { from, to, share: 0 }
    move.share += weights[p]
    moved.set(id, move)
  }
  const oldDefault = oldMap.shardName(oldMap.defaultShard)
  const newDefault = newMap.shardName(newMap.defaultShard)
  return {
    movedShare,
    moves: [...moved.values()].sort((a, b) => b.share - a.share || a.from.localeCompare(b.from) || a.to.localeCompare(b.to)),
    keyTypeChanges: keyChanges(oldMap, newMap),
    tableChanges: tableChanges(oldMap, newMap),
    ...(oldDefault === newDefault ? {} : { defaultShard: { from: oldDefault, to: newDefault } }),
    ringChanges: ringChanges(oldMap, newMap),
  }
}

function qualified(t: { schema?: string; name: string }): string {
  return `${t.schema ?? 'public'}.${t.name}`
}

function keyChanges(oldMap: ShardMap, newMap: ShardMap): KeyChange[] {
  const after = new Map(newMap.shardedTables.map((t) => [qualified(t), t]))
  return oldMap.shardedTables.flatMap((before) => {
    const now = after.get(qualified(before))
    if (!now || (now.key === before.key && now.keyType === before.keyType)) return []
    return [{ table: qualified(before), from: { key: before.key, type: before.keyType }, to: { key: now.key, type: now.keyType } }]
  })
}

function placements(map: ShardMap): Map<string, TablePlacement> {
  const out = new Map<string, TablePlacement>()
  for (const t of map.shardedTables) out.set(qualified(t), 'sharded')
  for (const r of map.referenceTables) out.set(r, 'reference')
  return out
}

function tableChanges(oldMap: ShardMap, newMap: ShardMap): TableChange[] {
  const before = placements(oldMap)
  const after = placements(newMap)
  const tables = [...new Set([...before.keys(), ...after.keys()])].sort()
  return tables.flatMap((table) => {
    const from = before.get(table) ?? 'unsharded'
    const to = after.get(table) ?? 'unsharded'
    return from === to ? [] : [{ table, from, to }]
  })
}

function ringChanges(oldMap: ShardMap, newMap: ShardMap): string[] {
  const a = oldMap.ring.options
  const b = newMap.ring.options
  const changes: string[] = []
  if (a.version !== b.version) changes.push(`sharding.ring.version changed (${a.version} \u2192 ${b.version}): every key is placed anew`)
  if (a.seed !== b.seed) changes.push(`sharding.ring.seed changed ("${a.seed}" \u2192 "${b.seed}"): every key is placed anew`)
  if (a.pointsPerShard !== b.pointsPerShard) {
    changes.push(`sharding.ring.points_per_shard changed (${a.pointsPerShard} \u2192 ${b.pointsPerShard}): every key is placed anew`)
  }
  const primary = (map: ShardMap, name: string) => {
    const s = map.shards[map.shardIndex(name)!]
    return `${s.primary.host.toLowerCase()}:${s.primary.port}`
  }
  const oldNames = oldMap.ring.shardNames
  const newNames = newMap.ring.shardNames
  const added = newNames.filter((n) => !oldNames.includes(n))
  for (const gone of oldNames.filter((n) => !newNames.includes(n))) {
    const renamedTo = added.find((n) => primary(newMap, n) === primary(oldMap, gone))
    changes.push(
      renamedTo === undefined
        ? `shard "${gone}" is removed: its keys move to the other shards`
        : `shard "${gone}" is renamed "${renamedTo}" (same primary ${primary(oldMap, gone)}): a shard's name places its keys, so renaming it moves them`,
    )
  }
  return changes
}
