import { readFileSync } from 'node:fs'
import net from 'node:net'
import type tls from 'node:tls'

/** How the proxy asks for TLS towards a server, as libpq's sslmode names it. */
export type ServerTlsMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'

export interface ServerTls {
  mode: ServerTlsMode
  /** PEM file of the CAs that sign the servers' certificates (verify-*); absent: Node's bundled CAs. */
  ca?: string
}

/**
 * tls.connect options towards a server at `host`. prefer/require encrypt without checking who answers (servers of
 * a private network usually carry self-signed certificates); verify-ca checks the chain against the CA file,
 * verify-full also that the certificate names `host`. The CA file is read at each connection, so a rotated file
 * is picked up without a reload.
 */
export function serverTlsOptions(t: ServerTls, host: string): tls.ConnectionOptions {
  const servername = net.isIP(host) ? undefined : host
  if (t.mode !== 'verify-ca' && t.mode !== 'verify-full') return { servername, rejectUnauthorized: false }
  return {
    servername,
    // Over an existing socket tls.connect knows no host: verify-full compares the certificate with this one.
    host,
    rejectUnauthorized: true,
    ...(t.ca ? { ca: readFileSync(t.ca) } : {}),
    ...(t.mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
  }
}
