// Declarations for packages that ship no types.

declare module 'consistent-hash' {
  interface Options {
    range?: number
    weight?: number
    distribution?: 'random' | 'uniform'
    controlPoints?: number[]
  }
  class ConsistentHash {
    constructor(options?: Options)
    add(node: string, weight?: number, points?: number[]): this
    remove(node: string): this
    get(key: string | number, count?: number): string | string[] | null
    getNodes(): string[]
    getPoints(node: string): number[]
  }
  export = ConsistentHash
}

declare module 'pg/lib/crypto/sasl' {
  export interface ScramSession {
    mechanism: string
    clientNonce: string
    response: string
    message: string
    serverSignature?: string
  }
  export function startSession(mechanisms: string[], stream?: unknown): ScramSession
  export function continueSession(session: ScramSession, password: string, serverData: string, stream?: unknown): Promise<void>
  export function finalizeSession(session: ScramSession, serverData: string): void
  const sasl: {
    startSession: typeof startSession
    continueSession: typeof continueSession
    finalizeSession: typeof finalizeSession
  }
  export default sasl
}
