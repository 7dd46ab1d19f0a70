import type { LoggedInServer } from '../src/protocol/ServerLogin.js'
import { BackendScanner, INSPECT, NOTIFY } from '../src/protocol/BackendScanner.js'
import { encodeQuery, TERMINATE } from '../src/protocol/FrontendMessages.js'

const DATA_ROW = 0x44
const ERROR = 0x45
const READY = 0x5a

export interface SlowReadResult {
  rows: number
  bytes: number
  seconds: number
  /** Why the answer is incomplete: the server's error, a stall, a time-out or a broken connection. */
  error?: string
}

/**
 * Sends one query on a logged-in connection and reads its answer no faster than `bytesPerSecond`: after each
 * chunk the socket is paused until the budget catches up, so the kernel's buffers fill and whoever sends to us
 * must hold back (or buffer). Resolves at ReadyForQuery, or with `error` set when the answer cannot complete; the
 * socket is then closed. A plain connection from loginToServer reads into the shared buffer (no 'data' events):
 * its chunks come through `reads`.
 */
export function readSlowly(conn: Pick<LoggedInServer, 'socket' | 'reads'>, sql: string, bytesPerSecond: number, timeoutMs: number): Promise<SlowReadResult> {
  const { socket, reads } = conn
  // A stream whose framing is broken (a lost or repeated byte) leaves the scanner waiting for a message that never
  // ends: with nothing arriving for this long, give up and say how far it got.
  const STALL_MS = 10_000
  return new Promise((resolve) => {
    const began = Date.now()
    let rows = 0
    let bytes = 0
    let error: string | undefined
    let done = false
    const finish = (failure?: string) => {
      if (done) return
      done = true
      clearTimeout(timer)
      clearInterval(stall)
      socket.removeAllListeners('data')
      if (reads) reads.sink = null
      if (failure === undefined) socket.end(TERMINATE)
      else socket.destroy()
      error ??= failure
      resolve({ rows, bytes, seconds: (Date.now() - began) / 1000, ...(error === undefined ? {} : { error }) })
    }
    const scanner = new BackendScanner({
      onHeader: (type) => {
        if (type === DATA_ROW) rows++
        return type === ERROR ? NOTIFY | INSPECT : type === READY ? NOTIFY : 0
      },
      onMessage: (type, body) => {
        if (type === ERROR) error = body?.toString('utf8').replace(/\0/g, ' ').trim()
        else if (type === READY) finish()
      },
      forward: () => {},
    })
    const timer = setTimeout(() => finish(`no complete answer within ${timeoutMs} ms (${rows} DataRows, ${bytes} bytes read)`), timeoutMs)
    let lastData = Date.now()
    const stall = setInterval(() => {
      if (!socket.isPaused() && Date.now() - lastData > STALL_MS) {
        finish(`nothing arrived for ${STALL_MS / 1000} s and no ReadyForQuery: ${rows} DataRows in ${bytes} bytes read (framing broken?)`)
      }
    }, 1000)
    const onChunk = (chunk: Buffer) => {
      lastData = Date.now()
      bytes += chunk.length
      try {
        scanner.scan(chunk)
      } catch (err) {
        finish(err instanceof Error ? err.message : String(err))
        return
      }
      const ahead = bytes / bytesPerSecond - (Date.now() - began) / 1000
      if (ahead > 0) {
        socket.pause()
        setTimeout(() => socket.resume(), ahead * 1000)
      }
    }
    if (reads) reads.sink = onChunk
    else socket.on('data', onChunk)
    socket.on('error', (e) => finish(e.message))
    socket.once('close', () => finish(`connection closed after ${rows} DataRows`))
    socket.write(encodeQuery(sql))
  })
}
