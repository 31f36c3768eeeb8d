import type { IncomingMessage, ServerResponse } from 'node:http'
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
 * The headers helmet sets, worked out once. With static options helmet sets the same headers on
 * every response, and building its middleware per request (as @fastify/helmet does) cost more
 * than the whole cached-links handler.
 */
export function securityHeaders(options: HelmetOptions = HELMET_OPTIONS): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader: (name: string, value: unknown) => {
      headers[name.toLowerCase()] = String(value)
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()]
    },
  }
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err instanceof Error ? err : new Error('helmet failed to set its headers')
  })
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
    await app.register(cors, {
      origin: origins.length === 0 ? false : origins,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['content-type', 'x-incode-session-token', 'x-request-id'],
      exposedHeaders: ['x-cache', 'x-request-id', 'retry-after'],
      maxAge: 600,
    })
  },
  { name: 'security', dependencies: ['services'] },
)
