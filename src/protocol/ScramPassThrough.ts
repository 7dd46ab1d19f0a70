import { randomBytes, timingSafeEqual } from 'node:crypto'
import { PgError, SqlState } from './PgError.js'
import { hmac, scramAttributes, xor } from './ScramPrimitives.js'
import type { ScramVerifier } from './ScramServer.js'

/** What a client's SCRAM log-in to the proxy leaves: enough to log in to a server that holds the same verifier. */
export interface ScramKeys {
  clientKey: Buffer
  verifier: ScramVerifier
}

/**
 * The client side of SCRAM-SHA-256 without the password: a proof needs only the ClientKey (recovered from the
 * client's own proof) and the StoredKey, and the server's signature is checked with the ServerKey. It works when
 * the server's verifier is the one the client was checked against (same salt and iterations), which is what
 * copying pg_authid.rolpassword into the config, or auth_query, gives.
 */
export class ScramPassThrough {
  readonly mechanism = 'SCRAM-SHA-256'
  private readonly nonce = randomBytes(18).toString('base64')
  private readonly clientFirstBare = `n=*,r=${this.nonce}`
  private expectedServerSignature: Buffer | null = null

  constructor(
    private readonly user: string,
    private readonly keys: ScramKeys,
  ) {}

  /** The client-first-message. */
  initialResponse(): string {
    return `n,,${this.clientFirstBare}`
  }

  /** Takes the server-first-message, returns the client-final-message. */
  serverFirst(message: string): string {
    const attrs = scramAttributes(message)
    const nonce = attrs.get('r')
    const salt = attrs.get('s')
    const iterations = Number(attrs.get('i'))
    if (!nonce?.startsWith(this.nonce) || nonce.length === this.nonce.length || salt === undefined)
      throw new PgError(SqlState.PROTOCOL_VIOLATION, 'malformed SCRAM server-first-message from the server')
    const { verifier } = this.keys
    if (!Buffer.from(salt, 'base64').equals(verifier.salt) || iterations !== verifier.iterations)
      throw new PgError(SqlState.INVALID_PASSWORD, `the server's SCRAM verifier for user "${this.user}" is not the one pgshard checked the client with`, {
        hint: "Copy the role's pg_authid.rolpassword into users[].scram_verifier again (it changes with every password change), or set users[].server_password.",
      })
    const withoutProof = `c=biws,r=${nonce}`
    const authMessage = `${this.clientFirstBare},${message},${withoutProof}`
    const proof = xor(this.keys.clientKey, hmac(verifier.storedKey, authMessage))
    this.expectedServerSignature = hmac(verifier.serverKey, authMessage)
    return `${withoutProof},p=${proof.toString('base64')}`
  }

  /** Checks the server-final-message: the server must prove it knows the verifier too. */
  serverFinal(message: string): void {
    const signature = Buffer.from(scramAttributes(message).get('v') ?? '', 'base64')
    const expected = this.expectedServerSignature
    if (!expected || signature.length !== expected.length || !timingSafeEqual(signature, expected))
      throw new PgError(SqlState.INVALID_PASSWORD, `the server's SCRAM signature for user "${this.user}" does not match: it does not hold that role's verifier`)
  }
}

