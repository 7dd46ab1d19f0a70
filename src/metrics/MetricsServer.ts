import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'

export interface ReadinessProbe {
  /** null when ready, else why not (shown in the 503 body). */
  notReadyReason(): string | null
}

/**
 * The operators' HTTP endpoint: /metrics for Prometheus, /healthz (the process answers) and /readyz (it can
 * serve: accepting clients, every shard has a primary up) for load balancers.
 */
export class MetricsServer {
  private readonly server: http.Server

  constructor(
    private readonly registry: Registry,
    private readonly readiness: ReadinessProbe,
  ) {
    this.server = http.createServer((req, res) => {
      void this.handle(req, res)
    })
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    try {
      if (path === '/metrics') {
        const body = await this.registry.metrics()
        res.writeHead(200, { 'Content-Type': this.registry.contentType })
        res.end(body)
      } else if (path === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' })
        res.end('ok\n')
      } else if (path === '/readyz') {
        const reason = this.readiness.notReadyReason()
        res.writeHead(reason ? 503 : 200, { 'Content-Type': 'text/plain' })
        res.end(reason ? `not ready: ${reason}\n` : 'ready\n')
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' })
        res.end('not found: try /metrics, /healthz or /readyz\n')
      }
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' })
      res.end(`error: ${err instanceof Error ? err.message : String(err)}\n`)
    }
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve(this.server.address() as AddressInfo)
      })
    })
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }
}
