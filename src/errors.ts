/**
 * Typed errors with stable codes. Every error the service answers with is one of these; the one
 * error handler (src/plugins/app/errors.ts) turns them into problem+json on /v1 and into Incode's
 * error body on the drop-in paths. 5xx details are logged, never sent.
 */
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
 * Incode answered with an error status. `body` is Incode's own error body (parsed when it was
 * JSON), kept so that drop-in paths can answer exactly as Incode did.
 */
export class UpstreamStatusError extends AppError {
  constructor(
    readonly upstreamStatus: number,
    readonly upstreamBody: unknown,
    message = `Incode answered ${upstreamStatus}`,
    statusCode = mapUpstreamStatus(upstreamStatus),
  ) {
    super(statusCode, `UPSTREAM_${upstreamStatus}`, message)
  }
}

/** The caller went away; nothing is sent, upstream calls are cancelled. */
export class ClientClosedError extends AppError {
  constructor() {
    super(499, 'CLIENT_CLOSED_REQUEST', 'The caller closed the request')
  }
}

/**
 * What a /v1 caller sees for an Incode error status: client errors that are the caller's (bad
 * session token, unknown interview, bad request) keep their status; a 403 is the service's own
 * API key failing unless the caller's session token was used (then the caller passes an explicit
 * status), and upstream 5xx become 502, since the caller cannot fix them.
 */
function mapUpstreamStatus(status: number): number {
  if (status === 400 || status === 401 || status === 404 || status === 413) return status
  if (status === 403) return 502
  if (status === 429) return 503
  if (status === 503 || status === 504) return status
  return 502
}
