import { PgError, SqlState } from './PgError.js'

export const PROTOCOL_3_0 = 196608
export const SSL_REQUEST = 80877103
export const GSSENC_REQUEST = 80877104
export const CANCEL_REQUEST = 80877102

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: Buffer }
  | { kind: 'startup'; minor: number; params: Map<string, string>; protocolOptions: string[] }

/** Decodes the body of an untyped start-up packet (after its length word). */
export function decodeStartupPacket(body: Buffer): StartupPacket {
  const code = body.readInt32BE(0)
  if (code === SSL_REQUEST && body.length === 4) return { kind: 'ssl' }
  if (code === GSSENC_REQUEST && body.length === 4) return { kind: 'gssenc' }
  if (code === CANCEL_REQUEST) {
    // Protocol 3.2 allows secret keys up to 256 bytes; 3.0 has exactly 4.
    if (body.length < 12 || body.length > 264) throw new PgError(SqlState.PROTOCOL_VIOLATION, 'invalid length of cancel request')
    return { kind: 'cancel', pid: body.readInt32BE(4), secret: body.subarray(8) }
  }
  const major = code >>> 16
  const minor = code & 0xffff
  if (major !== 3)
    throw PgError.fatal(
      SqlState.PROTOCOL_VIOLATION,
      `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`,
    )
  const params = new Map<string, string>()
  const protocolOptions: string[] = []
  let pos = 4
  for (;;) {
    const end = body.indexOf(0, pos)
    if (end < 0) throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, 'invalid startup packet layout: expected terminator as last byte')
    if (end === pos) break
    const name = body.toString('utf8', pos, end)
    const vEnd = body.indexOf(0, end + 1)
    if (vEnd < 0) throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, `invalid startup packet layout: missing value for "${name}"`)
    const value = body.toString('utf8', end + 1, vEnd)
    if (name.startsWith('_pq_.')) protocolOptions.push(name)
    else params.set(name, value)
    pos = vEnd + 1
  }
  if (pos !== body.length - 1)
    throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, 'invalid startup packet layout: expected terminator as last byte')
  return { kind: 'startup', minor, params, protocolOptions }
}
