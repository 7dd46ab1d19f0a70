import { PgError, SqlState } from './PgError.js'
import type { FieldDescription } from './ServerMessages.js'

// Decoders for the server messages a cross-shard merge must read. Single-shard traffic never needs them.

function truncated(what: string): PgError {
  return new PgError(SqlState.PROTOCOL_VIOLATION, `server sent a truncated ${what}`)
}

export function decodeRowDescription(body: Buffer): FieldDescription[] {
  if (body.length < 2) throw truncated('RowDescription')
  const n = body.readInt16BE(0)
  const out: FieldDescription[] = []
  let pos = 2
  for (let i = 0; i < n; i++) {
    const end = body.indexOf(0, pos)
    if (end < 0 || end + 19 > body.length) throw truncated('RowDescription')
    const name = body.toString('utf8', pos, end)
    pos = end + 1
    out.push({
      name,
      tableOid: body.readInt32BE(pos),
      columnAttr: body.readInt16BE(pos + 4),
      typeOid: body.readInt32BE(pos + 6),
      typeSize: body.readInt16BE(pos + 10),
      typeModifier: body.readInt32BE(pos + 12),
      format: body.readInt16BE(pos + 16),
    })
    pos += 18
  }
  return out
}

/** Column values as subarrays of the body (null for SQL NULL). */
export function decodeDataRow(body: Buffer): (Buffer | null)[] {
  if (body.length < 2) throw truncated('DataRow')
  const n = body.readInt16BE(0)
  const out = new Array<Buffer | null>(n)
  let pos = 2
  for (let i = 0; i < n; i++) {
    if (pos + 4 > body.length) throw truncated('DataRow')
    const len = body.readInt32BE(pos)
    pos += 4
    if (len < 0) {
      out[i] = null
      continue
    }
    if (pos + len > body.length) throw truncated('DataRow')
    out[i] = body.subarray(pos, pos + len)
    pos += len
  }
  return out
}

/** The body of CommandComplete without its NUL. */
export function decodeCommandTag(body: Buffer): string {
  return body.toString('utf8', 0, body.length > 0 && body[body.length - 1] === 0 ? body.length - 1 : body.length)
}

/** Rows a command tag reports (`INSERT 0 5` → 5, `UPDATE 3` → 3), or null for tags without a count. */
export function tagCount(tag: string): number | null {
  const m = /^(?:INSERT \d+|UPDATE|DELETE|SELECT|MERGE|COPY|FETCH|MOVE) (\d+)$/.exec(tag)
  return m ? Number(m[1]) : null
}

/** The same tag with another row count. */
export function withCount(tag: string, count: number): string {
  return tag.replace(/\d+$/, String(count))
}
