/**
 * Contender "buffer-everything": the obvious implementation of the split-and-merge route, for the
 * memory comparison. It fetches the same chunks as the service (BENCH_CHUNKS: the chunk lists the
 * service was seen sending upstream) in parallel, holds every answer whole, JSON.parses each,
 * merges them into one object and JSON.stringifies the whole answer before sending it.
 *
 * Environment: UPSTREAM_URL (the simulator), INCODE_API_KEY, INCODE_ADMIN_EMAIL,
 * INCODE_ADMIN_PASSWORD, PORT, HOST (127.0.0.1), UPSTREAM_CONNECTIONS (32, as the service),
 * BENCH_CHUNKS (JSON array of arrays of image types). Runs as its own process, compiled to JS.
 */
import Fastify from 'fastify'
import { pool, settings } from './upstreamSettings.js'
import { serve } from './serve.js'

const { apiKey, email, password, port, host, plan } = settings

async function post(path: string, headers: Record<string, string>, body: unknown) {
  const res = await pool.request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', 'api-version': '1.0', 'x-api-key': apiKey, ...headers },
    body: JSON.stringify(body),
  })
  const text = await res.body.text()
  return { status: res.statusCode, text }
}

let token: Promise<string> | undefined
function adminToken(): Promise<string> {
  token ??= post('/executive/log-in', {}, { email, password }).then(({ status, text }) => {
    if (status !== 200) throw new Error(`admin log-in answered ${status}`)
    return (JSON.parse(text) as { token: string }).token
  })
  return token
}

/** The service's chunks, restricted to the requested types; types it never planned go in one more chunk. */
function chunksFor(types: string[]): string[][] {
  const wanted = new Set(types)
  const chunks = plan.map((chunk) => chunk.filter((t) => wanted.has(t))).filter((c) => c.length > 0)
  const planned = new Set(chunks.flat())
  const rest = types.filter((t) => !planned.has(t))
  if (rest.length > 0) chunks.push(rest)
  return chunks
}

const app = Fastify({ logger: false })

app.get('/readyz', async () => {
  await adminToken()
  return { status: 'ready' }
})

app.post<{ Params: { interviewId: string }; Body: { images: string[] } }>(
  '/v1/sessions/:interviewId/images',
  async (request, reply) => {
    const types = [...new Set(request.body.images)]
    const hardwareId = await adminToken()
    const path = `/omni/get/images?id=${encodeURIComponent(request.params.interviewId)}`
    // Every answer is held until all have arrived, then parsed, merged and serialised whole.
    const answers = await Promise.all(
      chunksFor(types).map(async (chunk) => ({
        chunk,
        ...(await post(path, { 'x-incode-hardware-id': hardwareId }, { images: chunk })),
      })),
    )
    const merged: { images: Record<string, string>; missing: string[]; errors: Record<string, unknown> } = {
      images: {},
      missing: [],
      errors: {},
    }
    for (const answer of answers) {
      if (answer.status !== 200) {
        for (const type of answer.chunk) merged.errors[type] = { status: answer.status, code: 'UPSTREAM' }
        continue
      }
      const parsed = JSON.parse(answer.text) as Record<string, unknown>
      for (const type of answer.chunk) {
        const value = parsed[type]
        if (typeof value === 'string' && value !== '') merged.images[type] = value
        else merged.missing.push(type)
      }
    }
    return reply.type('application/json').send(JSON.stringify(merged))
  },
)

app.addHook('onClose', () => pool.close())
await serve(app, 'buffer-everything', port, host)
