import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * Helmet's defaults, Swagger UI included (it loads only its own static files). TLS is ended in
 * front of the service, so requests are not upgraded: that would break the loopback demo.
 */
const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
}

/**
 * The headers helmet sets, worked out once at boot. With static options helmet sets the same
 * headers on every response, and building its middleware per request (as @fastify/helmet does,
 * to allow per-route options) cost more than the whole cached-links handler. Helmet offers no
 * API that returns its headers, only Connect middleware; so the middleware runs once here on a
 * real, unconnected Node response, and the headers are read back from it. Fails at boot rather
 * than serving without the headers: if helmet ever needs a live request, answers asynchronously,
 * or is given a CSP directive computed per request (a function, e.g. a nonce).
 */
export function securityHeaders(options: HelmetOptions = HELMET_OPTIONS): Readonly<Record<string, string>> {
  const csp = options.contentSecurityPolicy
  const directives = typeof csp === 'object' ? Object.values(csp.directives ?? {}) : []
  if (
    directives.some((v) => v !== null && typeof v === 'object' && [...v].some((x) => typeof x === 'function'))
  ) {
    throw new Error('security headers: a CSP directive computed per request cannot be worked out once')
  }
  const req = new IncomingMessage(new Socket())
  const res = new ServerResponse(req)
  const outcome: { done: boolean; error?: unknown } = { done: false }
  helmet(options)(req, res, (err?: unknown) => {
    outcome.done = true
    outcome.error = err
  })
  if (!outcome.done) throw new Error('security headers: helmet did not finish synchronously')
  if (outcome.error) {
    throw outcome.error instanceof Error ? outcome.error : new Error('helmet failed to set its headers')
  }
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(res.getHeaders())) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value)
  }
  req.socket.destroy()
  return Object.freeze(headers)
}

/** Security headers (helmet) and CORS for the frontends' origins only. */
export default fp(
  async function securityPlugin(app: FastifyInstance) {
    const headers = securityHeaders()
    app.addHook('onRequest', (_request, reply, done) => {
      void reply.headers(headers)
      done()
    })
    const origins = app.config.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter((o) => o !== '')
    // No origins, no CORS: registered with `origin: false` it adds no header and answers no
    // preflight (404, as without it), yet its hook ran on every request (~1% of a cached answer).
    if (origins.length === 0) return
    await app.register(cors, {
      origin: origins,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['content-type', 'x-incode-session-token', 'x-request-id', 'if-none-match'],
      exposedHeaders: ['x-cache', 'x-request-id', 'retry-after', 'etag'],
      maxAge: 600,
    })
  },
  { name: 'security', dependencies: ['services'] },
)
