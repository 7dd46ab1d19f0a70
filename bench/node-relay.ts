// The floor of Node's socket path: a TCP relay that copies bytes between each client and a server connection of
// its own, with no framing, routing or pooling. Run by NodeRelayTarget; pgshard can only be slower than this.
// usage: node-relay.ts LISTEN_PORT BACKEND_HOST BACKEND_PORT
import net from 'node:net'

const [listenPort, backendHost, backendPort] = process.argv.slice(2)
if (!listenPort || !backendHost || !backendPort) {
  process.stderr.write('usage: node-relay.ts LISTEN_PORT BACKEND_HOST BACKEND_PORT\n')
  process.exit(2)
}

const server = net.createServer({ noDelay: true }, (client) => {
  const backend = net.connect({ host: backendHost, port: Number(backendPort), noDelay: true })
  // pipe() is Node's own backpressure in both directions.
  client.pipe(backend)
  backend.pipe(client)
  const end = () => {
    client.destroy()
    backend.destroy()
  }
  client.on('error', end).on('close', end)
  backend.on('error', end).on('close', end)
})
server.listen(Number(listenPort), '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
