import { z } from 'zod'
import { closestName } from './ClosestName.js'
import { formatPath, type PathSegment, type RawProblem } from './ConfigError.js'
import { NodeSchema, UserSchema } from './ConfigSchema.js'
import type { KeyType } from '../router/KeyEncoding.js'
import { keyFamily } from '../router/ShardMap.js'

/** The admin console answers on this database name, so no logical database may take it. */
export const ADMIN_DATABASE = 'pgshard'

interface Item<T> {
  path: PathSegment[]
  value: T
}

/**
 * Rules across fields that the schema cannot express. They read each field that is valid on its own, even when
 * its neighbours are not, so that one run reports every mistake in the file.
 */
export function crossCheck(input: unknown): RawProblem[] {
  const root = asRecord(input)
  const sharding = asRecord(root.sharding)
  const shards = list(root.shards, ['shards'])
  const shardNames = shards.flatMap((s) => field(s, 'name', z.string()))
  const sharded = list(sharding.tables, ['sharding', 'tables']).flatMap((t) => field(t, 'name', z.string()))
  const reference = list(sharding.reference_tables, ['sharding', 'reference_tables']).flatMap((r) =>
    typeof r.value === 'string' ? [{ path: r.path, value: r.value }] : [],
  )
  const databases = list(root.databases, ['databases']).flatMap((d) => field(d, 'name', z.string()))
  const users = list(root.users, ['users'])
  return [
    ...unique(shardNames, 'shard name'),
    ...nodes(shards),
    ...defaultShard(sharding.default_shard, shardNames, shards.length),
    ...unique(sharded, 'sharded table'),
    ...unique(reference, 'reference table'),
    ...alsoSharded(reference, sharded),
    ...columnSequences(sharding, sharded, reference),
    ...parentTables(sharding),
    ...unique(
      users.flatMap((u) => field(u, 'name', z.string())),
      'user name',
    ),
    ...users.flatMap(credentials),
    ...unique(databases, 'database name'),
    ...databases
      .filter((d) => d.value === ADMIN_DATABASE)
      .map((d) => ({ path: d.path, message: `"${ADMIN_DATABASE}" is reserved for the admin console` })),
    ...serverTlsCa(root),
  ]
}

/** A CA file with a mode that checks nothing would look like protection and give none. */
function serverTlsCa(root: Record<string, unknown>): RawProblem[] {
  if (root.server_tls_ca === undefined || root.server_tls === 'verify-ca' || root.server_tls === 'verify-full') return []
  return [{ path: ['server_tls_ca'], message: 'is only used with server_tls: verify-ca or verify-full (other modes do not check certificates): set one of them, or remove server_tls_ca' }]
}

/** Two entries for one server would get two pools and two health checkers, and could both be "the primary". */
function nodes(shards: Item<unknown>[]): RawProblem[] {
  const all = shards.flatMap((shard) => [
    ...field(shard, 'primary', NodeSchema.strip()),
    ...list(asRecord(shard.value).replicas, [...shard.path, 'replicas']).flatMap((r) => parsed(r, NodeSchema.strip())),
  ])
  const named = all.flatMap(({ path, value }) => (value.name === undefined ? [] : [{ path: [...path, 'name'], value: value.name }]))
  return [
    ...unique(
      all.map(({ path, value }) => ({ path, value: `${value.host.toLowerCase()}:${value.port}` })),
      'host:port',
    ),
    ...unique(named, 'node name'),
  ]
}

function defaultShard(name: unknown, shardNames: Item<string>[], listed: number): RawProblem[] {
  // A shard without a valid name may be the one meant: its own problem is reported instead.
  if (typeof name !== 'string' || shardNames.length !== listed || shardNames.some((s) => s.value === name)) return []
  const names = [...new Set(shardNames.map((s) => s.value))]
  const near = closestName(name, names)
  const hint = near ? `did you mean "${near}"?` : `shards: ${names.join(', ')}`
  return [{ path: ['sharding', 'default_shard'], message: `no shard named "${name}" (${hint})` }]
}

/** A drawn column belongs to a listed table, once, and is not a sharded table's key (key_sequence draws that). */
function columnSequences(sharding: Record<string, unknown>, sharded: Item<string>[], reference: Item<string>[]): RawProblem[] {
  const items = list(sharding.made_columns, ['sharding', 'made_columns'])
  const keys = new Map(list(sharding.tables, ['sharding', 'tables']).flatMap((t) => {
    const table = asRecord(t.value)
    return typeof table.name === 'string' && typeof table.key === 'string' ? [[table.name, table.key] as const] : []
  }))
  const tables = new Set([...sharded, ...reference].map((t) => t.value))
  const problems: RawProblem[] = []
  const seen = new Set<string>()
  for (const item of items) {
    const { table, column } = asRecord(item.value)
    if (typeof table !== 'string' || typeof column !== 'string') continue
    if (!tables.has(table)) {
      const near = closestName(table, [...tables])
      problems.push({ path: [...item.path, 'table'], message: `"${table}" is not in sharding.tables or sharding.reference_tables${near ? ` (did you mean "${near}"?)` : ''}` })
    } else if (keys.get(table) === column) {
      problems.push({ path: [...item.path, 'column'], message: `"${column}" is the sharding key of ${table}: use key_sequence on the table for it` })
    }
    const id = `${table}\u0000${column}`
    if (seen.has(id)) problems.push({ path: item.path, message: `${table}.${column} is listed twice` })
    seen.add(id)
  }
  return problems
}

/** A parent is another sharded table, with a key of the same family, referenced by a column that is not the key. */
function parentTables(sharding: Record<string, unknown>): RawProblem[] {
  const tables = list(sharding.tables, ['sharding', 'tables'])
  const keyTypes = new Map(tables.flatMap((t) => {
    const table = asRecord(t.value)
    return typeof table.name === 'string' && typeof table.type === 'string' ? [[table.name, table.type] as const] : []
  }))
  const problems: RawProblem[] = []
  for (const t of tables) {
    const table = asRecord(t.value)
    for (const item of list(table.parents, [...t.path, 'parents'])) {
      const parent = asRecord(item.value)
      if (typeof parent.table !== 'string') continue
      const type = keyTypes.get(parent.table)
      if (type === undefined) {
        const near = closestName(parent.table, [...keyTypes.keys()])
        problems.push({ path: [...item.path, 'table'], message: `"${parent.table}" is not in sharding.tables: a parent is a sharded table${near ? ` (did you mean "${near}"?)` : ''}` })
      } else if (parent.table === table.name) {
        problems.push({ path: [...item.path, 'table'], message: `"${parent.table}" is this table: a row cannot be placed by another row of its own table` })
      } else if (typeof table.type === 'string' && keyFamily(type as KeyType) !== keyFamily(table.type as KeyType)) {
        problems.push({ path: [...item.path, 'table'], message: `${parent.table}'s key is ${type} and this table's is ${table.type}: keys of different types are not placed alike` })
      }
      if (typeof parent.column === 'string' && parent.column === table.key) {
        problems.push({ path: [...item.path, 'column'], message: `"${parent.column}" is this table's sharding key: a join on the keys needs no parent` })
      }
    }
  }
  return problems
}

function alsoSharded(reference: Item<string>[], sharded: Item<string>[]): RawProblem[] {
  const shardedAt = new Map<string, PathSegment[]>()
  for (const { path, value } of sharded) if (!shardedAt.has(value)) shardedAt.set(value, path)
  return reference.flatMap(({ path, value }) => {
    const other = shardedAt.get(value)
    return other ? [{ path, message: `"${value}" is also a sharded table (${formatPath(other)})` }] : []
  })
}

/**
 * Clients must be checkable. A user with only a scram_verifier is logged in to the servers with the keys of its
 * client's SCRAM log-in (pass-through), so it needs no password for them.
 */
function credentials(item: Item<unknown>): RawProblem[] {
  const user = parsed(item, UserSchema.strip())[0]?.value
  if (!user) return []
  const problems: RawProblem[] = []
  if (user.auth === 'md5' && user.password === undefined) {
    problems.push({ path: [...item.path, 'password'], message: 'required for auth md5 (a SCRAM verifier cannot check md5)' })
  } else if (user.auth !== 'trust' && user.password === undefined && user.scram_verifier === undefined) {
    problems.push({ path: [...item.path, 'password'], message: `required (or scram_verifier) for auth ${user.auth}` })
  }
  return problems
}

/** One problem per repeated value, at the repeat, naming where the value first appeared. */
function unique(items: Item<string>[], what: string): RawProblem[] {
  const first = new Map<string, PathSegment[]>()
  const problems: RawProblem[] = []
  for (const { path, value } of items) {
    const seen = first.get(value)
    if (seen) problems.push({ path, message: `duplicate ${what} "${value}" (first at ${formatPath(seen)})` })
    else first.set(value, path)
  }
  return problems
}

function list(value: unknown, path: PathSegment[]): Item<unknown>[] {
  return Array.isArray(value) ? value.map((v: unknown, i) => ({ path: [...path, i], value: v })) : []
}

/** `item.value[key]` as an item, if the schema accepts it. */
function field<S extends z.ZodType>(item: Item<unknown>, key: string, schema: S): Item<z.output<S>>[] {
  return parsed({ path: [...item.path, key], value: asRecord(item.value)[key] }, schema)
}

function parsed<S extends z.ZodType>(item: Item<unknown>, schema: S): Item<z.output<S>>[] {
  const result = schema.safeParse(item.value)
  return result.success ? [{ path: item.path, value: result.data }] : []
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
}
