import { INSPECT, NOTIFY, type BackendHandler } from '../protocol/BackendScanner.js'
import { errorField } from '../protocol/ResponseTracker.js'
import { decodeCommandTag, decodeDataRow, decodeRowDescription } from '../protocol/RowMessages.js'
import { messageWithHeader, type FieldDescription, type TxStatus } from '../protocol/ServerMessages.js'
import type { ServerConnection } from '../pool/ServerConnection.js'

export interface ReplySink {
  description?(fields: FieldDescription[]): void
  /** A row; without this sink rows are collected in the reply. */
  row?(values: (Buffer | null)[]): void
  /** The server is ready for COPY data: its CopyInResponse, whole (a copy). */
  copyIn?(message: Buffer): void
  /** COPY … TO: the server's CopyOutResponse, whole (a copy), then each CopyData's body (valid during the call). */
  copyOut?(message: Buffer): void
  copyData?(body: Buffer): void
}

export interface ShardReply {
  fields: FieldDescription[] | null
  rows: (Buffer | null)[][]
  tags: string[]
  /** The Execute's row limit was reached (PortalSuspended): the portal has more rows. */
  suspended: boolean
  /** Per statement answered (several in one Query), in order: its row description and how many of `rows` are its. */
  statements: { fields: FieldDescription[] | null; rows: number }[]
  /** The server's ErrorResponse (whole message) and its SQLSTATE. */
  error: { code: string; message: Buffer } | null
  status: TxStatus
}

const T = {
  rowDescription: 0x54, dataRow: 0x44, commandComplete: 0x43, portalSuspended: 0x73, errorResponse: 0x45, readyForQuery: 0x5a,
  copyInResponse: 0x47, copyOutResponse: 0x48, copyData: 0x64,
}
const INSPECTED = new Set(Object.values(T))

/**
 * Sends a request that ends in a ReadyForQuery (a Query, or extended messages up to Sync) on a connection the
 * caller holds, and reads the reply itself instead of forwarding it: the cross-shard executor merges replies.
 */
export function callShard(conn: ServerConnection, request: Buffer, sink: ReplySink = {}): Promise<ShardReply> {
  return new Promise((resolve, reject) => {
    // Its 'close' came and went: nothing would ever answer.
    if (conn.closed) {
      reject(new Error(`lost the connection to server ${conn.nodeName}`))
      return
    }
    const reply: ShardReply = { fields: null, rows: [], tags: [], suspended: false, statements: [], error: null, status: 'I' }
    let statement: ShardReply['statements'][number] = { fields: null, rows: 0 }
    const handler: BackendHandler = {
      onHeader: (type) => (INSPECTED.has(type) ? NOTIFY | INSPECT : 0),
      forward: () => undefined,
      onMessage: (type, body) => {
        switch (type) {
          case T.rowDescription:
            reply.fields = conn.typeOids === null ? decodeRowDescription(body!) : conn.typeOids.fields(decodeRowDescription(body!))
            statement.fields = reply.fields
            sink.description?.(reply.fields)
            return
          case T.dataRow: {
            const values = decodeDataRow(body!)
            if (sink.row) sink.row(values)
            else {
              reply.rows.push(values)
              statement.rows++
            }
            return
          }
          case T.copyInResponse:
            sink.copyIn?.(messageWithHeader(T.copyInResponse, body!))
            return
          case T.copyOutResponse:
            sink.copyOut?.(messageWithHeader(T.copyOutResponse, body!))
            return
          case T.copyData:
            sink.copyData?.(body!)
            return
          case T.portalSuspended:
            reply.suspended = true
            return
          case T.commandComplete:
            reply.tags.push(decodeCommandTag(body!))
            reply.statements.push(statement)
            statement = { fields: null, rows: 0 }
            return
          case T.errorResponse:
            if (!reply.error) reply.error = { code: errorField(body!, 0x43) ?? 'XX000', message: messageWithHeader(T.errorResponse, body!) }
            return
          case T.readyForQuery:
            reply.status = String.fromCharCode(body![0]) as TxStatus
            conn.tracker.status = reply.status
            done()
            resolve(reply)
        }
      },
    }
    const onClose = () => {
      done()
      reject(new Error(`lost the connection to server ${conn.nodeName}`))
    }
    const done = () => {
      conn.setHandler(null)
      conn.socket.off('close', onClose)
    }
    conn.setHandler(handler)
    conn.socket.once('close', onClose)
    conn.write(request)
  })
}
