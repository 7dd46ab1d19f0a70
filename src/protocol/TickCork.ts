import type { Socket } from 'node:net'

const corked = new WeakSet<Socket>()

/**
 * Writes to a socket corked until the end of the current tick, so that the messages of one reply (or one
 * pipelined batch) leave in one writev instead of one syscall each.
 */
export function writeCorked(socket: Socket, bytes: Buffer): boolean {
  if (!corked.has(socket)) {
    corked.add(socket)
    socket.cork()
    process.nextTick(() => {
      corked.delete(socket)
      socket.uncork()
    })
  }
  return socket.write(bytes)
}
