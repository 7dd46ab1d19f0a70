import type { FieldDescription } from './ServerMessages.js'

/**
 * One shard's numbers for the types created on the servers (enums, composites, domains, extensions' types),
 * against the default shard's. Each shard numbers a type itself, so without this a client would be told a
 * different OID for the same type depending on the shard that answered, while its type lookups (asyncpg, pgjdbc,
 * psycopg's TypeInfo.fetch) read the default shard's pg_type. The proxy tells clients the default shard's OID
 * (RowDescription, ParameterDescription, merged descriptions) and gives a shard its own OID for a parameter type
 * a client named (Parse). The object stays the same for a connection's life; the catalog reader refills it.
 */
export class TypeOidMap {
  private toClient = new Map<number, number>()
  private toServer = new Map<number, number>()
  /** Nothing to translate: the default shard itself, or a shard that numbers every type as it does. */
  empty = true

  /** Replaces the pairs (this shard's OID, the default shard's OID for the same schema-qualified type name). */
  replace(pairs: Iterable<readonly [server: number, client: number]>): void {
    const toClient = new Map<number, number>()
    const toServer = new Map<number, number>()
    for (const [server, client] of pairs) {
      if (server === client) continue
      toClient.set(server, client)
      toServer.set(client, server)
    }
    this.toClient = toClient
    this.toServer = toServer
    this.empty = toClient.size === 0
  }

  clientOid(oid: number): number {
    return this.toClient.get(oid) ?? oid
  }

  serverOid(oid: number): number {
    return this.toServer.get(oid) ?? oid
  }

  /** RowDescription's body, its type OIDs the client's: rewritten in place (the caller owns it). */
  rowDescription(body: Buffer): Buffer {
    if (body.length < 2) return body
    const n = body.readInt16BE(0)
    let pos = 2
    for (let i = 0; i < n; i++) {
      const end = body.indexOf(0, pos)
      if (end < 0 || end + 19 > body.length) return body
      pos = end + 1 + 6
      this.rewrite(body, pos, this.toClient)
      pos += 12
    }
    return body
  }

  /** ParameterDescription's body, its type OIDs the client's: rewritten in place (the caller owns it). */
  paramDescription(body: Buffer): Buffer {
    if (body.length < 2) return body
    const n = body.readInt16BE(0)
    for (let i = 0; i < n && 2 + 4 * i + 4 <= body.length; i++) this.rewrite(body, 2 + 4 * i, this.toClient)
    return body
  }

  /**
   * A Parse's tail (query, parameter count, parameter type OIDs) with the types this shard's: a copy when one
   * changes, the same buffer when none does (the tail is the client's statement, shared by every connection).
   */
  parseTail(tail: Buffer): Buffer {
    if (this.empty) return tail
    const end = tail.indexOf(0)
    if (end < 0 || end + 3 > tail.length) return tail
    const n = tail.readInt16BE(end + 1)
    let copy: Buffer | null = null
    for (let i = 0; i < n; i++) {
      const pos = end + 3 + 4 * i
      if (pos + 4 > tail.length) break
      const oid = tail.readUInt32BE(pos)
      const server = this.toServer.get(oid)
      if (server === undefined) continue
      copy ??= Buffer.from(tail)
      copy.writeUInt32BE(server, pos)
    }
    return copy ?? tail
  }

  /** Fields a merge decoded: typeOid the client's, serverTypeOid what this shard said when they differ. */
  fields(fields: FieldDescription[]): FieldDescription[] {
    if (this.empty) return fields
    for (const f of fields) {
      const client = this.toClient.get(f.typeOid)
      if (client === undefined) continue
      f.serverTypeOid = f.typeOid
      f.typeOid = client
    }
    return fields
  }

  private rewrite(body: Buffer, pos: number, map: Map<number, number>): void {
    const to = map.get(body.readUInt32BE(pos))
    if (to !== undefined) body.writeUInt32BE(to, pos)
  }
}
