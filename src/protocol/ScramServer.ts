import { createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import { PgError, SqlState } from './PgError.js'
import { hmac, scramAttributes, sha256, xor } from './ScramPrimitives.js'

// The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677), as Postgres speaks it: the user name in the client's
// message is ignored (the start-up packet names the user), channel binding is not offered.

export interface ScramVerifier {
  iterations: number
  salt: Buffer
  storedKey: Buffer
  serverKey: Buffer
}

/** Parses `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, the form of pg_authid.rolpassword. */
export function parseScramVerifier(text: string): ScramVerifier | null {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(text)
  if (!m) return null
  return {
    iterations: Number(m[1]),
    salt: Buffer.from(m[2], 'base64'),
    storedKey: Buffer.from(m[3], 'base64'),
    serverKey: Buffer.from(m[4], 'base64'),
  }
}

/** The verifier Postgres would store for this password (SASLprep reduced to NFKC, as libpq does for ASCII). */
export function makeScramVerifier(password: string, salt = randomBytes(16), iterations = 4096): ScramVerifier {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const clientKey = hmac(salted, 'Client Key')
  return { iterations, salt, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') }
}

const MOCK_SECRET = randomBytes(32)

/**
 * For a user that does not exist: the same salt every time for the same name (so probing cannot tell it from a
 * real user) and keys no password matches.
 */
export function mockScramVerifier(user: string): ScramVerifier {
  const salt = createHmac('sha256', MOCK_SECRET).update(user).digest().subarray(0, 16)
  return { iterations: 4096, salt, storedKey: randomBytes(32), serverKey: randomBytes(32) }
}

function badMessage(detail: string): PgError {
  return new PgError(SqlState.PROTOCOL_VIOLATION, 'malformed SCRAM message', { detail, severity: 'FATAL' })
}

export class ScramServer {
  private clientFirstBare = ''
  private serverFirst = ''
  private nonce = ''
  private gs2 = ''
  /** The client's ClientKey, known once its proof checked out: it can log in to servers with the same verifier. */
  clientKey: Buffer | null = null

  constructor(private readonly verifier: ScramVerifier) {}

  /** Takes the client-first-message, returns the server-first-message. */
  clientFirst(data: Buffer): string {
    const text = data.toString('utf8')
    // gs2 header: "n,," (no channel binding) or "y,," (client could, but we did not offer it).
    const m = /^([ny]),(a=[^,]*)?,(.*)$/.exec(text)
    if (!m) {
      if (text.startsWith('p=')) throw badMessage('channel binding is not supported by this proxy; use SCRAM-SHA-256')
      throw badMessage('unexpected GS2 header')
    }
    this.clientFirstBare = m[3]
    const clientNonce = scramAttributes(this.clientFirstBare).get('r')
    if (!clientNonce || /[^\x21-\x2b\x2d-\x7e]/.test(clientNonce)) throw badMessage('missing or invalid client nonce')
    this.nonce = clientNonce + randomBytes(18).toString('base64')
    this.serverFirst = `r=${this.nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`
    this.gs2 = text.slice(0, text.length - this.clientFirstBare.length)
    return this.serverFirst
  }

  /** Checks the client-final-message; on success returns the server-final-message. */
  clientFinal(data: Buffer): string | null {
    const text = data.toString('utf8')
    const proofAt = text.lastIndexOf(',p=')
    if (proofAt < 0) throw badMessage('missing proof')
    const withoutProof = text.slice(0, proofAt)
    const attrs = scramAttributes(withoutProof)
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64')
    const binding = attrs.get('c')
    if (binding === undefined || Buffer.from(binding, 'base64').toString('utf8') !== this.gs2) throw badMessage('channel binding data does not match')
    if (attrs.get('r') !== this.nonce) throw badMessage('nonce does not match')
    if (proof.length !== 32) return null
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`
    const clientKey = xor(proof, hmac(this.verifier.storedKey, authMessage))
    if (!timingSafeEqual(sha256(clientKey), this.verifier.storedKey)) return null
    this.clientKey = clientKey
    return `v=${hmac(this.verifier.serverKey, authMessage).toString('base64')}`
  }
}
