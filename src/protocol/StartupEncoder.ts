import { Writer } from 'pg-protocol/dist/buffer-writer'
import { PROTOCOL_3_0 } from './StartupPacket.js'

/**
 * A StartupMessage with exactly these parameters. (pg-protocol's serializer always adds client_encoding, which
 * would override what a client asked for.)
 */
export function encodeStartup(params: Record<string, string>): Buffer {
  const w = new Writer().addInt32(PROTOCOL_3_0)
  for (const [k, v] of Object.entries(params)) w.addCString(k).addCString(v)
  const body = w.addCString('').flush()
  const out = Buffer.allocUnsafe(body.length + 4)
  out.writeInt32BE(out.length, 0)
  body.copy(out, 4)
  return out
}
