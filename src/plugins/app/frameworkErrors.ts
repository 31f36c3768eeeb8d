import { STATUS_CODES } from 'node:http'
import type { FastifyRequest } from 'fastify'

/** The answer to a request Fastify itself refused (URL, body parsing, limits). */
export interface FrameworkAnswer {
  status: number
  code: string
  detail: string
}

interface FrameworkError {
  code?: string
  statusCode?: number
  message: string
}

type Known = (request: FastifyRequest | undefined) => Omit<FrameworkAnswer, 'status'> & { status?: number }

/**
 * Fastify's own error codes (`FST_ERR_*`) are its internals, not this service's contract: each
 * refusal gets one of our stable codes and a sentence saying what to send instead.
 */
const KNOWN: Record<string, Known> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () => ({ code: 'BODY_NOT_JSON', detail: 'The body is not valid JSON' }),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => ({
    code: 'BODY_EMPTY',
    detail: 'The body is empty although content-type is application/json: send a JSON object',
  }),
  FST_ERR_CTP_BODY_TOO_LARGE: (request) => ({
    code: 'BODY_TOO_LARGE',
    detail: `The body is larger than the ${request?.routeOptions.bodyLimit ?? ''} bytes allowed (BODY_LIMIT_BYTES)`,
  }),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (request) => ({
    code: 'UNSUPPORTED_MEDIA_TYPE',
    detail: `Bodies must be application/json, not ${mediaType(request)}`,
  }),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => ({
    code: 'BAD_CONTENT_LENGTH',
    detail: 'The content-length header does not match the body',
  }),
  FST_ERR_BAD_URL: () => ({ code: 'BAD_URL', detail: 'The URL is not valid (malformed percent-encoding)' }),
  FST_ERR_INVALID_URL: () => ({ code: 'BAD_URL', detail: 'The URL is not valid' }),
  FST_ERR_MAX_PARAM_LENGTH: () => ({
    status: 414,
    code: 'PATH_SEGMENT_TOO_LONG',
    detail: 'A path segment is longer than 100 characters',
  }),
}

/** Our codes for the statuses of framework refusals that have no entry above. */
const BY_STATUS: Record<number, string> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'BODY_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
}

/** A 4xx error raised by Fastify or a library (not an AppError), as one of this service's answers. */
export function frameworkAnswer(err: FrameworkError, request?: FastifyRequest): FrameworkAnswer {
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 400
  const known =
    err.code !== undefined && Object.hasOwn(KNOWN, err.code) ? KNOWN[err.code]?.(request) : undefined
  if (known) return { status, ...known }
  const name = STATUS_CODES[status] ?? 'Bad Request'
  const code = BY_STATUS[status] ?? name.toUpperCase().replace(/[^A-Z]+/g, '_')
  return { status, code, detail: err.message }
}

/** The request's media type, reduced to the characters a media type has (it is caller text). */
function mediaType(request: FastifyRequest | undefined): string {
  const header = request?.headers['content-type']
  const type = (typeof header === 'string' ? header : '').split(';')[0]?.trim() ?? ''
  const clean = type.replace(/[^A-Za-z0-9!#$&^_.+/-]/g, '').slice(0, 100)
  return clean === '' ? 'a body without content-type' : clean
}
