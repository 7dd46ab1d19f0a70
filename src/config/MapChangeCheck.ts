import { diffRings, type RingDiff } from '../router/RingDiff.js'
import { ShardMap } from '../router/ShardMap.js'
import type { Config } from './ConfigSchema.js'

/**
 * What a new shard map would move compared with the running one, one line per fact (empty when nothing
 * moves): keys changing shard, ring changes, tables changing placement or key, the default shard. Rows do not
 * move by themselves, so any of these sends queries where the data is not.
 */
export function keyMovements(before: Config, after: Config): string[] {
  return describeMoves(diffRings(new ShardMap(before), new ShardMap(after)))
}

function percent(share: number): string {
  return `${(share * 100).toFixed(share < 0.001 ? 4 : 2)}%`
}

/** The lines of keyMovements for a diff already made. */
export function describeMoves(d: RingDiff): string[] {
  const lines = [...d.ringChanges]
  if (d.movedShare > 0) {
    lines.push(`${percent(d.movedShare)} of the keys change shard`)
    for (const m of d.moves.slice(0, 10)) lines.push(`  ${percent(m.share)} from ${m.from} to ${m.to}`)
    if (d.moves.length > 10) lines.push(`  \u2026 and ${d.moves.length - 10} more moves`)
  }
  for (const k of d.keyTypeChanges) lines.push(`table ${k.table}: sharding key ${k.from.key} (${k.from.type}) becomes ${k.to.key} (${k.to.type})`)
  for (const t of d.tableChanges) lines.push(`table ${t.table}: ${t.from} becomes ${t.to}`)
  if (d.defaultShard) lines.push(`unsharded tables move from shard ${d.defaultShard.from} to ${d.defaultShard.to} (sharding.default_shard)`)
  return lines
}
