import type net from 'node:net'
import { FE, decodeBind, decodeExecute, decodeParse, decodeQuery, decodeTarget } from '../protocol/FrontendMessages.js'
import { printable, type Frame, type FrontendReader } from '../protocol/FrontendReader.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import {
  BIND_COMPLETE,
  CLOSE_COMPLETE,
  EMPTY_QUERY,
  NO_DATA,
  PARSE_COMPLETE,
  errorResponse,
  parameterDescription,
  readyForQuery,
} from '../protocol/ServerMessages.js'
import type { AdminClient } from '../proxy/ProxyServer.js'
import type { AdminResult } from './AdminCommand.js'
import type { AdminContext } from './AdminContext.js'
import { AdminDispatcher, type ParsedCommand } from './AdminDispatcher.js'
import { describeColumns, encodeRows } from './AdminResultEncoder.js'

/** Statements and portals one console client keeps; bounded so that a client cannot grow them without end. */
const MAX_NAMED = 100

/**
 * The admin console: psql (simple Query) and drivers (Parse/Bind/Describe/Execute/Sync) talk to it over the
 * normal protocol. Commands run one at a time per client; a failed command answers an error and the console
 * goes on. Every client connected to it is tracked so that shutdown can close them.
 */
export class AdminConsole {
  readonly dispatcher: AdminDispatcher
  private readonly clients = new Set<AdminConnection>()

  constructor(private readonly ctx: AdminContext) {
    this.dispatcher = new AdminDispatcher(ctx.commands)
  }

  serve(client: AdminClient): void {
    const conn = new AdminConnection(client.socket, client.reader, this.ctx, this.dispatcher, () => this.clients.delete(conn))
    this.clients.add(conn)
    this.ctx.log.info({ user: client.user.name, console_client: conn.id }, 'admin console client connected')
  }

  get connected(): number {
    return this.clients.size
  }

  /** Ends every console session (the proxy is stopping). */
  closeAll(): void {
    for (const c of [...this.clients]) c.terminate(PgError.fatal(SqlState.ADMIN_SHUTDOWN, 'terminating connection due to administrator command'))
  }
}

let nextId = 1

class AdminConnection {
  readonly id = nextId++
  private readonly statements = new Map<string, string>()
  private readonly portals = new Map<string, string>()
  private skipToSync = false
  private running = false
  private closed = false

  constructor(
    private readonly socket: net.Socket,
    private readonly reader: FrontendReader,
    private readonly ctx: AdminContext,
    private readonly dispatcher: AdminDispatcher,
    private readonly onClose: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk)
      void this.pump()
    })
    socket.on('close', () => this.close())
    socket.on('error', () => this.close())
    // The client may have sent its first query together with the end of the log-in.
    void this.pump()
  }

  private async pump(): Promise<void> {
    if (this.running || this.closed) return
    this.running = true
    try {
      for (;;) {
        if (this.closed) return
        const frame = this.reader.next()
        if (!frame) break
        await this.handle(frame)
      }
    } catch (err) {
      // Only a broken frame gets here (a bad length, an oversized message): the stream cannot be resynchronised.
      this.terminate(err instanceof PgError ? PgError.fatal(err.code, err.message) : PgError.fatal(SqlState.INTERNAL_ERROR, String(err)))
    } finally {
      this.running = false
    }
  }

  private async handle(frame: Frame): Promise<void> {
    if (frame.type === FE.terminate) return this.close()
    if (frame.type === FE.query) return this.onQuery(frame)
    if (frame.type === FE.sync) {
      this.skipToSync = false
      return this.send(readyForQuery('I'))
    }
    if (this.skipToSync) return
    try {
      await this.extended(frame)
    } catch (err) {
      this.skipToSync = true
      this.send(errorResponse(asPgError(err)))
    }
  }

  private async onQuery(frame: Frame): Promise<void> {
    const out: Buffer[] = []
    try {
      const text = decodeQuery(frame.body)
      if (text.trim().replace(/;+\s*$/, '') === '') out.push(EMPTY_QUERY)
      else {
        const parsed = this.dispatcher.parse(text)
        const result = await this.execute(parsed)
        if (parsed.command.columns.length > 0) out.push(describeColumns(parsed.command.columns))
        out.push(...encodeRows(result.rows, result.tag, result.notices))
      }
    } catch (err) {
      out.push(errorResponse(asPgError(err)))
    }
    out.push(readyForQuery('I'))
    this.send(Buffer.concat(out))
  }

  /** Parse, Bind, Describe, Execute, Close, Flush: enough for drivers that always use the extended protocol. */
  private async extended(frame: Frame): Promise<void> {
    switch (frame.type) {
      case FE.parse: {
        const p = decodeParse(frame.body)
        if (p.text.trim() !== '') this.dispatcher.parse(p.text)
        remember(this.statements, p.name, p.text)
        return this.send(PARSE_COMPLETE)
      }
      case FE.bind: {
        const b = decodeBind(frame.body)
        const text = this.statements.get(b.statement)
        if (text === undefined) throw missing('prepared statement', b.statement)
        if (b.params.length > 0) throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, 'admin console commands take no parameters')
        remember(this.portals, b.portal, text)
        return this.send(BIND_COMPLETE)
      }
      case FE.describe: {
        const d = decodeTarget(frame.body, 'Describe')
        const text = (d.kind === 'S' ? this.statements : this.portals).get(d.name)
        if (text === undefined) throw missing(d.kind === 'S' ? 'prepared statement' : 'portal', d.name)
        const columns = text.trim() === '' ? [] : this.dispatcher.parse(text).command.columns
        const head = d.kind === 'S' ? [parameterDescription([])] : []
        return this.send(Buffer.concat([...head, columns.length > 0 ? describeColumns(columns) : NO_DATA]))
      }
      case FE.execute: {
        const { portal } = decodeExecute(frame.body)
        const text = this.portals.get(portal)
        if (text === undefined) throw missing('portal', portal)
        if (text.trim() === '') return this.send(EMPTY_QUERY)
        const result = await this.execute(this.dispatcher.parse(text))
        return this.send(Buffer.concat(encodeRows(result.rows, result.tag, result.notices)))
      }
      case FE.close: {
        const c = decodeTarget(frame.body, 'Close')
        ;(c.kind === 'S' ? this.statements : this.portals).delete(c.name)
        return this.send(CLOSE_COMPLETE)
      }
      case FE.flush:
        return
      default:
        throw new PgError(SqlState.PROTOCOL_VIOLATION, `the admin console does not accept message type "${printable(frame.type)}"`)
    }
  }

  private execute({ command, arg }: ParsedCommand): Promise<AdminResult> | AdminResult {
    this.ctx.log.info({ command: command.words.join(' '), console_client: this.id }, 'admin console command')
    return command.run(this.ctx, arg)
  }

  private send(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes)
  }

  terminate(err: PgError): void {
    if (this.closed) return
    this.socket.end(errorResponse(err))
    this.close()
  }

  private close(): void {
    if (this.closed) return
    this.closed = true
    this.socket.destroy()
    this.onClose()
  }
}

function remember(map: Map<string, string>, name: string, text: string): void {
  if (!map.has(name) && map.size >= MAX_NAMED) throw new PgError(SqlState.PROGRAM_LIMIT_EXCEEDED, `at most ${MAX_NAMED} named statements or portals per console client`)
  map.set(name, text)
}

function missing(what: string, name: string): PgError {
  return new PgError(what === 'portal' ? SqlState.INVALID_CURSOR_NAME : SqlState.INVALID_SQL_STATEMENT_NAME, `${what} "${name}" does not exist`)
}

/** Errors of commands reach the client as they are; anything unexpected becomes an internal error. */
function asPgError(err: unknown): PgError {
  if (err instanceof PgError) return err
  const e = err as { code?: unknown; message?: unknown }
  if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return new PgError(e.code, String(e.message))
  return new PgError(SqlState.INTERNAL_ERROR, `admin command failed: ${err instanceof Error ? err.message : String(err)}`)
}
