// The labels of enum types in their declared order, by type OID, from every shard's catalog: what lets a merge
// order an enum column as Postgres does (by declared order, not by the labels' text) and group or count it (a label
// equals only itself). Each shard, and each database on it, numbers its types itself, so a column's OID differs
// from shard to shard; an OID that names different types in two places is treated as unknown.
import type { TextCollation } from './TextCollation.js'
import { isCreatedType } from './TypeOid.js'

export interface CatalogType {
  oid: number
  /** An enum's labels in declared order; null for any other type. */
  labels: string[] | null
}

/** What a merge asks of the catalogs: an enum column's labels, and a word when the ones it has are out of date. */
export interface MergeTypes {
  /** The labels of the enum that each shard's type of a column (`oids`, one per shard) is, when all are that enum. */
  labelsOf(oids: number[]): readonly string[] | undefined
  /** How text orders in a shard's server database (its default collation; bytes until the catalogs are read). */
  collationOf(shard: number, serverDatabase: string): TextCollation
  /** A value was not among its enum's labels: the type changed since the catalogs were read. */
  stale(): void
}

export class EnumTypes {
  /** Created types by OID: an enum's labels, null for another type, or 'ambiguous' when two places disagree. */
  private types = new Map<number, readonly string[] | null | 'ambiguous'>()

  /** Replaces what is known by what the catalogs hold now. */
  load(types: CatalogType[]): void {
    const next = new Map<number, readonly string[] | null | 'ambiguous'>()
    for (const t of types) {
      const seen = next.get(t.oid)
      next.set(t.oid, seen === undefined || sameLabels(seen, t.labels) ? t.labels : 'ambiguous')
    }
    this.types = next
  }

  /** A type created on the servers that no catalog read so far has listed (made since the last read). */
  unknown(oid: number): boolean {
    return isCreatedType(oid) && !this.types.has(oid)
  }

  /** The labels of the enum that each shard's type of a column (`oids`, one per shard) is, when all are that enum. */
  labelsOf(oids: number[]): readonly string[] | undefined {
    let labels: readonly string[] | undefined
    for (const oid of oids) {
      const t = this.types.get(oid)
      if (t === undefined || t === null || t === 'ambiguous' || (labels !== undefined && !sameLabels(labels, t))) return undefined
      labels = t
    }
    return labels
  }
}

function sameLabels(a: readonly string[] | null | 'ambiguous', b: readonly string[] | null): boolean {
  if (a === null || b === null || a === 'ambiguous') return a === b
  return a.length === b.length && a.every((l, i) => l === b[i])
}
