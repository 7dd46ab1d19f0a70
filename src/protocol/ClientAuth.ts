import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { UserConfig } from '../config/ConfigSchema.js'
import type { Frame } from './FrontendReader.js'
import { PgError, SqlState } from './PgError.js'
import type { ScramKeys } from './ScramPassThrough.js'
import { ScramServer, makeScramVerifier, mockScramVerifier, parseScramVerifier, type ScramVerifier } from './ScramServer.js'
import { AUTH_OK, authMd5, authSasl, authSaslContinue, authSaslFinal } from './ServerMessages.js'

/** Reads the client's next message during authentication (rejects when the client goes away or times out). */
export type NextFrame = () => Promise<Frame>

const PASSWORD_MESSAGE = 0x70

function authFailed(user: string): PgError {
  return PgError.fatal(SqlState.INVALID_PASSWORD, `password authentication failed for user "${user}"`)
}

function expectPassword(frame: Frame): Buffer {
  if (frame.type !== PASSWORD_MESSAGE)
    throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, `expected password response, got message type ${frame.type}`)
  return frame.body
}

/** SCRAM verifiers per user, derived once per config load (PBKDF2 is deliberately slow). */
export class VerifierCache {
  private readonly byUser = new Map<string, { source: string; verifier: ScramVerifier }>()

  get(user: UserConfig): ScramVerifier | null {
    const source = user.scram_verifier ?? user.password
    if (!source) return null
    const hit = this.byUser.get(user.name)
    if (hit && hit.source === source) return hit.verifier
    const verifier = user.scram_verifier ? parseScramVerifier(user.scram_verifier) : makeScramVerifier(user.password!)
    if (!verifier) return null
    this.byUser.set(user.name, { source, verifier })
    return verifier
  }
}

/**
 * Authenticates a client as `userName` by the method its config entry asks for. An unknown user goes through
 * the same exchange as a known one and fails the same way, so that probing cannot tell which users exist.
 * Resolves with the keys of a SCRAM log-in (to log in to servers without a password), else null.
 */
export async function authenticateClient(
  userName: string,
  user: UserConfig | undefined,
  verifiers: VerifierCache,
  send: (b: Buffer) => void,
  next: NextFrame,
): Promise<ScramKeys | null> {
  const method = user?.auth ?? 'scram-sha-256'
  if (method === 'trust' && user) {
    send(AUTH_OK)
    return null
  }
  if (method === 'md5') {
    const salt = randomBytes(4)
    send(authMd5(salt))
    const body = expectPassword(await next())
    const got = body.toString('utf8', 0, Math.max(0, body.indexOf(0)))
    const inner = createHash('md5').update(user!.password! + userName).digest('hex')
    const want = 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')
    if (got.length !== want.length || !timingSafeEqual(Buffer.from(got), Buffer.from(want))) throw authFailed(userName)
    send(AUTH_OK)
    return null
  }
  const verifier = (user && verifiers.get(user)) ?? mockScramVerifier(userName)
  const scram = new ScramServer(verifier)
  send(authSasl(['SCRAM-SHA-256']))
  const initial = expectPassword(await next())
  const mechEnd = initial.indexOf(0)
  if (mechEnd < 0 || initial.length < mechEnd + 5) throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, 'malformed SASLInitialResponse')
  const mechanism = initial.toString('utf8', 0, mechEnd)
  if (mechanism !== 'SCRAM-SHA-256')
    throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, `client selected an invalid SASL authentication mechanism "${mechanism}"`)
  const len = initial.readInt32BE(mechEnd + 1)
  const data = initial.subarray(mechEnd + 5)
  if (len !== data.length) throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, 'malformed SASLInitialResponse: length mismatch')
  send(authSaslContinue(scram.clientFirst(data)))
  const final = scram.clientFinal(expectPassword(await next()))
  if (final === null || !user || !scram.clientKey) throw authFailed(userName)
  send(authSaslFinal(final))
  send(AUTH_OK)
  return { clientKey: scram.clientKey, verifier }
}
