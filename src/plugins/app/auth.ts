import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiKeyRing, parseApiKeys, type Partner, type Scope } from '../../auth/apiKeys.js'
import { ForbiddenError, UnauthorizedError, type AppError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A partner API key with this scope is required (x-api-key). */
    scope?: Scope
  }
  interface FastifyRequest {
    /** The partner whose API key authenticated this request, if any. */
    partner: Partner | undefined
    /**
     * Why the caller is refused, when it is: set in onRequest, answered in preParsing, so that the
     * rate limit counts the attempt in between. `partner` is set when the key was valid but lacks
     * the scope (403); it is the bucket the attempt counts against, else the address is.
     */
    authRefusal: { error: AppError; partner: Partner | undefined } | undefined
  }
}

export const PARTNER_KEY_HEADER = 'x-api-key'

function presentedKey(request: FastifyRequest): string | undefined {
  const value = request.headers[PARTNER_KEY_HEADER]
  const key = Array.isArray(value) ? value[0] : value
  return key === undefined || key === '' ? undefined : key
}

/**
 * The ring's verdict, remembered for keys that matched: a partner presents the same key on every
 * request, and hashing it and comparing the digest with every configured one was ~3% of a cached
 * links answer. Safe because only a key that passed the ring's constant-time check is remembered:
 * an unknown or wrong key always takes the full path (hash, then every digest compared in constant
 * time), exactly as before, so its timing still tells nothing about any configured key; and the
 * lookup by the presented text is an ordinary hash-map lookup, which compares text only on a hash
 * collision with an already valid key (nothing an attacker can aim at without the key). Bounded:
 * a configured digest has one preimage that any partner can present, so at most one entry per
 * configured key (cleared if ever more, defensively).
 */
export function rememberedKeys(ring: ApiKeyRing): (presented: string) => Partner | undefined {
  const known = new Map<string, Partner>()
  return (presented) => {
    const remembered = known.get(presented)
    if (remembered) return remembered
    const partner = ring.verify(presented)
    if (partner) {
      if (known.size >= ring.size) known.clear()
      known.set(presented, partner)
    }
    return partner
  }
}

/**
 * Caller authentication. Routes name the scope they need (`config.scope`); drop-in Incode paths
 * need a key with `incode:proxy` when DROPIN_KEY_REQUIRED is set (the key is checked here, and
 * the real Incode key replaces it upstream); /docs needs `docs:read` unless DOCS_PUBLIC.
 *
 * The key is checked in onRequest, but a refusal is only answered in preParsing (still before any
 * body is read): @fastify/rate-limit counts in a route-level onRequest hook, which runs after every
 * app-level one, so answering in onRequest would let key guessing go uncounted.
 */
export default fp(
  function authPlugin(app: FastifyInstance) {
    const { config } = app
    const ring = new ApiKeyRing(parseApiKeys(config.API_KEYS).keys)
    const verify = rememberedKeys(ring)
    app.decorateRequest('partner', undefined)
    app.decorateRequest('authRefusal', undefined)

    /** Sets `partner` when the key holds the scope, else `authRefusal`. */
    const requireScope = (request: FastifyRequest, scope: Scope): void => {
      const key = presentedKey(request)
      const partner = key === undefined ? undefined : verify(key)
      if (partner?.scopes.has(scope)) {
        request.partner = partner
        return
      }
      request.authRefusal = {
        error:
          key === undefined
            ? new UnauthorizedError(`An API key is required in ${PARTNER_KEY_HEADER}`, 'API_KEY_MISSING')
            : !partner
              ? new UnauthorizedError('The API key is not valid', 'API_KEY_INVALID')
              : new ForbiddenError(`The API key lacks the ${scope} scope`, 'SCOPE_MISSING'),
        partner,
      }
    }

    // Callback hooks, not async ones: they run on every request, and a promise per hook per
    // request was a measurable part of a cached answer's cost.
    app.addHook('onRequest', (request, _reply, done) => {
      const routeOptions = request.routeOptions
      const routeConfig = routeOptions.config
      if (routeConfig.scope) requireScope(request, routeConfig.scope)
      else if (routeConfig.dropIn && config.DROPIN_KEY_REQUIRED) requireScope(request, 'incode:proxy')
      else if (!config.DOCS_PUBLIC && routeOptions.url?.startsWith('/docs'))
        requireScope(request, 'docs:read')
      done()
    })

    app.addHook('preParsing', (request, _reply, payload, done) => {
      if (request.authRefusal) done(request.authRefusal.error)
      else done(null, payload)
    })
  },
  { name: 'auth', dependencies: ['services'] },
)
