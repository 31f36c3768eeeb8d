/**
 * Contender "Fastify + the same plugins": the fair ceiling of the warm links answer. One POST route
 * answering the bytes in BODY_FILE (the service's own warm links answer, pre-serialised), with
 * what every request of the service must pay, each done the standard way with the library the
 * service uses:
 * - the partner key: SHA-256 of `x-api-key` looked up in a Map of configured digests, 401 otherwise;
 * - @fastify/rate-limit, global, the same limit and window, keyed by the partner the key names;
 * - helmet's security headers: the `helmet` package's middleware (built once, with the service's
 *   options) run on every request, as an Express app would run it;
 * - a prom-client histogram of route latency (method, route, status), observed in onResponse;
 * - a request id (the caller's `x-request-id` or a random UUID), returned in `x-request-id`;
 * - the request validated against the service's own TypeBox schemas (body and path), with the
 *   service's Ajv options;
 * - Fastify's logger at the service's level, and the answer's own headers (`cache-control`,
 *   `x-cache`), so the two answers carry the same header names.
 * Not the service's own work: no link cache lookup, access trail, or cache scoping.
 *
 * Environment: BODY_FILE, API_KEY_SHA256 (hex digest of the one partner key), RATE_LIMIT_MAX,
 * RATE_LIMIT_WINDOW_MS, SCHEMAS (JSON: `{ shared, body, params }`, the service's schemas as the
 * bench serialised them), LOG_LEVEL (warn), PORT, HOST (127.0.0.1). Runs as its own process,
 * compiled to JS by the bench.
 */
import { createHash, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import rateLimit from '@fastify/rate-limit'
import Fastify, { type FastifySchema } from 'fastify'
import helmet from 'helmet'
import { Histogram, Registry } from 'prom-client'
import { serve } from './serve.js'

const file = process.env.BODY_FILE
if (!file) throw new Error('BODY_FILE is required')
const digest = process.env.API_KEY_SHA256
if (!digest) throw new Error('API_KEY_SHA256 is required')
const answer = readFileSync(file)
const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'
const schemas = JSON.parse(process.env.SCHEMAS ?? '{}') as {
  shared?: object[]
  body?: object
  params?: object
}
if (!schemas.body || !schemas.params) throw new Error('SCHEMAS must hold the body and params schemas')

const partners = new Map<string, string>([[digest.toLowerCase(), 'bench']])

declare module 'fastify' {
  interface FastifyRequest {
    partnerName: string | undefined
  }
}

const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? 'warn' },
  requestIdHeader: 'x-request-id',
  genReqId: () => randomUUID(),
  ajv: {
    customOptions: { removeAdditional: false, allErrors: false, coerceTypes: false, useDefaults: true },
  },
})
for (const schema of schemas.shared ?? []) app.addSchema(schema)
app.decorateRequest('partnerName', undefined)

// Security headers: helmet's middleware with the service's options, on every answer.
const securityHeaders = helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } })
app.addHook('onRequest', (request, reply, done) => {
  securityHeaders(request.raw, reply.raw, (err?: unknown) => {
    done(err instanceof Error ? err : undefined)
  })
})
app.addHook('onRequest', (request, reply, done) => {
  void reply.header('x-request-id', request.id)
  done()
})

// Auth: the key's SHA-256 looked up among the configured digests.
app.addHook('onRequest', (request, reply, done) => {
  if (request.url === '/ready') {
    done()
    return
  }
  const key = request.headers['x-api-key']
  const partner =
    typeof key === 'string' ? partners.get(createHash('sha256').update(key).digest('hex')) : undefined
  if (partner === undefined) {
    void reply.code(401).send({ code: 'API_KEY_INVALID', message: 'An API key is required in x-api-key' })
    return
  }
  request.partnerName = partner
  done()
})

// Route latency, as the service exports it.
const registry = new Registry()
const duration = new Histogram({
  name: 'gateway_http_request_duration_seconds',
  help: 'request duration in seconds',
  labelNames: ['method', 'route', 'status_code'] as const,
  registers: [registry],
})
app.addHook('onResponse', (request, reply, done) => {
  duration.observe(
    { method: request.method, route: request.routeOptions.url ?? '', status_code: reply.statusCode },
    reply.elapsedTime / 1000,
  )
  done()
})

await app.register(rateLimit, {
  global: true,
  max: Number(process.env.RATE_LIMIT_MAX ?? 600),
  timeWindow: Number(process.env.RATE_LIMIT_WINDOW_MS ?? 60_000),
  keyGenerator: (request) => (request.partnerName ? `partner:${request.partnerName}` : request.ip),
  allowList: (request) => request.url === '/ready',
})

const schema: FastifySchema = { body: schemas.body, params: schemas.params }
app.post('/v1/sessions/:interviewId/image-links', { schema }, (_request, reply) => {
  void reply
    .headers({
      'cache-control': 'no-store, private',
      'x-cache': 'HIT',
      'content-type': 'application/json; charset=utf-8',
    })
    .send(answer)
})
app.get('/ready', (_request, reply) => {
  void reply.send('ok')
})

await serve(app, 'bare with plugins', port, host)
