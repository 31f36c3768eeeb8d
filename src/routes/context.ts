import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError, UnauthorizedError } from '../errors.js'
import { parseJsonBody } from '../plugins/app/bodies.js'
import type { Caller } from '../domain/calls.js'

export const SESSION_TOKEN_HEADER = 'x-incode-session-token'
export const INCODE_TOKEN_HEADER = 'x-incode-hardware-id'

/** A header's value as the routes read it (the first one, trimmed), or undefined when blank. */
export function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  const first = Array.isArray(value) ? value[0] : value
  return first === undefined || first.trim() === '' ? undefined : first.trim()
}

/**
 * What a token may be: a header value of visible ASCII (no spaces, controls or anything above
 * U+007E), of bounded length. Node's parser lets latin1 bytes through, and app.inject anything
 * at all; undici refuses some of that as an upstream header (a 502), so it is refused here.
 */
const TOKEN = /^[\x21-\x7e]+$/
export const TOKEN_MAX_LENGTH = 4096

/**
 * A frontend's session token (or, on the drop-in paths, the caller's Incode token), forwarded
 * upstream as X-Incode-Hardware-Id. Missing, or not a plain token: 401.
 */
export function sessionCaller(
  request: FastifyRequest,
  header = SESSION_TOKEN_HEADER,
  interviewId?: string,
): Extract<Caller, { kind: 'token' }> {
  const token = headerValue(request, header)
  if (token === undefined) throw new UnauthorizedError(`The ${header} header is required`, 'TOKEN_MISSING')
  if (token.length > TOKEN_MAX_LENGTH || !TOKEN.test(token))
    throw new UnauthorizedError(`The ${header} header is not a valid token`, 'TOKEN_INVALID')
  return interviewId === undefined ? { kind: 'token', token } : { kind: 'token', token, interviewId }
}

/**
 * Sends JSON text the handler has put together itself (cached link entries, probes), bypassing
 * the route's serializer; the route's schema still documents it.
 */
export function sendJsonText(reply: FastifyReply, text: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(text)
}

/** Headers on every answer that carries images or links: never stored by a shared cache. */
export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store, private')
}

/**
 * For the routes of `scope` whose body is optional (the drop-in concatenated images): no
 * body, or an empty JSON body, counts as `{}`, as Incode takes it, instead of failing validation
 * or JSON parsing. Call it on a plugin scope holding only such routes.
 */
export function emptyBodyIsEmptyObject(scope: FastifyInstance): void {
  const parseJson = parseJsonBody(scope)
  scope.removeContentTypeParser('application/json')
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text.trim() === '') done(null, {})
    else parseJson(request, text, done)
  })
  scope.addHook('preValidation', async (request) => {
    request.body ??= {}
  })
}

/**
 * For the routes of `scope` that take no body (DELETE): none, or an empty one under a JSON
 * content type (a partner client's habit), is fine; any body is refused with a 400 saying so,
 * rather than read and ignored.
 */
export function noBodyAccepted(scope: FastifyInstance): void {
  scope.removeContentTypeParser('application/json')
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text.trim() === '') done(null, undefined)
    else done(new BadRequestError('This route takes no request body', 'BODY_NOT_ALLOWED'))
  })
}
