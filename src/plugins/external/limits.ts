import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { sha256Hex } from '../../auth/apiKeys.js'
import { AppError, OverloadedError } from '../../errors.js'

const CREDENTIAL_HEADERS = ['x-incode-session-token', 'x-incode-hardware-id'] as const

/**
 * Who a request counts against: the authenticated partner, else a hash of the Incode token it
 * carries (never the token itself), else its address. A caller refused by auth (answered only after
 * this count) counts against its address, so that guessing keys is limited too; a valid key
 * lacking the route's scope counts against its partner.
 */
function callerKey(request: FastifyRequest): string {
  const refusal = request.authRefusal
  if (refusal) return refusal.partner ? `partner:${refusal.partner.name}` : `ip:${request.ip}`
  if (request.partner) return `partner:${request.partner.name}`
  for (const header of CREDENTIAL_HEADERS) {
    const value = request.headers[header]
    if (typeof value === 'string' && value !== '') {
      return `token:${sha256Hex(value).slice(0, 32)}`
    }
  }
  return `ip:${request.ip}`
}

/** Per-caller rate limits, and load shedding when the event loop lags. */
export default fp(
  async function limitsPlugin(app: FastifyInstance) {
    const { config, telemetry: metrics } = app
    await app.register(underPressure, {
      maxEventLoopDelay: config.SHED_EVENT_LOOP_DELAY_MS,
      // A sample in which the loop never turned reads as an infinite delay (under-pressure sheds
      // then), so a stall of one sampling interval must already be past the threshold.
      sampleInterval: Math.max(1_000, config.SHED_EVENT_LOOP_DELAY_MS),
      retryAfter: 1,
      pressureHandler: (request, reply) => {
        // Probes stay answerable (returning without an answer lets a request through): an
        // orchestrator must not restart or unlist an instance that is only busy, at start-up say.
        if (request.routeOptions.config.probe === true) return
        metrics.shed.inc({ reason: 'event_loop' })
        void reply.send(new OverloadedError('The service is overloaded, retry later', 1, 'OVERLOADED'))
      },
    })
    await app.register(rateLimit, {
      global: true,
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      keyGenerator: callerKey,
      allowList: (request) => request.url === '/healthz' || request.url === '/readyz',
      errorResponseBuilder: (_request, context) => {
        metrics.shed.inc({ reason: 'rate_limit' })
        return new AppError(
          429,
          'RATE_LIMITED',
          `Rate limit of ${context.max} requests per ${context.after} exceeded`,
          {
            retryAfterSeconds: Math.ceil(context.ttl / 1000),
          },
        )
      },
    })
  },
  { name: 'limits', dependencies: ['services', 'auth'] },
)
