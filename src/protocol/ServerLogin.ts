import { createHash } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import { serialize } from 'pg-protocol/dist/serializer'
import { Parser } from 'pg-protocol/dist/parser'
import type { BackendMessage } from 'pg-protocol/dist/messages'
import sasl from 'pg/lib/crypto/sasl'
import { PgError, SqlState } from './PgError.js'
import { ScramPassThrough, type ScramKeys } from './ScramPassThrough.js'
import { connectWithSharedReads, type ReadSink } from './SharedReads.js'
import { serverTlsOptions, type ServerTls, type ServerTlsMode } from './ServerTls.js'
import { encodeStartup } from './StartupEncoder.js'


export interface ServerEndpoint {
  host: string
  port: number
}

export interface LoginOptions {
  user: string
  database: string
  password?: string
  /** Without a password: the keys of a client's SCRAM log-in to the proxy, to log in the same way (pass-through). */
  scram?: ScramKeys
  /** Extra start-up parameters (application_name, options …). */
  params?: Record<string, string>
  tls: ServerTlsMode
  /** CA file for verify-ca / verify-full. */
  tlsCa?: string
  timeoutMs: number
}

export interface LoggedInServer {
  socket: net.Socket
  /** Where the socket's reads go when it reads into the shared buffer (plain TCP); null: 'data' events (TLS). */
  reads: ReadSink | null
  pid: number
  secret: number
  /** ParameterStatus values the server reported at log-in. */
  params: Map<string, string>
}

/**
 * Opens a connection to a Postgres server and logs in (trust, cleartext, md5 or SCRAM-SHA-256), returning the
 * socket once the server is ready for queries. pg-protocol parses the server's side of the exchange; after
 * log-in the caller reads the socket raw.
 */
export async function loginToServer(endpoint: ServerEndpoint, opts: LoginOptions): Promise<LoggedInServer> {
  const plain = opts.tls === 'disable' ? connectWithSharedReads(endpoint.host, endpoint.port) : null
  let socket: net.Socket = plain?.socket ?? net.connect({ host: endpoint.host, port: endpoint.port, noDelay: true })
  const timer = setTimeout(() => socket.destroy(new PgError(SqlState.SQLCLIENT_UNABLE_TO_ESTABLISH, `timeout after ${opts.timeoutMs} ms connecting to server ${endpoint.host}:${endpoint.port}`)), opts.timeoutMs)
  try {
    await once(socket, 'connect')
    if (opts.tls !== 'disable') socket = await startTls(socket, endpoint, { mode: opts.tls, ca: opts.tlsCa })
    return await authenticate(socket, plain?.reads ?? null, opts)
  } catch (err) {
    socket.destroy()
    throw asPgError(err, endpoint)
  } finally {
    clearTimeout(timer)
  }
}

function asPgError(err: unknown, endpoint: ServerEndpoint): PgError {
  if (err instanceof PgError) return err
  const msg = err instanceof Error ? err.message : String(err)
  return new PgError(SqlState.SQLCLIENT_UNABLE_TO_ESTABLISH, `cannot connect to server ${endpoint.host}:${endpoint.port}: ${msg}`)
}

function once(socket: net.Socket, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      socket.off(event, onEvent)
      reject(e)
    }
    const onEvent = () => {
      socket.off('error', onError)
      resolve()
    }
    socket.once(event, onEvent)
    socket.once('error', onError)
  })
}

async function startTls(socket: net.Socket, endpoint: ServerEndpoint, want: ServerTls): Promise<net.Socket> {
  socket.write(serialize.requestSsl())
  const answer = await new Promise<number>((resolve, reject) => {
    socket.once('data', (b: Buffer) => resolve(b[0]))
    socket.once('error', reject)
  })
  if (answer !== 0x53) {
    if (want.mode !== 'prefer') throw new PgError(SqlState.SQLCLIENT_UNABLE_TO_ESTABLISH, `server ${endpoint.host}:${endpoint.port} does not support TLS`)
    return socket
  }
  const secure = tls.connect({ socket, ...serverTlsOptions(want, endpoint.host) })
  await once(secure, 'secureConnect')
  return secure
}

function md5hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex')
}

function authenticate(socket: net.Socket, reads: ReadSink | null, opts: LoginOptions): Promise<LoggedInServer> {
  return new Promise((resolve, reject) => {
    const parser = new Parser()
    const params = new Map<string, string>()
    let pid = 0
    let secret = 0
    let scram: ReturnType<typeof sasl.startSession> | null = null
    let passThrough: ScramPassThrough | null = null
    // SCRAM's continueSession is async while the parser calls back synchronously: queue the messages.
    let chain = Promise.resolve()
    const needPassword = (): string => {
      if (!opts.password)
        throw new PgError(SqlState.INVALID_PASSWORD, `the server asks a password for user "${opts.user}" but none is configured`, {
          hint: opts.scram
            ? 'Without a password pgshard logs in to servers with SCRAM-SHA-256 only: set the role\'s password with password_encryption = scram-sha-256 and require scram-sha-256 in pg_hba.conf, or set users[].server_password.'
            : 'Set users[].password or users[].server_password in the config.',
        })
      return opts.password
    }
    const onMessage = async (msg: BackendMessage): Promise<void> => {
      switch (msg.name) {
        case 'authenticationOk':
          return
        case 'authenticationCleartextPassword':
          socket.write(serialize.password(needPassword()))
          return
        case 'authenticationMD5Password': {
          const salt = (msg as unknown as { salt: Buffer }).salt
          socket.write(serialize.password('md5' + md5hex(Buffer.concat([Buffer.from(md5hex(needPassword() + opts.user)), salt]))))
          return
        }
        case 'authenticationSASL': {
          const mechanisms = (msg as unknown as { mechanisms: string[] }).mechanisms
          if (!opts.password && opts.scram && mechanisms.includes('SCRAM-SHA-256')) {
            passThrough = new ScramPassThrough(opts.user, opts.scram)
            socket.write(serialize.sendSASLInitialResponseMessage(passThrough.mechanism, passThrough.initialResponse()))
            return
          }
          needPassword()
          scram = sasl.startSession(mechanisms)
          socket.write(serialize.sendSASLInitialResponseMessage(scram.mechanism, scram.response))
          return
        }
        case 'authenticationSASLContinue': {
          const data = (msg as unknown as { data: string }).data
          if (passThrough) {
            socket.write(serialize.sendSCRAMClientFinalMessage(passThrough.serverFirst(data)))
            return
          }
          if (!scram) throw new PgError(SqlState.PROTOCOL_VIOLATION, 'server sent SASLContinue before SASL')
          await sasl.continueSession(scram, needPassword(), data)
          socket.write(serialize.sendSCRAMClientFinalMessage(scram.response))
          return
        }
        case 'authenticationSASLFinal': {
          const data = (msg as unknown as { data: string }).data
          if (passThrough) passThrough.serverFinal(data)
          else if (scram) sasl.finalizeSession(scram, data)
          else throw new PgError(SqlState.PROTOCOL_VIOLATION, 'server sent SASLFinal before SASL')
          return
        }
        case 'parameterStatus': {
          const m = msg as unknown as { parameterName: string; parameterValue: string }
          params.set(m.parameterName, m.parameterValue)
          return
        }
        case 'backendKeyData': {
          const m = msg as unknown as { processID: number; secretKey: number }
          pid = m.processID
          secret = m.secretKey
          return
        }
        case 'readyForQuery':
          finish(null)
          return
        case 'error': {
          const e = msg as unknown as { code?: string; message: string; severity?: string }
          throw new PgError(e.code ?? SqlState.CONNECTION_FAILURE, e.message, { severity: 'FATAL' })
        }
        case 'notice':
          return
        default:
          throw new PgError(SqlState.PROTOCOL_VIOLATION, `unexpected message "${msg.name}" from server during log-in`)
      }
    }
    let done = false
    const finish = (err: unknown): void => {
      if (done) return
      done = true
      if (reads) reads.sink = null
      else socket.off('data', onData)
      socket.off('error', finish)
      socket.off('close', onClose)
      if (err) reject(err)
      else resolve({ socket, reads, pid, secret, params })
    }
    const onData = (chunk: Buffer): void => {
      try {
        parser.parse(chunk, (msg) => {
          chain = chain.then(() => (done ? undefined : onMessage(msg))).catch(finish)
        })
      } catch (err) {
        finish(err)
      }
    }
    const onClose = (): void => finish(new PgError(SqlState.CONNECTION_FAILURE, 'server closed the connection during log-in'))
    // The parser may keep a partial message: give it its own copy of a shared-buffer read.
    if (reads) reads.sink = (chunk) => onData(Buffer.from(chunk))
    else socket.on('data', onData)
    socket.on('error', finish)
    socket.on('close', onClose)
    socket.write(encodeStartup({ user: opts.user, database: opts.database, ...opts.params }))
  })
}
