import { HttpError } from './http.js'
import { header, sameString, short, type RequestContext } from './request.js'
import type { SimulatorState } from './state.js'
import type { TokenClaims } from './tokens.js'

export function requireApiKey(state: SimulatorState, ctx: RequestContext): void {
  const key = header(ctx.req, 'x-api-key')
  if (!key) throw new HttpError(403, 'Missing API key: send it in the x-api-key header')
  if (!sameString(key, state.apiKey)) throw new HttpError(403, 'Invalid API key')
}

/** The claims of the call's token; under `/0` (zero) no API key is needed but only a session token goes. */
export function authenticate(state: SimulatorState, ctx: RequestContext, zero: boolean): TokenClaims {
  if (!zero) requireApiKey(state, ctx)
  const token = header(ctx.req, 'x-incode-hardware-id')
  if (!token) throw new HttpError(401, 'Missing token: send it in the X-Incode-Hardware-Id header')
  const checked = state.tokens.check(token, state.now())
  if (!checked.ok) {
    throw new HttpError(401, checked.reason === 'expired' ? 'Token has expired' : 'Invalid token')
  }
  ctx.tokenKind = checked.claims.kind
  if (zero && checked.claims.kind !== 'session') {
    throw new HttpError(401, 'Endpoints under /0 take a session token; an executive token is not accepted')
  }
  return checked.claims
}

/** The interview a call is about: from `?id=` (required for admin tokens) or the session token. */
export function interviewFor(ctx: RequestContext, claims: TokenClaims): string {
  const id = ctx.query.get('id')?.trim() || undefined
  if (claims.kind === 'admin') {
    if (!id)
      throw new HttpError(400, 'Query parameter id (the interview ID) is required with an executive token')
    return id
  }
  if (id !== undefined && id !== claims.sub) {
    throw new HttpError(403, `The token does not grant access to interview ${short(id)}`)
  }
  return claims.sub
}
