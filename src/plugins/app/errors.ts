import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, UpstreamStatusError } from '../../errors.js'
import type { IncodeErrorBody, Problem } from '../../schemas.js'
import { dropInPassThrough } from '../../upstreamAnswers.js'
import { frameworkAnswer } from './frameworkErrors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Drop-in Incode path: errors are answered with Incode's own body, not problem+json. */
    dropIn?: boolean
  }
}

interface Answer {
  status: number
  code: string
  detail: string
  errors?: Problem['errors']
}

const INCODE_PREFIX = /^\/(0\/)?(omni|executive)\//

/** Fastify's own errors (validation, body parsing, limits) and ours, reduced to one shape. */
function classify(err: FastifyError | AppError | Error, request: FastifyRequest): Answer {
  if (err instanceof AppError) {
    // Incode's statuses were mapped once, when thrown (UpstreamStatusError: upstreamAnswers.ts).
    // Our messages are written for callers; causes (undici errors, Incode bodies) stay in the log.
    return { status: err.statusCode, code: err.code, detail: err.message }
  }
  const fe = err as FastifyError
  if (fe.validation) return validationAnswer(fe.validation, fe.validationContext ?? 'request')
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 ? fe.statusCode : 500
  if (status < 500) return frameworkAnswer(fe, request)
  request.log.error({ err }, 'unhandled error')
  return { status: 500, code: 'INTERNAL', detail: 'Internal error' }
}

type ValidationProblem = NonNullable<FastifyError['validation']>[number]

/** At most this many problems are listed in a validation answer; the rest are only counted. */
export const LISTED_PROBLEMS_MAX = 10
/** Characters of the listed problems and of the detail: the answer stays a few KB whatever the input. */
const LISTED_CHARS_MAX = 1500
const DETAIL_CHARS_MAX = 1000
const PATH_CHARS_MAX = 128
const MESSAGE_CHARS_MAX = 320

/**
 * A validation failure as one answer of bounded size: the first few problems, each clipped, and a
 * count of the others. Ajv runs without allErrors (it stops at the first problem), but a body of
 * thousands of bad items must not be echoed back item by item if that ever changes.
 */
export function validationAnswer(validation: readonly ValidationProblem[], context: string): Answer {
  const errors: NonNullable<Problem['errors']> = []
  let chars = 0
  for (const v of validation) {
    if (errors.length === LISTED_PROBLEMS_MAX) break
    const entry = {
      path: clip(`${context}${callerText(v.instancePath || '')}`, PATH_CHARS_MAX),
      message: clip(describeValidation(v), MESSAGE_CHARS_MAX),
    }
    chars += entry.path.length + entry.message.length
    if (errors.length > 0 && chars > LISTED_CHARS_MAX) break
    errors.push(entry)
  }
  const unlisted = validation.length - errors.length
  const listed = clip(errors.map((e) => `${e.path} ${e.message}`).join('; '), DETAIL_CHARS_MAX)
  return {
    status: 400,
    code: 'VALIDATION_FAILED',
    detail: unlisted > 0 ? `${listed}; and ${unlisted} more problem${unlisted === 1 ? '' : 's'}` : listed,
    errors,
  }
}

function describeValidation(v: ValidationProblem): string {
  const params = v.params as { allowedValues?: unknown[]; additionalProperty?: string }
  if (params.allowedValues) return `must be one of: ${params.allowedValues.map(String).join(', ')}`
  if (params.additionalProperty)
    return `has an unknown property '${clip(callerText(params.additionalProperty), PATH_CHARS_MAX)}'`
  return v.message ?? 'is invalid'
}

/**
 * Text taken from the caller's input (property names, paths built from them), reduced to visible
 * ASCII without quotes or backslashes, so that it is not multiplied by JSON escaping.
 */
function callerText(text: string): string {
  return text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?')
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

export function sendProblem(reply: FastifyReply, answer: Answer): FastifyReply {
  const body: Problem = {
    type: `urn:problem:${answer.code}`,
    title: STATUS_CODES[answer.status] ?? 'Error',
    status: answer.status,
    code: answer.code,
    detail: answer.detail,
    requestId: reply.request.id,
    ...(answer.errors ? { errors: answer.errors } : {}),
  }
  return reply.code(answer.status).type('application/problem+json').send(body)
}

export function incodeErrorBody(status: number, message: string, path: string): IncodeErrorBody {
  return { timestamp: Date.now(), status, error: STATUS_CODES[status] ?? 'Error', message, path }
}

export function isDropIn(request: FastifyRequest): boolean {
  // routeOptions is absent for requests Fastify refuses before routing (frameworkErrors),
  // whatever the types say.
  const route = request.routeOptions as Partial<FastifyRequest['routeOptions']> | undefined
  return route?.config?.dropIn === true || INCODE_PREFIX.test(request.url)
}

/** Answers an error in its route family's shape: Incode's body on drop-in paths, else problem+json. */
export function sendError(request: FastifyRequest, reply: FastifyReply, answer: Answer): FastifyReply {
  if (!isDropIn(request)) return sendProblem(reply, answer)
  const path = request.url.split('?')[0] ?? request.url
  return reply
    .code(answer.status)
    .type('application/json')
    .send(incodeErrorBody(answer.status, answer.detail, path))
}

/** The one error handler of the service (requests no route takes: notFound.ts). */
export default fp(
  function errorsPlugin(app: FastifyInstance) {
    app.setErrorHandler((err: FastifyError | AppError, request, reply) => {
      if (err instanceof AppError && err.statusCode >= 500) {
        request.log.warn(
          { err: { code: err.code, message: err.message, cause: describeCause(err.cause) } },
          'upstream failure',
        )
      }
      if (err instanceof AppError && err.retryAfterSeconds !== undefined) {
        void reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterSeconds))))
      }
      if (err instanceof AppError && err.statusCode === 499) {
        // The caller is gone: there is nobody to answer.
        request.log.info('caller closed the request')
        return reply.code(499).send()
      }
      // On drop-in paths, answer as Incode would: its own status and body when it gave one.
      const incodeAnswer =
        isDropIn(request) && err instanceof UpstreamStatusError ? dropInPassThrough(err.facts) : undefined
      if (incodeAnswer) {
        return reply.code(incodeAnswer.status).type('application/json').send(incodeAnswer.body)
      }
      return sendError(request, reply, classify(err, request))
    })
  },
  { name: 'errors' },
)

function describeCause(cause: unknown): string | undefined {
  if (cause instanceof Error) return `${cause.name}: ${(cause as { code?: string }).code ?? cause.message}`
  return cause === undefined ? undefined : 'non-error cause'
}
