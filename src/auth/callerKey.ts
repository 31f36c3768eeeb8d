import type { FastifyRequest } from 'fastify'
import { headerValue, INCODE_TOKEN_HEADER, SESSION_TOKEN_HEADER } from '../routes/context.js'
import { tokenHash, type TokenVerdicts } from './tokenVerdicts.js'

/** The Incode token a request forwards, as the limits hold it. */
export interface PresentedToken {
  /** SHA-256 of the token: bucket names and the verdict memory never hold the token itself. */
  hash: string
  /** Incode accepted it lately. */
  accepted: boolean
}

// Each request's token is hashed and looked up once, for every limit that asks.
const presented = new WeakMap<FastifyRequest, PresentedToken | undefined>()

/**
 * The Incode token the route forwards (the hardware ID on drop-in paths, else the session token),
 * and whether Incode has accepted it lately; undefined when there is none. Read once per request:
 * every limit sees the verdict as it was when the request arrived.
 */
export function presentedToken(request: FastifyRequest, verdicts: TokenVerdicts): PresentedToken | undefined {
  if (presented.has(request)) return presented.get(request)
  const header = request.routeOptions.config.dropIn === true ? INCODE_TOKEN_HEADER : SESSION_TOKEN_HEADER
  const token = headerValue(request, header)
  const hash = token === undefined ? undefined : tokenHash(token)
  const found = hash === undefined ? undefined : { hash, accepted: verdicts.isAcceptedHash(hash) }
  presented.set(request, found)
  return found
}

/**
 * Who a request counts against, for the rate limit and for its share of the answer memory: the
 * authenticated partner; else the Incode token it forwards once Incode has accepted it; else its
 * address. A token not accepted yet (a random one, or a new session's first call) counts against
 * its address: inventing tokens earns nothing. A caller refused by auth counts against its
 * address (guessing keys is limited too), a valid key lacking the route's scope against its partner.
 */
export function callerKey(request: FastifyRequest, verdicts: TokenVerdicts): string {
  const refusal = request.authRefusal
  if (refusal) return refusal.partner ? `partner:${refusal.partner.name}` : `ip:${request.ip}`
  if (request.partner) return `partner:${request.partner.name}`
  const token = presentedToken(request, verdicts)
  return token?.accepted ? `token:${token.hash}` : `ip:${request.ip}`
}
