/**
 * Typed errors with stable codes. Every error the service answers with is one of these; the one
 * error handler (src/plugins/app/errors.ts) turns them into problem+json on /v1 and into Incode's
 * error body on the drop-in paths. 5xx details are logged, never sent.
 */
import { upstreamStatusAnswer, type UpstreamStatusFacts } from './upstreamAnswers.js'

export class AppError extends Error {
  /** Sent as Retry-After (seconds) when set. */
  retryAfterSeconds: number | undefined

  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options)
    this.name = new.target.name
    this.retryAfterSeconds = options?.retryAfterSeconds
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string, code = 'FORBIDDEN') {
    super(403, code, message)
  }
}

/** Load shed to protect the service or Incode: the bulkhead queue is full, or the event loop lags. */
export class OverloadedError extends AppError {
  constructor(
    message = 'The service is overloaded, retry later',
    retryAfterSeconds = 1,
    code = 'OVERLOADED',
  ) {
    super(503, code, message, { retryAfterSeconds })
  }
}

/** The circuit breaker on Incode is open: fail fast instead of queueing on a failing upstream. */
export class CircuitOpenError extends AppError {
  constructor(retryAfterSeconds: number) {
    super(503, 'UPSTREAM_CIRCUIT_OPEN', 'Incode is failing; requests are refused until it recovers', {
      retryAfterSeconds,
    })
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, code = 'BAD_REQUEST') {
    super(400, code, message)
  }
}

export class UnauthorizedError extends AppError {
  constructor(message: string, code = 'UNAUTHORIZED') {
    super(401, code, message)
  }
}

export class NotFoundError extends AppError {
  constructor(message: string, code = 'NOT_FOUND') {
    super(404, code, message)
  }
}

/** The upstream did not answer in time (connect, headers, body or the request's total deadline). */
export class UpstreamTimeoutError extends AppError {
  constructor(message = 'Incode did not answer in time', options?: { cause?: unknown }) {
    super(504, 'UPSTREAM_TIMEOUT', message, options)
  }
}

/** The upstream could not be reached (refused, reset, DNS, pool closed). */
export class UpstreamUnavailableError extends AppError {
  constructor(message = 'Incode is unreachable', options?: { cause?: unknown }) {
    super(503, 'UPSTREAM_UNAVAILABLE', message, options)
  }
}

/** The upstream answered something unusable (truncated, not JSON, unexpected shape, too large). */
export class UpstreamBadResponseError extends AppError {
  constructor(
    message = 'Incode sent an invalid answer',
    code = 'UPSTREAM_BAD_RESPONSE',
    options?: { cause?: unknown },
  ) {
    super(502, code, message, options)
  }
}

/**
 * Incode answered with an error status. Thrown by the upstream code with the facts only: Incode's
 * status and body (kept so that drop-in paths can answer exactly as Incode did), the endpoint, and
 * which credential the call carried. The answer, status and code, is picked by the one mapper
 * (upstreamStatusAnswer in src/upstreamAnswers.ts).
 */
export class UpstreamStatusError extends AppError {
  readonly upstreamStatus: number
  readonly upstreamBody: unknown
  /** The refusal concerns the whole request (its token, its interview), not one part of it. */
  readonly wholeRequest: boolean

  constructor(readonly facts: UpstreamStatusFacts) {
    const answer = upstreamStatusAnswer(facts)
    super(answer.status, answer.code, answer.message)
    this.upstreamStatus = facts.status
    this.upstreamBody = facts.body
    this.wholeRequest = answer.wholeRequest
  }
}

/**
 * An admin (interview-ID) call, but the service has no Incode admin credentials: a deployment
 * state, not the caller's fault; another instance, or this one once configured, can serve it.
 */
export class AdminNotConfiguredError extends AppError {
  constructor() {
    super(
      503,
      'ADMIN_NOT_CONFIGURED',
      'Interview-ID routes need Incode admin credentials, which are not configured',
    )
  }
}

/** The caller went away; nothing is sent, upstream calls are cancelled. */
export class ClientClosedError extends AppError {
  constructor() {
    super(499, 'CLIENT_CLOSED_REQUEST', 'The caller closed the request')
  }
}
