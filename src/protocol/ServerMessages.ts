import { Writer } from 'pg-protocol/dist/buffer-writer'
import { PgError } from './PgError.js'

// Messages the proxy sends to clients as if it were a server. Forwarded traffic never goes through here.

const TYPE = {
  authentication: 0x52, // R
  parameterStatus: 0x53, // S
  backendKeyData: 0x4b, // K
  readyForQuery: 0x5a, // Z
  errorResponse: 0x45, // E
  noticeResponse: 0x4e, // N
  rowDescription: 0x54, // T
  dataRow: 0x44, // D
  commandComplete: 0x43, // C
  emptyQuery: 0x49, // I
  parseComplete: 0x31, // 1
  bindComplete: 0x32, // 2
  closeComplete: 0x33, // 3
  noData: 0x6e, // n
  parameterDescription: 0x74, // t
  negotiateProtocol: 0x76, // v
  copyData: 0x64, // d
  copyDone: 0x63, // c
  notificationResponse: 0x41, // A
  portalSuspended: 0x73, // s
} as const

export type TxStatus = 'I' | 'T' | 'E'

const fixed = (type: number): Buffer => Buffer.from([type, 0, 0, 0, 4])

export const PARSE_COMPLETE = fixed(TYPE.parseComplete)
export const BIND_COMPLETE = fixed(TYPE.bindComplete)
export const CLOSE_COMPLETE = fixed(TYPE.closeComplete)
export const NO_DATA = fixed(TYPE.noData)
export const EMPTY_QUERY = fixed(TYPE.emptyQuery)
/** An Execute's row limit was reached (instead of CommandComplete). */
export const PORTAL_SUSPENDED = fixed(TYPE.portalSuspended)
/** The end of a COPY … TO's data. */
export const COPY_DONE_REPLY = fixed(TYPE.copyDone)
export const AUTH_OK = new Writer().addInt32(0).flush(TYPE.authentication)
const READY: Record<TxStatus, Buffer> = {
  I: Buffer.from([TYPE.readyForQuery, 0, 0, 0, 5, 0x49]),
  T: Buffer.from([TYPE.readyForQuery, 0, 0, 0, 5, 0x54]),
  E: Buffer.from([TYPE.readyForQuery, 0, 0, 0, 5, 0x45]),
}

export function readyForQuery(status: TxStatus): Buffer {
  return READY[status]
}

export function authSasl(mechanisms: string[]): Buffer {
  const w = new Writer().addInt32(10)
  for (const m of mechanisms) w.addCString(m)
  return w.addCString('').flush(TYPE.authentication)
}

export function authSaslContinue(data: string): Buffer {
  return new Writer().addInt32(11).addString(data).flush(TYPE.authentication)
}

export function authSaslFinal(data: string): Buffer {
  return new Writer().addInt32(12).addString(data).flush(TYPE.authentication)
}

export function authMd5(salt: Buffer): Buffer {
  return new Writer().addInt32(5).add(salt).flush(TYPE.authentication)
}

export function parameterStatus(name: string, value: string): Buffer {
  return new Writer().addCString(name).addCString(value).flush(TYPE.parameterStatus)
}

export function backendKeyData(pid: number, secret: number): Buffer {
  return new Writer().addInt32(pid).addInt32(secret).flush(TYPE.backendKeyData)
}

export function notificationResponse(pid: number, channel: string, payload: string): Buffer {
  return new Writer().addInt32(pid).addCString(channel).addCString(payload).flush(TYPE.notificationResponse)
}

export function negotiateProtocolVersion(version: number, unsupportedOptions: string[]): Buffer {
  const w = new Writer().addInt32(version).addInt32(unsupportedOptions.length)
  for (const o of unsupportedOptions) w.addCString(o)
  return w.flush(TYPE.negotiateProtocol)
}

function noticeFields(type: number, severity: string, code: string, message: string, detail?: string, hint?: string): Buffer {
  const w = new Writer()
  w.addString('S').addCString(severity)
  w.addString('V').addCString(severity)
  w.addString('C').addCString(code)
  w.addString('M').addCString(message)
  if (detail) w.addString('D').addCString(detail)
  if (hint) w.addString('H').addCString(hint)
  w.addCString('')
  return w.flush(type)
}

export function errorResponse(err: PgError): Buffer {
  return noticeFields(TYPE.errorResponse, err.severity, err.code, err.message, err.options.detail, err.options.hint)
}

export function noticeResponse(message: string, code = '00000', severity = 'NOTICE'): Buffer {
  return noticeFields(TYPE.noticeResponse, severity, code, message)
}

export function commandComplete(tag: string): Buffer {
  return new Writer().addCString(tag).flush(TYPE.commandComplete)
}

export function parameterDescription(typeOids: number[]): Buffer {
  const w = new Writer().addInt16(typeOids.length)
  for (const oid of typeOids) w.addInt32(oid)
  return w.flush(TYPE.parameterDescription)
}

export interface FieldDescription {
  name: string
  tableOid?: number
  columnAttr?: number
  typeOid: number
  /** The shard's own OID of a created type when it differs from the default shard's (typeOid then holds that). */
  serverTypeOid?: number
  typeSize?: number
  typeModifier?: number
  format?: number
}

export const TEXT_OID = 25
export const INT8_OID = 20
export const INT4_OID = 23

export function rowDescription(fields: FieldDescription[]): Buffer {
  const w = new Writer().addInt16(fields.length)
  for (const f of fields) {
    w.addCString(f.name)
      .addInt32(f.tableOid ?? 0)
      .addInt16(f.columnAttr ?? 0)
      .addInt32(f.typeOid)
      .addInt16(f.typeSize ?? -1)
      .addInt32(f.typeModifier ?? -1)
      .addInt16(f.format ?? 0)
  }
  return w.flush(TYPE.rowDescription)
}

/** A DataRow; values already encoded (text or binary) or null. */
/** A CopyData message around `body` (copied). */
export function copyData(body: Buffer): Buffer {
  return messageWithHeader(TYPE.copyData, body)
}

export function dataRow(values: (Buffer | string | null)[]): Buffer {
  const w = new Writer().addInt16(values.length)
  for (const v of values) {
    if (v === null) w.addInt32(-1)
    else if (typeof v === 'string') w.addInt32PrefixedString(v)
    else w.addInt32(v.length).add(v)
  }
  return w.flush(TYPE.dataRow)
}

/** A whole message from a type and a body (a server message the proxy read and passes on). */
export function messageWithHeader(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 5)
  out[0] = type
  out.writeInt32BE(body.length + 4, 1)
  body.copy(out, 5)
  return out
}
