import net from 'node:net'

// Node's default read path allocates a 64 KB buffer per read and pushes it through the stream machinery. A
// socket opened with `onread` instead gets each read in a buffer it supplies, through a plain callback: every
// plain server socket of the proxy reads into this one buffer. What arrives is only valid during the call;
// whoever keeps bytes (a forwarded span waiting in a corked client socket, a message being inspected) copies them.
const SHARED = Buffer.allocUnsafe(64 * 1024)

export interface ReadSink {
  /** Receives each chunk read; null drops them. The chunk is overwritten by the next read of any socket. */
  sink: ((chunk: Buffer) => void) | null
}

export function connectWithSharedReads(host: string, port: number): { socket: net.Socket; reads: ReadSink } {
  const reads: ReadSink = { sink: null }
  const socket = net.connect({
    host,
    port,
    noDelay: true,
    onread: {
      buffer: SHARED,
      callback: (n: number, buf: Uint8Array) => {
        reads.sink?.((buf as Buffer).subarray(0, n))
        return true
      },
    },
  })
  return { socket, reads }
}
