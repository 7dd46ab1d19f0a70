import { createHash, createHmac } from 'node:crypto'

// What both sides of SCRAM-SHA-256 (RFC 5802, RFC 7677) compute.

export const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest()
export const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest()

/** The `k=value` attributes of a SCRAM message. */
export function scramAttributes(message: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of message.split(',')) {
    if (part.length < 2 || part[1] !== '=') continue
    out.set(part[0], part.slice(2))
  }
  return out
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i]
  return out
}
