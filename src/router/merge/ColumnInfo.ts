import type { IntervalStyle } from './IntervalText.js'
import type { TextCollation } from './TextCollation.js'

/** A result column as the shards describe it (RowDescription) and as the client is told. */
export interface ColumnInfo {
  name: string
  typeOid: number
  format: 0 | 1
  /** An enum's labels in declared order (EnumTypes): its values are ordered and grouped by them. */
  labels?: readonly string[]
  /** How a string column orders: the shards' database's collation (bytes when not given). */
  collation?: TextCollation
  /** How the shards print an interval column (the session's IntervalStyle), for intervals the merge computes. */
  intervalStyle?: IntervalStyle
}
