import { interceptors, type Dispatcher } from 'undici'
import type { Metrics } from '../metrics.js'
import { activeContext, recordingSpan, type Context } from '../tracing/spans.js'
import { inFirstAttemptContext, rememberAttemptContext } from './attemptContext.js'
import { errorCodeOf } from './errorCode.js'
import type { CallRetryOptions, RequestBounds } from './types.js'

/**
 * Retries of upstream calls, as undici's retry interceptor (RetryHandler) with our own `retry`
 * callback deciding each retry: only failures that are safe to retry, full-jitter exponential
 * backoff or the answer's Retry-After, within the call's deadline and a service-wide retry budget.
 * The calls are idempotent reads (POST included), with string bodies that replay as they are.
 */

/** The calls to Incode are idempotent reads, POST included; nothing else is ever retried. */
export const RETRYABLE_METHODS: ReadonlySet<Dispatcher.HttpMethod> = new Set(['GET', 'POST'])

/** Answers that say "try again": Incode overloaded or its gateway timing out. Never 502 (too large). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([503, 504])

/**
 * Network errors before any response: the connection could not be made or broke before Incode
 * answered. Headers and body timeouts are not here: Incode may still be working on the request,
 * and a slow upstream only gets slower when asked twice.
 */
export const RETRYABLE_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENETDOWN',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
])

/** Retry-After (delta seconds or an HTTP date) in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: unknown, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? (value as unknown[])[0] : value
  if (typeof raw !== 'string') return undefined
  const text = raw.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  // An HTTP date names its day and month; Date.parse would also take '-1' as a year.
  if (!/[a-z]/i.test(text)) return undefined
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** Full jitter: a random delay below RETRY_BASE_MS × 2^(retry−1), capped at RETRY_MAX_DELAY_MS. */
export function backoffMs(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1))
  return Math.floor(random() * ceiling)
}

/** Retries a service that hears nothing else may still make per second. */
export const RETRY_BUDGET_MIN_PER_SEC = 3
/** Retries the budget can save up for a burst. */
export const RETRY_BUDGET_MAX_SAVED = 10

/**
 * A token bucket that keeps retries to a fraction of recent calls, so that retries cannot snowball
 * when Incode struggles: each call deposits `ratio` tokens, each retry spends one, and a trickle
 * of `minPerSecond` tokens per second lets a quiet service still retry. At most `maxSaved` tokens
 * are kept, so a long quiet spell does not buy a storm of retries later.
 */
export class RetryBudget {
  readonly #ratio: number
  readonly #minPerSecond: number
  readonly #maxSaved: number
  readonly #now: () => number
  #tokens: number
  #refilledAt: number

  constructor(options: { ratio: number; minPerSecond?: number; maxSaved?: number; now?: () => number }) {
    this.#ratio = options.ratio
    this.#minPerSecond = options.minPerSecond ?? RETRY_BUDGET_MIN_PER_SEC
    this.#maxSaved = Math.max(1, options.maxSaved ?? RETRY_BUDGET_MAX_SAVED)
    this.#now = options.now ?? (() => performance.now())
    this.#tokens = Math.min(this.#maxSaved, this.#minPerSecond)
    this.#refilledAt = this.#now()
  }

  /** Tokens available now (for tests and diagnostics). */
  get tokens(): number {
    this.#refill()
    return this.#tokens
  }

  /** One call was made. */
  recordCall(): void {
    this.#refill()
    this.#tokens = Math.min(this.#maxSaved, this.#tokens + this.#ratio)
  }

  /** Spends one token for a retry; false when there is none. */
  tryRetry(): boolean {
    this.#refill()
    // Ten deposits of 0.1 add up to 0.9999…: allow for the rounding.
    if (this.#tokens < 1 - 1e-9) return false
    this.#tokens -= 1
    return true
  }

  #refill(): void {
    const now = this.#now()
    const elapsed = Math.max(0, now - this.#refilledAt)
    this.#refilledAt = now
    this.#tokens = Math.min(this.#maxSaved, this.#tokens + (this.#minPerSecond * elapsed) / 1000)
  }
}

/**
 * Errors that happened after an attempt's response had begun. RetryHandler would "resume" such a
 * body with a Range request, which Incode does not serve; the retry callback refuses them instead.
 */
const brokenAfterResponseStart = new WeakSet<object>()

/** Marks errors that reach an attempt after its response started (see brokenAfterResponseStart). */
class ResponseStartTracker implements Dispatcher.DispatchHandler {
  #started = false

  constructor(private readonly handler: Dispatcher.DispatchHandler) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.handler.onRequestStart?.(controller, context)
  }

  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>[2],
    socket: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>[3],
  ): void {
    this.handler.onRequestUpgrade?.(controller, statusCode, headers, socket)
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2],
    statusMessage?: string,
  ): void {
    this.#started = true
    this.handler.onResponseStart?.(controller, statusCode, headers, statusMessage)
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.handler.onResponseData?.(controller, chunk)
  }

  onResponseEnd(
    controller: Dispatcher.DispatchController,
    trailers: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseEnd']>>[1],
  ): void {
    this.handler.onResponseEnd?.(controller, trailers)
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    // A WeakSet holds only objects; whatever undici passes must not throw here.
    const broken: unknown = error
    if (this.#started && typeof broken === 'object' && broken !== null) brokenAfterResponseStart.add(broken)
    this.handler.onResponseError?.(controller, error)
  }
}

export interface RetrySettings {
  maxRetries: number
  baseMs: number
  maxDelayMs: number
  budget: RetryBudget
  metrics?: Metrics | undefined
  random?: () => number
}

/**
 * The interceptors that carry out the retries, for the transport's dispatcher
 * (`dispatcher.compose(...)`), innermost first so that the tracker sees every attempt. Composed
 * once; each request's `retryOptions` (undici merges them over the interceptor's) bring the
 * decisions of Retries.forCall, bound to that request's deadline and abort signal. A request
 * without them is not retried.
 */
export function retryInterceptors(maxRetries: number): Dispatcher.DispatcherComposeInterceptor[] {
  const track: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) =>
    dispatch(opts, new ResponseStartTracker(handler))
  return [
    // Innermost, as the pool sees each attempt (attemptContext.ts: each stays in its call's trace).
    rememberAttemptContext,
    track,
    // Outside the tracker, which wraps each attempt anew: this sees the retry handler itself.
    inFirstAttemptContext,
    interceptors.retry({
      // The per-call callback decides; these only keep undici's own filters out of the way.
      maxRetries,
      methods: [...RETRYABLE_METHODS],
      statusCodes: [...RETRYABLE_STATUSES],
      errorCodes: [...RETRYABLE_ERROR_CODES],
      // Hand every non-retried answer on as it is (with its body), rather than as an error.
      throwOnError: false,
      retry: (err, _context, done) => done(err),
    }),
  ]
}

/** Retry decisions, per call, within the call's deadline and the service-wide retry budget. */
export class Retries {
  readonly #settings: RetrySettings
  readonly #random: () => number

  constructor(settings: RetrySettings) {
    this.#settings = settings
    this.#random = settings.random ?? Math.random
  }

  /**
   * The retry callback for one call: `signal` aborts when the caller leaves or the deadline
   * passes; `deadlineAt` (epoch ms) bounds every wait. Records the call in the retry budget.
   */
  forCall(bounds: RequestBounds): CallRetryOptions {
    this.#settings.budget.recordCall()
    // undici asks from the socket's context: the retry event goes to the call's own span.
    const callContext = activeContext()
    return {
      retry: (err, { state, opts }, done) =>
        RETRYABLE_METHODS.has(opts.method)
          ? this.#decide(err, state.counter, bounds, done, callContext)
          : done(err),
    }
  }

  #decide(
    err: Error,
    attempts: number,
    bounds: RequestBounds,
    done: (result?: Error | null) => void,
    callContext: Context,
  ): void {
    const { maxRetries, baseMs, maxDelayMs, budget, metrics } = this.#settings
    const status = (err as { statusCode?: unknown }).statusCode
    // A status error comes while undici holds that answer paused; a network error has no answer.
    const answered = typeof status === 'number'
    const retryable = answered
      ? RETRYABLE_STATUSES.has(status)
      : !brokenAfterResponseStart.has(err) && RETRYABLE_ERROR_CODES.has(errorCodeOf(err) ?? '')
    // `attempts` counts the attempts made so far, the first included.
    if (!retryable || attempts > maxRetries || bounds.signal.aborted) {
      done(err)
      return
    }

    const headers = (err as { headers?: Record<string, unknown> }).headers
    const delay =
      parseRetryAfterMs(headers?.['retry-after']) ?? backoffMs(attempts, baseMs, maxDelayMs, this.#random)
    if (Date.now() + delay >= bounds.deadlineAt) {
      metrics?.upstreamRetries.inc({ outcome: 'deadline' })
      done(err)
      return
    }
    if (!budget.tryRetry()) {
      metrics?.upstreamRetries.inc({ outcome: 'budget_exhausted' })
      done(err)
      return
    }
    metrics?.upstreamRetries.inc({ outcome: 'retried' })
    const span = recordingSpan(callContext)
    if (span) {
      span.addEvent('retry', {
        'incode.attempt': attempts + 1,
        'incode.retry_delay_ms': delay,
        ...(answered ? { 'incode.status': status } : { 'error.type': errorCodeOf(err) ?? 'Error' }),
      })
    }

    const onAbort = () => {
      clearTimeout(timer)
      // A paused answer is aborted by undici itself (the request's signal reaches its
      // controller); "retry" then only resumes that aborted answer. After a network error
      // nothing is in flight, so the error is handed on at once instead of after the wait.
      done(answered ? null : err)
    }
    const timer = setTimeout(() => {
      bounds.signal.removeEventListener('abort', onAbort)
      done(null)
    }, delay)
    bounds.signal.addEventListener('abort', onAbort, { once: true })
  }
}
