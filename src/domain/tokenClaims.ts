import { isInterviewId } from './interviewId.js'

/**
 * What an Incode token (a JWT) says about itself, read WITHOUT verifying its signature. Only
 * Incode can verify it; these facts may therefore only ever restrict what the service does with
 * the token (shorten a cache entry's life, refuse a form Incode would refuse, label an entry for
 * invalidation), never grant anything: a token whose claims were altered is another token, with
 * its own cache scope, and Incode refuses it.
 */
export interface TokenClaims {
  /** `exp`, in epoch ms. */
  expiresAtMs?: number
  /** The interview a session token is for (the simulator's `sub`), when it has the form of one. */
  interviewId?: string
  /** The token says it is an executive (admin) token (the simulator's `kind: "admin"`). */
  executive: boolean
}

/** A JWT's payload as an object, or undefined when the token is not a decodable JWT. */
function payloadOf(token: string): Record<string, unknown> | undefined {
  const payload = token.split('.')[1]
  if (payload === undefined || payload === '') return undefined
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/** The `exp` claim (seconds) of a JWT, in ms; undefined when the token is not a decodable JWT. */
export function jwtExpiryMs(token: string): number | undefined {
  const exp = payloadOf(token)?.exp
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined
}

/**
 * The unverified claims of `token` that bound or label what is cached for it. Incode does not
 * publish its claim names; the simulator's tokens carry `sub` (the interview of a session token)
 * and `kind`. A token that does not say is treated as a session token of an unknown interview:
 * its entries still live no longer than its `exp`, and the upstream decides the rest on a miss.
 */
export function readTokenClaims(token: string): TokenClaims {
  const claims = payloadOf(token)
  if (!claims) return { executive: false }
  const executive = claims.kind === 'admin'
  const { exp, sub } = claims
  const facts: TokenClaims = { executive }
  if (typeof exp === 'number' && Number.isFinite(exp)) facts.expiresAtMs = exp * 1000
  if (!executive && typeof sub === 'string' && isInterviewId(sub)) facts.interviewId = sub
  return facts
}
