import { Writer } from 'pg-protocol/dist/buffer-writer'
import { PgError, SqlState } from './PgError.js'

// Decoders for the client messages routing needs, and encoders for the client-style messages the proxy sends
// to servers (renamed statements, injected Parse/Close/Query). Frames are forwarded raw whenever possible.

export const FE = {
  query: 0x51, // Q
  parse: 0x50, // P
  bind: 0x42, // B
  describe: 0x44, // D
  execute: 0x45, // E
  close: 0x43, // C
  sync: 0x53, // S
  flush: 0x48, // H
  terminate: 0x58, // X
  functionCall: 0x46, // F
  copyData: 0x64, // d
  copyDone: 0x63, // c
  copyFail: 0x66, // f
  password: 0x70, // p
} as const

function malformed(what: string): PgError {
  return new PgError(SqlState.PROTOCOL_VIOLATION, `invalid ${what} message format`)
}

/** Reads fields of one message body; every read is bounds-checked and throws 08P01 when the body is short. */
class BodyCursor {
  pos = 0
  constructor(
    private readonly body: Buffer,
    private readonly what: string,
  ) {}

  cstring(): string {
    const end = this.body.indexOf(0, this.pos)
    if (end < 0) throw malformed(this.what)
    const s = this.body.toString('utf8', this.pos, end)
    this.pos = end + 1
    return s
  }

  int16(): number {
    if (this.pos + 2 > this.body.length) throw malformed(this.what)
    const v = this.body.readInt16BE(this.pos)
    this.pos += 2
    return v
  }

  int32(): number {
    if (this.pos + 4 > this.body.length) throw malformed(this.what)
    const v = this.body.readInt32BE(this.pos)
    this.pos += 4
    return v
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.body.length) throw malformed(this.what)
    const b = this.body.subarray(this.pos, this.pos + n)
    this.pos += n
    return b
  }

  end(): void {
    if (this.pos !== this.body.length) throw malformed(this.what)
  }
}

export function decodeQuery(body: Buffer): string {
  const c = new BodyCursor(body, 'Query')
  const text = c.cstring()
  c.end()
  return text
}

export interface ParseMessage {
  name: string
  text: string
  paramTypes: number[]
  /** The body after the name (text + types), reused verbatim when the statement is renamed. */
  tail: Buffer
}

export function decodeParse(body: Buffer): ParseMessage {
  const c = new BodyCursor(body, 'Parse')
  const name = c.cstring()
  const tailStart = c.pos
  const text = c.cstring()
  const n = c.int16()
  if (n < 0) throw malformed('Parse')
  const paramTypes = new Array<number>(n)
  for (let i = 0; i < n; i++) paramTypes[i] = c.int32() >>> 0
  c.end()
  return { name, text, paramTypes, tail: body.subarray(tailStart) }
}

export interface BindMessage {
  portal: string
  statement: string
  paramFormats: number[]
  /** Parameter values as subarrays of the frame (null for SQL NULL). */
  params: (Buffer | null)[]
  resultFormats: number[]
  /** Offset in the body where the statement name ends (the rest is copied verbatim when renaming). */
  tailStart: number
  statementStart: number
}

export function decodeBind(body: Buffer): BindMessage {
  const c = new BodyCursor(body, 'Bind')
  const portal = c.cstring()
  const statementStart = c.pos
  const statement = c.cstring()
  const tailStart = c.pos
  const nf = c.int16()
  if (nf < 0) throw malformed('Bind')
  const paramFormats = new Array<number>(nf)
  for (let i = 0; i < nf; i++) paramFormats[i] = c.int16()
  const np = c.int16()
  if (np < 0) throw malformed('Bind')
  const params = new Array<Buffer | null>(np)
  for (let i = 0; i < np; i++) {
    const len = c.int32()
    params[i] = len === -1 ? null : c.bytes(len)
  }
  const nr = c.int16()
  if (nr < 0) throw malformed('Bind')
  const resultFormats = new Array<number>(nr)
  for (let i = 0; i < nr; i++) resultFormats[i] = c.int16()
  c.end()
  return { portal, statement, paramFormats, params, resultFormats, tailStart, statementStart }
}

/** Format code of parameter i per the Bind's format list (none: all text; one: all that; else each). */
export function paramFormat(formats: number[], i: number): number {
  if (formats.length === 0) return 0
  if (formats.length === 1) return formats[0]
  return formats[i] ?? 0
}

export interface TargetMessage {
  /** 'S' statement or 'P' portal. */
  kind: 'S' | 'P'
  name: string
}

export function decodeTarget(body: Buffer, what: 'Describe' | 'Close'): TargetMessage {
  const c = new BodyCursor(body, what)
  const k = c.bytes(1)[0]
  if (k !== 0x53 && k !== 0x50) throw malformed(what)
  const name = c.cstring()
  c.end()
  return { kind: k === 0x53 ? 'S' : 'P', name }
}

export function decodeExecute(body: Buffer): { portal: string; maxRows: number } {
  const c = new BodyCursor(body, 'Execute')
  const portal = c.cstring()
  const maxRows = c.int32()
  c.end()
  return { portal, maxRows }
}

export function encodeQuery(text: string): Buffer {
  return new Writer().addCString(text).flush(FE.query)
}

export function encodeParse(name: string, text: string, paramTypes: number[]): Buffer {
  const w = new Writer().addCString(name).addCString(text).addInt16(paramTypes.length)
  for (const t of paramTypes) w.addInt32(t)
  return w.flush(FE.parse)
}

/** A Parse body after the statement name (text and types), as `renameParse` takes it. */
export function parseTail(text: string, paramTypes: number[]): Buffer {
  return encodeParse('', text, paramTypes).subarray(6)
}

/** A Parse with a new statement name and the original text and types. */
export function renameParse(name: string, tail: Buffer): Buffer {
  return new Writer().addCString(name).add(tail).flush(FE.parse)
}

/** A Bind whose statement name is replaced; portal and everything after the name are copied. */
export function renameBind(body: Buffer, bind: BindMessage, statement: string): Buffer {
  return new Writer()
    .add(body.subarray(0, bind.statementStart))
    .addCString(statement)
    .add(body.subarray(bind.tailStart))
    .flush(FE.bind)
}

export function encodeTarget(type: 'Describe' | 'Close', kind: 'S' | 'P', name: string): Buffer {
  return new Writer()
    .addString(kind)
    .addCString(name)
    .flush(type === 'Describe' ? FE.describe : FE.close)
}

export function encodeBind(portal: string, statement: string, params: (Buffer | null)[], paramFormats: number[], resultFormats: number[]): Buffer {
  const w = new Writer().addCString(portal).addCString(statement).addInt16(paramFormats.length)
  for (const f of paramFormats) w.addInt16(f)
  w.addInt16(params.length)
  for (const p of params) {
    if (p === null) w.addInt32(-1)
    else w.addInt32(p.length).add(p)
  }
  w.addInt16(resultFormats.length)
  for (const f of resultFormats) w.addInt16(f)
  return w.flush(FE.bind)
}

export function encodeExecute(portal: string, maxRows: number): Buffer {
  return new Writer().addCString(portal).addInt32(maxRows).flush(FE.execute)
}

/** Parse, Bind and Execute of the unnamed statement, without parameters and without a Sync: one statement of a pipeline. */
export function encodeUnnamedRun(text: string, maxRows = 0): Buffer {
  return Buffer.concat([encodeParse('', text, []), encodeBind('', '', [], [], []), encodeExecute('', maxRows)])
}

export const SYNC = Buffer.from([FE.sync, 0, 0, 0, 4])
export const FLUSH = Buffer.from([FE.flush, 0, 0, 0, 4])
export const TERMINATE = Buffer.from([FE.terminate, 0, 0, 0, 4])
export const COPY_DONE = Buffer.from([FE.copyDone, 0, 0, 0, 4])

/** One CopyData message holding `parts`, back to back. */
export function encodeCopyData(parts: Buffer[]): Buffer {
  const w = new Writer()
  for (const p of parts) w.add(p)
  return w.flush(FE.copyData)
}

export function encodeCopyFail(message: string): Buffer {
  return new Writer().addCString(message).flush(FE.copyFail)
}

/** The client's reason in a CopyFail; read leniently: the message only ends a COPY, whatever it says. */
export function decodeCopyFail(body: Buffer): string {
  const nul = body.indexOf(0)
  return body.toString('utf8', 0, nul < 0 ? body.length : nul)
}
