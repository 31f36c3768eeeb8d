import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** Security headers (helmet) and CORS for the frontends' origins only. */
export default fp(
  async function securityPlugin(app: FastifyInstance) {
    // Helmet's defaults, Swagger UI included (it loads only its own static files). TLS is ended in
    // front of the service, so requests are not upgraded: that would break the loopback demo.
    await app.register(helmet, {
      global: true,
      contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
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
