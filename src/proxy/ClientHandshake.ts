import net from 'node:net'
import tls from 'node:tls'
import { FrontendReader, type Frame } from '../protocol/FrontendReader.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { PROTOCOL_3_0, decodeStartupPacket } from '../protocol/StartupPacket.js'
import { negotiateProtocolVersion } from '../protocol/ServerMessages.js'

export interface StartupResult {
  socket: net.Socket
  reader: FrontendReader
  params: Map<string, string>
  /** The connection is encrypted. */
  tls: boolean
}

export interface HandshakeOptions {
  tls: tls.SecureContext | null
  tlsRequired: boolean
  maxMessageSize: number
  /** A CancelRequest arrived: the connection ends after it. */
  onCancel(pid: number, secret: Buffer): void
}

/**
 * Reads the untyped start-up packets: SSLRequest (answered S and upgraded when a certificate is configured,
 * N otherwise), GSSENCRequest (N), CancelRequest, and the StartupMessage. Resolves with the client's
 * parameters, or null when the connection was only a cancel request.
 */
export function readStartup(socket: net.Socket, opts: HandshakeOptions): Promise<StartupResult | null> {
  return new Promise((resolve, reject) => {
    let reader = new FrontendReader(opts.maxMessageSize)
    let current = socket
    let encrypted = false
    let negotiations = 0
    const cleanup = () => {
      current.off('data', onData)
      current.off('close', onClose)
      current.off('error', onClose)
    }
    const onClose = () => {
      cleanup()
      resolve(null)
    }
    const fail = (err: unknown) => {
      cleanup()
      reject(err)
    }
    const onData = (chunk: Buffer) => {
      reader.push(chunk)
      try {
        for (;;) {
          const body = reader.nextStartup()
          if (!body) return
          const packet = decodeStartupPacket(body)
          if (packet.kind === 'cancel') {
            cleanup()
            opts.onCancel(packet.pid, packet.secret)
            current.destroy()
            resolve(null)
            return
          }
          if (packet.kind === 'ssl' || packet.kind === 'gssenc') {
            if (++negotiations > 2) throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, 'too many encryption requests')
            if (packet.kind === 'ssl' && opts.tls && !encrypted) {
              // Bytes after the SSLRequest but before the handshake would be unencrypted injection (CVE-2021-23214).
              if (reader.buffered > 0) throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, 'received unencrypted data after SSL request')
              cleanup()
              current.write('S')
              const secure = new tls.TLSSocket(current, { isServer: true, secureContext: opts.tls })
              secure.once('secure', () => {
                encrypted = true
                current = secure
                reader = new FrontendReader(opts.maxMessageSize)
                current.on('data', onData)
                current.on('close', onClose)
                current.on('error', onClose)
              })
              secure.once('error', () => {
                secure.destroy()
                resolve(null)
              })
              return
            }
            current.write('N')
            continue
          }
          if (opts.tlsRequired && !encrypted)
            throw PgError.fatal(SqlState.INVALID_AUTHORIZATION, 'this proxy accepts only TLS connections', 'Connect with sslmode=require.')
          cleanup()
          if (packet.minor > 0 || packet.protocolOptions.length > 0) current.write(negotiateProtocolVersion(PROTOCOL_3_0, packet.protocolOptions))
          resolve({ socket: current, reader, params: packet.params, tls: encrypted })
          return
        }
      } catch (err) {
        fail(err)
      }
    }
    current.on('data', onData)
    current.on('close', onClose)
    current.on('error', onClose)
  })
}

/**
 * The client's typed messages during authentication: one 'data' listener for the whole exchange (so nothing
 * is lost between two reads), removed by `detach()` before the session takes the socket over.
 */
export class HandshakeInput {
  private waiter: { resolve(f: Frame): void; reject(e: unknown): void } | null = null
  private failure: unknown = null

  constructor(
    private readonly socket: net.Socket,
    private readonly reader: FrontendReader,
  ) {
    socket.on('data', this.onData)
    socket.on('close', this.onClose)
  }

  private readonly onData = (chunk: Buffer): void => {
    this.reader.push(chunk)
    this.deliver()
  }

  private readonly onClose = (): void => {
    this.failure = new Error('client disconnected during authentication')
    this.deliver()
  }

  private deliver(): void {
    const w = this.waiter
    if (!w) return
    try {
      const f = this.reader.next()
      if (f) {
        this.waiter = null
        w.resolve(f)
      } else if (this.failure) {
        this.waiter = null
        w.reject(this.failure)
      }
    } catch (err) {
      this.waiter = null
      w.reject(err)
    }
  }

  next(timeoutMs: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null
        reject(PgError.fatal(SqlState.CANNOT_CONNECT_NOW, 'authentication timed out'))
      }, timeoutMs)
      this.waiter = {
        resolve: (f) => {
          clearTimeout(timer)
          resolve(f)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      }
      this.deliver()
    })
  }

  detach(): void {
    this.socket.off('data', this.onData)
    this.socket.off('close', this.onClose)
  }
}
