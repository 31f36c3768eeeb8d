import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiKeyRing, parseApiKeys, type Partner, type Scope } from '../../auth/apiKeys.js'
import { ForbiddenError, UnauthorizedError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A partner API key with this scope is required (x-api-key). */
    scope?: Scope
  }
  interface FastifyRequest {
    /** The partner whose API key authenticated this request, if any. */
    partner: Partner | undefined
  }
}

export const PARTNER_KEY_HEADER = 'x-api-key'

function presentedKey(request: FastifyRequest): string | undefined {
  const value = request.headers[PARTNER_KEY_HEADER]
  const key = Array.isArray(value) ? value[0] : value
  return key === undefined || key === '' ? undefined : key
}

/**
 * Caller authentication. Routes name the scope they need (`config.scope`); drop-in Incode paths
 * need a key with `incode:proxy` when DROPIN_KEY_REQUIRED is set (the key is checked here, and
 * the real Incode key replaces it upstream); /docs needs `docs:read` unless DOCS_PUBLIC. Runs in
 * onRequest, before any body is read.
 */
export default fp(
  function authPlugin(app: FastifyInstance) {
    const { config } = app
    const ring = new ApiKeyRing(parseApiKeys(config.API_KEYS).keys)
    app.decorateRequest('partner', undefined)

    const requireScope = (request: FastifyRequest, scope: Scope): void => {
      const key = presentedKey(request)
      if (key === undefined)
        throw new UnauthorizedError(`An API key is required in ${PARTNER_KEY_HEADER}`, 'API_KEY_MISSING')
      const partner = ring.verify(key)
      if (!partner) throw new UnauthorizedError('The API key is not valid', 'API_KEY_INVALID')
      if (!partner.scopes.has(scope))
        throw new ForbiddenError(`The API key lacks the ${scope} scope`, 'SCOPE_MISSING')
      request.partner = partner
    }

    app.addHook('onRequest', async (request) => {
      const routeConfig = request.routeOptions.config
      if (routeConfig.scope) return requireScope(request, routeConfig.scope)
      if (routeConfig.dropIn && config.DROPIN_KEY_REQUIRED) return requireScope(request, 'incode:proxy')
      if (!config.DOCS_PUBLIC && request.routeOptions.url?.startsWith('/docs'))
        return requireScope(request, 'docs:read')
    })
  },
  { name: 'auth', dependencies: ['services'] },
)
