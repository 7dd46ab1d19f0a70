import { parseArgs } from 'node:util'
import { loadConfig } from '../config/ConfigLoader.js'
import { diffRings, type RingDiff } from '../router/RingDiff.js'
import { ShardMap } from '../router/ShardMap.js'

/** Exit code when the new map needs rows moved (0: nothing moves, 1: a file is invalid, 2: usage). */
export const ROWS_MUST_MOVE = 3

/**
 * `pgshard plan OLD NEW`: what loading NEW in place of OLD would move — the share of the key space and from which
 * shard to which, changed tables and keys, the default shard — and the warning that rows must move (and how).
 */
export async function planCommand(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} })
  if (positionals.length !== 2) {
    process.stderr.write('usage: pgshard plan OLD.yaml NEW.yaml\n')
    return 2
  }
  const [oldFile, newFile] = positionals as [string, string]
  const maps: ShardMap[] = []
  for (const file of [oldFile, newFile]) {
    try {
      maps.push(new ShardMap(await loadConfig(file)))
    } catch (err) {
      process.stderr.write(`${file} is not valid:\n${err instanceof Error ? err.message : String(err)}\n`)
      return 1
    }
  }
  const [before, after] = maps as [ShardMap, ShardMap]
  const diff = diffRings(before, after)
  process.stdout.write(describePlan(oldFile, newFile, before, after, diff).join('\n') + '\n')
  return rowsMove(diff, before, after) ? ROWS_MUST_MOVE : 0
}

/** Whether some rows live on the wrong shard once the new map is loaded. */
function rowsMove(diff: RingDiff, before: ShardMap, after: ShardMap): boolean {
  const sharded = before.shardedTables.length > 0 || after.shardedTables.length > 0
  return (
    (sharded && diff.movedShare > 0) ||
    diff.keyTypeChanges.length > 0 ||
    diff.tableChanges.length > 0 ||
    diff.defaultShard !== undefined
  )
}

const percent = (share: number): string => `${(share * 100).toFixed(2)}%`

function describePlan(oldFile: string, newFile: string, before: ShardMap, after: ShardMap, diff: RingDiff): string[] {
  const out = [`plan: ${oldFile} \u2192 ${newFile}`, '']
  const oldNames = before.ring.shardNames
  const newNames = after.ring.shardNames
  const added = newNames.filter((n) => !oldNames.includes(n))
  const removed = oldNames.filter((n) => !newNames.includes(n))
  out.push(`shards: ${oldNames.length} \u2192 ${newNames.length}${added.length ? `; added ${added.join(', ')}` : ''}${removed.length ? `; removed ${removed.join(', ')}` : ''}`)
  out.push(`keys that change shard: ${percent(diff.movedShare)} of the key space`)
  for (const m of diff.moves) out.push(`  ${m.from} \u2192 ${m.to}  ${percent(m.share)}`)
  for (const c of diff.ringChanges) out.push(`  ${c}`)
  const shares = after.ring.shares()
  out.push('', 'key space after the change:')
  newNames.forEach((name, i) => out.push(`  ${name}  ${percent(shares[i]!)}`))
  if (diff.tableChanges.length > 0) {
    out.push('', 'tables:')
    for (const c of diff.tableChanges) out.push(`  ${c.table}: ${c.from} \u2192 ${c.to}`)
  }
  if (diff.keyTypeChanges.length > 0) {
    out.push('', 'sharding keys:')
    for (const c of diff.keyTypeChanges) out.push(`  ${c.table}: ${c.from.key} (${c.from.type}) \u2192 ${c.to.key} (${c.to.type}): every row may belong elsewhere`)
  }
  if (diff.defaultShard !== undefined) out.push('', `unsharded tables: ${diff.defaultShard.from} \u2192 ${diff.defaultShard.to}`)
  out.push('')
  const shardedTables = before.shardedTables.map((t) => `${t.schema ?? 'public'}.${t.name}`)
  if (!rowsMove(diff, before, after)) {
    out.push(diff.movedShare > 0 ? 'no row moves: no table is sharded' : 'no row moves: every key stays on its shard')
    return out
  }
  out.push('WARNING: rows must be moved. A reload or a restart routes by the new map at once and moves no row:')
  if (diff.movedShare > 0 && shardedTables.length > 0) {
    out.push(`  - rows of ${shardedTables.join(', ')} whose key is in the moving share (pgshard route -c ${newFile} "…" tells each key's new shard)`)
  }
  for (const c of diff.tableChanges) out.push(`  - every row of ${c.table} (${c.from} \u2192 ${c.to})`)
  for (const c of diff.keyTypeChanges) out.push(`  - every row of ${c.table} (new sharding key ${c.to.key})`)
  if (diff.defaultShard !== undefined) out.push(`  - unsharded tables, from ${diff.defaultShard.from} to ${diff.defaultShard.to}`)
  const onlyKeys = diff.tableChanges.length === 0 && diff.keyTypeChanges.length === 0 && diff.defaultShard === undefined
  out.push(
    onlyKeys
      ? '  RESHARD in the admin console does it: it holds the clients between transactions, moves those rows and applies the file.'
      : '  Copy those rows to their new shards, load the new map (a reload needs sharding.allow_key_movement: true), then delete the old copies.',
  )
  return out
}
