/** A result column as the shards describe it (RowDescription) and as the client is told. */
export interface ColumnInfo {
  name: string
  typeOid: number
  format: 0 | 1
}
