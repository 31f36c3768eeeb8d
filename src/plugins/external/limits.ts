import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { callerKey as callerKeyOf, presentedToken as presentedTokenOf } from '../../auth/callerKey.js'
import type { TokenVerdicts } from '../../auth/tokenVerdicts.js'
import { AppError, OverloadedError } from '../../errors.js'
import { fleetRateLimitStore } from '../../fleet/rateLimitStore.js'

/**
 * Rate-limit keys. Who a request counts against: the authenticated partner; else the Incode token
 * the route forwards (the hardware ID on drop-in paths, else the session token) once Incode has
 * accepted it; else its address. A token not accepted yet (a random one, or a new session's
 * first call) counts against its address and against its own bucket: inventing tokens earns no
 * requests. A caller refused by auth (answered only after this count) counts against its address,
 * so that guessing keys is limited too; a valid key lacking the route's scope counts against its
 * partner.
 */
function rateLimitKeys(verdicts: TokenVerdicts) {
  // Shared with the answer memory's per-caller shares (auth/callerKey.ts): one caller, one key.
  const presentedToken = (request: FastifyRequest) => presentedTokenOf(request, verdicts)
  const callerKey = (request: FastifyRequest): string => callerKeyOf(request, verdicts)

  /** The bucket of a token not accepted yet, counted on top of its address; else undefined. */
  const unacceptedTokenKey = (request: FastifyRequest): string | undefined => {
    if (request.authRefusal || request.partner) return undefined
    const token = presentedToken(request)
    return token && !token.accepted ? `token:${token.hash}` : undefined
  }

  return { callerKey, unacceptedTokenKey }
}

function rateLimited(max: number, after: string, ttlMs: number): AppError {
  return new AppError(429, 'RATE_LIMITED', `Rate limit of ${max} requests per ${after} exceeded`, {
    retryAfterSeconds: Math.ceil(ttlMs / 1000),
  })
}

/** Per-caller rate limits, and load shedding when the event loop lags. */
export default fp(
  async function limitsPlugin(app: FastifyInstance) {
    const { config, gatewayMetrics: metrics } = app
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
    const { callerKey, unacceptedTokenKey } = rateLimitKeys(app.tokenVerdicts)
    await app.register(rateLimit, {
      global: true,
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      keyGenerator: callerKey,
      // Fleet mode: counted in Redis across replicas, locally while Redis is away (see the store).
      ...(app.fleet ? { store: fleetRateLimitStore(app.fleet) } : {}),
      allowList: (request) => request.url === '/healthz' || request.url === '/readyz',
      errorResponseBuilder: (_request, context) => {
        metrics.shed.inc({ reason: 'rate_limit' })
        return rateLimited(context.max, context.after, context.ttl)
      },
    })
    // The second limit, for tokens Incode has not accepted yet: their own bucket (in a store of
    // its own), on top of the address bucket above.
    const unacceptedTokenLimit = app.createRateLimit({
      keyGenerator: (request) => unacceptedTokenKey(request) ?? '',
      allowList: (request) => unacceptedTokenKey(request) === undefined,
    })
    app.addHook('onRequest', (request, _reply, done) => {
      // Most requests hold no token Incode has yet to accept (a partner key, or an accepted token):
      // the limiter would let them through (its allowList), so it is not asked, and no promise is made.
      if (unacceptedTokenKey(request) === undefined) {
        done()
        return
      }
      unacceptedTokenLimit(request).then((limit) => {
        if (limit.isAllowed || !limit.isExceeded) done()
        else {
          metrics.shed.inc({ reason: 'rate_limit' })
          done(rateLimited(limit.max, `${Math.round(limit.timeWindow / 1000)} s per token`, limit.ttl))
        }
      }, done)
    })
  },
  { name: 'limits', dependencies: ['services', 'auth'] },
)
