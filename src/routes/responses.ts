/**
 * How the routes' answers are documented: named responses, their media types, headers and
 * examples. Fastify serializes by the response's `content` media type (problem+json for /v1
 * errors, Incode's own JSON on the drop-in paths), and @fastify/swagger writes the same into the
 * OpenAPI document, so the document says what the service sends.
 */
import { STATUS_CODES } from 'node:http'
import type { TSchema } from '@sinclair/typebox'
import { IncodeErrorRef, ProblemRef } from '../schemas.js'

/**
 * Marks a route whose body may be left out: @fastify/swagger writes every body as required, so
 * the document's finishing step (plugins/external/swagger.ts) reads this mark instead.
 */
export const BODY_OPTIONAL = 'x-body-optional'

interface HeaderDoc {
  type: 'string' | 'integer'
  description: string
  enum?: string[]
}

const str = (description: string, values?: string[]): HeaderDoc => ({
  type: 'string',
  description,
  ...(values ? { enum: values } : {}),
})
const int = (description: string): HeaderDoc => ({ type: 'integer', description })

/** On every answer (set in app.ts). */
const REQUEST_ID = {
  'X-Request-Id': str(
    "This request's ID, in logs and sent to Incode; a caller's plain x-request-id is kept.",
  ),
}

/** On every answer of a rate-limited route (@fastify/rate-limit; not on the health probes). */
const RATE_LIMIT = {
  'X-RateLimit-Limit': int('Requests allowed per window for this caller.'),
  'X-RateLimit-Remaining': int('Requests left in the current window.'),
  'X-RateLimit-Reset': int('Seconds until the window resets.'),
}

const RETRY_AFTER = { 'Retry-After': int('Seconds to wait before retrying.') }

/** On every answer carrying images or links. */
const CACHE_CONTROL = {
  'Cache-Control': str('Images and links are never stored by shared caches.', ['no-store, private']),
}

const X_CACHE = {
  'X-Cache': str('HIT: every requested type came from the cache; MISS: none did; PARTIAL: some did.', [
    'HIT',
    'MISS',
    'PARTIAL',
  ]),
}

export interface Documented {
  description: string
  headers: Record<string, HeaderDoc>
  content: Record<string, { schema: TSchema; example?: unknown }>
}

function answer(
  description: string,
  mediaType: string,
  schema: TSchema,
  headers: Record<string, HeaderDoc>,
  example?: unknown,
): Documented {
  return {
    description,
    headers: { ...REQUEST_ID, ...headers },
    content: { [mediaType]: { schema, ...(example === undefined ? {} : { example }) } },
  }
}

/** A success carrying images or links (JSON, never stored by shared caches). */
export function imagesAnswer(description: string, schema: TSchema, example: unknown): Documented {
  return answer(description, 'application/json', schema, { ...CACHE_CONTROL, ...RATE_LIMIT }, example)
}

/** One image as bytes (JPEG), with its strong ETag, never stored by shared caches. */
export function imageBytesAnswer(description: string): Documented {
  return answer(description, 'image/jpeg', { type: 'string', format: 'binary' } as unknown as TSchema, {
    ETag: str('Strong entity tag: the SHA-256 of the bytes. Send it back as If-None-Match.'),
    ...CACHE_CONTROL,
    ...RATE_LIMIT,
  })
}

/**
 * 304 Not Modified to a conditional request: no body. `type: 'null'` is how @fastify/swagger
 * documents a response without content (a schema of headers alone became an application/json body).
 */
export function notModifiedAnswer(
  description: string,
): Pick<Documented, 'description' | 'headers'> & { type: 'null' } {
  return {
    type: 'null',
    description,
    headers: { ...REQUEST_ID, ETag: str('The current entity tag.'), ...CACHE_CONTROL },
  }
}

/** A links success: also says whether the cache answered. */
export function linksAnswer(description: string, schema: TSchema, example: unknown): Documented {
  return answer(
    description,
    'application/json',
    schema,
    { ...CACHE_CONTROL, ...X_CACHE, ...RATE_LIMIT },
    example,
  )
}

/** Any other success of a rate-limited route. */
export function jsonAnswer(description: string, schema: TSchema, example: unknown): Documented {
  return answer(description, 'application/json', schema, RATE_LIMIT, example)
}

/** A health probe's answer (not rate limited). */
export function probeAnswer(description: string, schema: TSchema, example: unknown): Documented {
  return answer(description, 'application/json', schema, {}, example)
}

/** What each error status means, on /v1 and on the drop-in paths alike. */
const ERROR_MEANINGS = {
  400: 'The request is invalid (validation, a body that is not JSON): the detail says what to change.',
  401: 'The credential is missing or not valid.',
  403: 'The credential may not do this (a key without the scope, a token for another interview).',
  404: 'Not found: Incode knows no such interview, or it holds no image of the kind asked for.',
  413: 'The request body is larger than the service accepts.',
  415: 'The request body is not application/json.',
  429: 'Rate limited: too many requests from this caller; retry after Retry-After seconds.',
  500: "Incode's own internal error, passed through as Incode answered it.",
  502: 'Incode failed, or answered something unusable (not JSON, over its size cap).',
  503: 'The service or Incode is overloaded or unreachable; retry after Retry-After seconds when sent.',
  504: 'Incode did not answer in time.',
} as const

export type ErrorStatus = keyof typeof ERROR_MEANINGS

const RETRYABLE: ReadonlySet<number> = new Set([429, 503])

function errorHeaders(status: ErrorStatus, rateLimited: boolean): Record<string, HeaderDoc> {
  return {
    ...(RETRYABLE.has(status) ? RETRY_AFTER : {}),
    ...(rateLimited ? RATE_LIMIT : {}),
  }
}

/** One example per error status, each a real answer of the service (code and detail as it sends them). */
const PROBLEM_EXAMPLES: Record<ErrorStatus, { code: string; detail: string }> = {
  400: { code: 'VALIDATION_FAILED', detail: 'body/images/0 must be one of: selfie, croppedFace, …' },
  401: { code: 'API_KEY_MISSING', detail: 'An API key is required in x-api-key' },
  403: { code: 'SCOPE_MISSING', detail: 'The API key lacks the images:read scope' },
  404: { code: 'INTERVIEW_NOT_FOUND', detail: 'Interview not found: Incode knows no interview with this ID' },
  413: {
    code: 'BODY_TOO_LARGE',
    detail: 'The body is larger than the 65536 bytes allowed (BODY_LIMIT_BYTES)',
  },
  415: { code: 'UNSUPPORTED_MEDIA_TYPE', detail: 'Bodies must be application/json, not text/plain' },
  429: { code: 'RATE_LIMITED', detail: 'Rate limit of 100 requests per 1 minute exceeded' },
  500: { code: 'INTERNAL', detail: 'Internal error' },
  502: { code: 'UPSTREAM_500', detail: 'Incode answered 500 on images' },
  503: { code: 'OVERLOADED', detail: 'The service is overloaded, retry later' },
  504: { code: 'UPSTREAM_TIMEOUT', detail: 'Incode did not answer in time (UND_ERR_HEADERS_TIMEOUT)' },
}

function problemExample(status: ErrorStatus) {
  return {
    type: `urn:problem:${PROBLEM_EXAMPLES[status].code}`,
    title: STATUS_CODES[status],
    status,
    ...PROBLEM_EXAMPLES[status],
  }
}

/** Incode's error body, as the drop-in paths answer it (Incode's own words where it sends them). */
function incodeErrorExample(status: ErrorStatus) {
  return {
    timestamp: 1713571344335,
    status,
    error: STATUS_CODES[status] ?? 'Error',
    message: status === 401 ? 'Invalid token' : PROBLEM_EXAMPLES[status].detail,
    path: '/omni/get/images',
  }
}

/** /v1 error answers: RFC 9457 problem+json, with the headers each one carries. */
export function problemAnswers<S extends ErrorStatus>(
  statuses: readonly S[],
  options: { rateLimited?: boolean } = {},
): Record<S, Documented> {
  const out = {} as Record<S, Documented>
  for (const status of statuses) {
    out[status] = answer(
      ERROR_MEANINGS[status],
      'application/problem+json',
      ProblemRef,
      errorHeaders(status, options.rateLimited !== false),
      problemExample(status),
    )
  }
  return out
}

/** One problem+json answer with its own description (an unexpected failure of a probe, say). */
export function problemAnswer(
  description: string,
  options: { rateLimited?: boolean; status?: ErrorStatus } = {},
): Documented {
  return answer(
    description,
    'application/problem+json',
    ProblemRef,
    options.rateLimited === false ? {} : RATE_LIMIT,
    problemExample(options.status ?? 500),
  )
}

/** Drop-in error answers: Incode's own error body, passed through or written in its shape. */
export function incodeErrorAnswers<S extends ErrorStatus>(statuses: readonly S[]): Record<S, Documented> {
  const out = {} as Record<S, Documented>
  for (const status of statuses) {
    out[status] = answer(
      ERROR_MEANINGS[status],
      'application/json',
      IncodeErrorRef,
      errorHeaders(status, true),
      incodeErrorExample(status),
    )
  }
  return out
}
