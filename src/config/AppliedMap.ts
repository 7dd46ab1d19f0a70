import { createHash } from 'node:crypto'
import { controlAccess, queryOnce, type ControlTarget } from '../health/ControlConnection.js'
import type { Logger } from '../log/Logger.js'
import { ShardMap } from '../router/ShardMap.js'
import type { Config } from './ConfigSchema.js'

/**
 * What decides which shard a row lives on: the shards in order, the ring, the sharded tables with their keys,
 * the reference tables and the default shard. Two files with the same placement route every row alike.
 */
export interface Placement {
  shards: string[]
  ring: { version: number; points_per_shard: number; seed: string }
  tables: string[]
  reference: string[]
  default_shard: string
}

export function placementOf(config: Config): Placement {
  const map = new ShardMap(config)
  return {
    shards: map.shards.map((s) => s.name),
    ring: { ...config.sharding.ring },
    tables: map.shardedTables.map((t) => `${t.schema ?? 'public'}.${t.name}(${t.key} ${t.keyType})`).sort(),
    reference: [...map.referenceTables].sort(),
    default_shard: map.shardName(map.defaultShard),
  }
}

function fingerprint(p: Placement): string {
  return createHash('sha256').update(JSON.stringify(p)).digest('hex')
}

/** The placement last applied to the servers, kept where it survives restarts and failovers: on them. */
const TABLE = 'pgshard.applied_map'
const CREATE = `CREATE SCHEMA IF NOT EXISTS pgshard;
  CREATE TABLE IF NOT EXISTS ${TABLE} (id int PRIMARY KEY CHECK (id = 1), fingerprint text NOT NULL, placement jsonb NOT NULL,
    map_version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`
const UPSERT = `INSERT INTO ${TABLE} (id, fingerprint, placement, map_version) VALUES (1, $1, $2, $3)
  ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, placement = excluded.placement, map_version = excluded.map_version, applied_at = now()`
const READ = `SELECT fingerprint, placement::text AS placement, map_version, applied_at::text AS applied_at FROM ${TABLE} WHERE id = 1`
const UNDEFINED_TABLE = '42P01'
const TIMEOUT_MS = 5_000

/** Statements that record `config`'s placement as the applied one (in the control database). */
export function recordStatements(config: Config): { sql: string; params?: unknown[] }[] {
  const placement = placementOf(config)
  return [{ sql: CREATE }, { sql: UPSERT, params: [fingerprint(placement), JSON.stringify(placement), String(config.map_version)] }]
}

/** A file whose placement differs from the one the servers' rows follow. */
export class PlacementMismatch extends Error {
  readonly code = 'F0000'
}

/** Where the applied placement is kept: the default shard's primary (as the file lists it, at start-up). */
function recordHolder(config: Config): ControlTarget {
  const shard = config.shards[new ShardMap(config).defaultShard]
  return { host: shard.primary.host, port: shard.primary.port }
}

/**
 * At start-up: the file must place rows as the map last applied to these servers did (recorded on the default
 * shard's primary), or a restart after an edit would route by a map the data does not follow, silently. A file
 * that says `sharding.allow_key_movement: true` is taken as the DBA's word and recorded; so is the first start.
 * A server that cannot be asked is logged, and start-up goes on (the check is a guard, not a dependency).
 */
export async function checkAppliedMap(config: Config, log: Logger): Promise<void> {
  const target = recordHolder(config)
  let recorded: Record<string, string> | undefined
  try {
    recorded = (await queryOnce<Record<string, string>>(target, controlAccess(config), READ, TIMEOUT_MS))[0]
  } catch (err) {
    if ((err as { code?: string }).code !== UNDEFINED_TABLE) {
      log.warn({ node: `${target.host}:${target.port}`, err: (err as Error).message }, 'could not read the shard map last applied to the servers: starting without that check')
      return
    }
  }
  if (recorded?.fingerprint === fingerprint(placementOf(config))) return
  if (recorded && !config.sharding.allow_key_movement) {
    const before = JSON.parse(recorded.placement) as Partial<Placement>
    throw new PlacementMismatch(
      `the shard map places rows differently from the one last applied to these servers (map_version ${recorded.map_version}, applied ${recorded.applied_at}: ` +
        `shards ${(before.shards ?? []).join(', ')}), so pgshard did not start: it would look for rows where they are not.\n` +
        `Start with the file that was applied and run RESHARD in the admin console to move the rows, or, if the rows were moved by hand, ` +
        `start once with sharding.allow_key_movement: true.`,
    )
  }
  await recordAppliedMap(config, target, log)
  if (recorded) log.warn({ map_version: config.map_version }, 'started with a shard map that moves keys (sharding.allow_key_movement): recorded as the applied one')
}

/** Records `config`'s placement as the applied one on `target` (the default shard's primary). Best effort. */
export async function recordAppliedMap(config: Config, target: ControlTarget, log: Logger): Promise<void> {
  try {
    for (const s of recordStatements(config)) await queryOnce(target, controlAccess(config), s.sql, TIMEOUT_MS, undefined, s.params)
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not record the applied shard map on the servers')
  }
}
