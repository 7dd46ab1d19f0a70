import net from 'node:net'
import { encodeStartup } from '../../src/protocol/StartupEncoder.js'

export interface ServerMessage {
  type: string
  body: Buffer
}

/** A bare TCP client speaking bytes to the proxy, reading its replies as messages: for malformed input. */
export class RawClient {
  private buffer = Buffer.alloc(0)
  private closed = false
  private readonly waiters: (() => void)[] = []

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (b: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, b])
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    socket.on('error', () => undefined)
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s)))
      s.once('error', reject)
    })
  }

  /** Connects and logs in as a trust-authenticated user, reading up to ReadyForQuery. */
  static async login(port: number, user: string, database = 'app'): Promise<RawClient> {
    const c = await RawClient.connect(port)
    c.send(encodeStartup({ user, database }))
    const msgs = await c.until('Z')
    if (!msgs.some((m) => m.type === 'R')) throw new Error(`no authentication from the proxy: ${msgs.map((m) => m.type).join('')}`)
    return c
  }

  send(bytes: Buffer | string): void {
    this.socket.write(bytes)
  }

  /** Writes, and waits while the socket's buffer is full (the proxy is not reading). */
  write(bytes: Buffer): Promise<void> {
    if (this.socket.write(bytes) || this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done).off('close', done)
        resolve()
      }
      this.socket.on('drain', done).on('close', done)
    })
  }

  /** Messages up to and including the first of type `type` (or until the proxy closes), within the timeout. */
  async until(type: string, timeoutMs = 5000): Promise<ServerMessage[]> {
    const out: ServerMessage[] = []
    const deadline = Date.now() + timeoutMs
    for (;;) {
      while (this.buffer.length >= 5) {
        const len = this.buffer.readInt32BE(1)
        if (this.buffer.length < len + 1) break
        const m = { type: String.fromCharCode(this.buffer[0]), body: this.buffer.subarray(5, len + 1) }
        this.buffer = this.buffer.subarray(len + 1)
        out.push(m)
        if (m.type === type) return out
      }
      if (this.closed || Date.now() > deadline) return out
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Resolves true once the proxy has closed the connection (false after the timeout). */
  async closedByServer(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    return this.closed
  }

  end(): void {
    this.socket.destroy()
  }
}

/** SQLSTATE and message of an ErrorResponse body. */
export function errorFields(body: Buffer): { code?: string; message?: string; severity?: string; hint?: string } {
  const out: Record<string, string> = {}
  let pos = 0
  while (pos < body.length && body[pos] !== 0) {
    const end = body.indexOf(0, pos + 1)
    out[String.fromCharCode(body[pos])] = body.toString('utf8', pos + 1, end)
    pos = end + 1
  }
  return { code: out.C, message: out.M, severity: out.S, hint: out.H }
}
