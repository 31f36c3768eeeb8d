/**
 * Contender "chunk pipe": the floor of any split fetch that answers over one client socket. It
 * fetches the same chunks as the service (BENCH_CHUNKS: the chunk lists the service was seen
 * sending upstream) in parallel and writes their raw bytes out one after another: the first part
 * while it arrives, the others held only until their turn. No parsing, no merging, no checks (the
 * answer is the chunks' bodies back to back, not one JSON document), no auth or limits.
 *
 * Environment: UPSTREAM_URL (the simulator), INCODE_API_KEY, INCODE_ADMIN_EMAIL,
 * INCODE_ADMIN_PASSWORD, PORT, HOST (127.0.0.1), UPSTREAM_CONNECTIONS (32, as the service),
 * BENCH_CHUNKS (JSON array of arrays of image types). Runs as its own process, compiled to JS.
 */
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import { pool, settings } from './upstreamSettings.js'

const { apiKey, email, password, port, host, plan } = settings
const headers = { 'content-type': 'application/json', 'api-version': '1.0', 'x-api-key': apiKey }

let token: Promise<string> | undefined
function adminToken(): Promise<string> {
  token ??= pool
    .request({
      method: 'POST',
      path: '/executive/log-in',
      headers,
      body: JSON.stringify({ email, password }),
    })
    .then(async (res) => {
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`admin log-in answered ${res.statusCode}`)
      return (JSON.parse(text) as { token: string }).token
    })
  return token
}

/** One upstream part: its pieces so far, and whether it has ended. */
interface Part {
  pieces: Buffer[]
  done: boolean
  failed?: Error
  wake?: (() => void) | undefined
}

function fetchPart(path: string, hardwareId: string, chunk: string[]): Part {
  const part: Part = { pieces: [], done: false }
  const notify = () => {
    const wake = part.wake
    part.wake = undefined
    wake?.()
  }
  pool
    .request({
      method: 'POST',
      path,
      headers: { ...headers, 'x-incode-hardware-id': hardwareId },
      body: JSON.stringify({ images: chunk }),
    })
    .then(async (res) => {
      for await (const piece of res.body) {
        part.pieces.push(piece as Buffer)
        notify()
      }
    })
    .catch((err: unknown) => {
      part.failed = err instanceof Error ? err : new Error(String(err))
    })
    .finally(() => {
      part.done = true
      notify()
    })
  return part
}

async function write(res: ServerResponse, piece: Buffer): Promise<void> {
  if (!res.write(piece)) await once(res, 'drain')
}

async function answer(interviewId: string, res: ServerResponse): Promise<void> {
  const hardwareId = await adminToken()
  const path = `/omni/get/images?id=${encodeURIComponent(interviewId)}`
  const parts = plan.map((chunk) => fetchPart(path, hardwareId, chunk))
  res.writeHead(200, { 'content-type': 'application/json' })
  for (const part of parts) {
    for (;;) {
      const piece = part.pieces.shift()
      if (piece) {
        await write(res, piece)
        continue
      }
      if (part.done) break
      await new Promise<void>((resolve) => {
        part.wake = resolve
      })
    }
    if (part.failed) throw part.failed
  }
  res.end()
}

const IMAGES = /^\/v1\/sessions\/([^/?]+)\/images$/

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/readyz') {
    adminToken().then(
      () => res.end('{"status":"ready"}'),
      () => {
        res.statusCode = 503
        res.end()
      },
    )
    return
  }
  const match = req.method === 'POST' ? IMAGES.exec(req.url ?? '') : null
  if (!match?.[1]) {
    res.statusCode = 404
    res.end()
    return
  }
  const interviewId = match[1]
  // The request body (the type list) is read and ignored: the chunks are fixed by BENCH_CHUNKS.
  req.resume()
  req.once('end', () => {
    answer(interviewId, res).catch(() => res.destroy())
  })
})

const stop = () => {
  server.close()
  pool.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

server.listen(port, host, () => {
  process.stdout.write(`chunk-pipe listening on http://${host}:${String(port)}\n`)
})
