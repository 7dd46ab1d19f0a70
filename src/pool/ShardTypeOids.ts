import type { ShardTypeNames } from '../health/CatalogReader.js'
import { TypeOidMap } from '../protocol/TypeOidMap.js'

/**
 * The TypeOidMap of each shard and server database, handed to its pools' connections once and refilled from
 * every catalog read: a shard's type is paired with the default shard's type of the same schema-qualified name
 * in the same client database. A type the default shard lacks keeps the shard's own OID.
 */
export class ShardTypeOids {
  private readonly maps = new Map<string, TypeOidMap>()

  forPool(shard: number, serverDatabase: string): TypeOidMap {
    const key = `${shard}\u0000${serverDatabase}`
    let map = this.maps.get(key)
    if (map === undefined) {
      map = new TypeOidMap()
      this.maps.set(key, map)
    }
    return map
  }

  learn(defaultShard: number, read: ShardTypeNames[]): void {
    const canonical = new Map<string, Map<string, number>>()
    for (const r of read) if (r.shard === defaultShard) canonical.set(r.database, new Map(r.types.map((t) => [t.name, t.oid])))
    for (const r of read) {
      const byName = r.shard === defaultShard ? undefined : canonical.get(r.database)
      const pairs = byName === undefined ? [] : r.types.flatMap((t) => {
        const oid = byName.get(t.name)
        return oid === undefined ? [] : [[t.oid, oid] as const]
      })
      this.forPool(r.shard, r.serverDatabase).replace(pairs)
    }
  }
}
