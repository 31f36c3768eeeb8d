import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CircuitState,
  ConsecutiveBreaker,
  bulkhead,
  circuitBreaker,
  handleWhen,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
} from 'cockatiel'
import type { Config } from '../config.js'
import {
  AppError,
  CircuitOpenError,
  ClientClosedError,
  OverloadedError,
  UpstreamBadResponseError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../errors.js'
import { classifyBadGateway } from '../domain/badGateway.js'
import { INCODE_RESPONSE_CAP_BYTES } from '../domain/imageTypes.js'
import { parseUpstreamBody } from '../domain/upstreamBody.js'
import type { RateLimiterLike } from 'rate-limiter-flexible'
import type { Metrics } from '../metrics.js'
import { activeContext, inContext, inSpan } from '../tracing/spans.js'
import { RateBudget } from './rateBudget.js'
import { Retries, RetryBudget } from './retry.js'
import type { Transport } from './transport.js'
import type { AnswerVerdict, BreakerState, RawAnswer, UpstreamCall, UpstreamEndpoint } from './types.js'

/** Every upstream endpoint; each has a breaker of its own. */
export const UPSTREAM_ENDPOINTS = [
  'images',
  'imageLinks',
  'secondIdImages',
  'concatenatedImages',
  'adminLogin',
  'probe',
] as const satisfies readonly UpstreamEndpoint[]

/** Answers that count against Incode's health (after retries). */
const FAILURE_STATUSES: ReadonlySet<number> = new Set([500, 503, 504])

/**
 * Errors that count against Incode's health: it timed out, could not be reached, or answered
 * something broken. Not the caller leaving, not our own refusals (overload, deadline spent
 * queueing), not our size guard (one answer too large says nothing about health).
 */
export function isBreakerFailure(err: Error): boolean {
  if (err instanceof UpstreamTimeoutError || err instanceof UpstreamUnavailableError) return true
  return err instanceof UpstreamBadResponseError && err.code !== 'UPSTREAM_RESPONSE_TOO_LARGE'
}

/** Whether a body looks like one whole JSON value: an HTML page or a cut-off answer does not. */
function looksLikeJson(body: Buffer): boolean {
  let start = 0
  let end = body.length - 1
  while (start <= end && isSpace(body[start])) start++
  while (end >= start && isSpace(body[end])) end--
  if (start > end) return false
  const first = body[start]
  const last = body[end]
  return (first === 0x7b && last === 0x7d) || (first === 0x5b && last === 0x5d) // {…} or […]
}

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}

/**
 * The verdict on an answer when its caller gives none: 500, 503 and 504 are failures; a 502 is
 * one unless its body says it is the size cap (callers that know the expected size judge their
 * 502s themselves: see domain/badGateway.ts); a 2xx of a JSON endpoint that is not JSON (an HTML
 * page, a cut-off body) is one too. The readiness probe's answers only show that Incode is there.
 */
export function defaultVerdict(endpoint: UpstreamEndpoint, answer: RawAnswer): AnswerVerdict {
  const { status } = answer
  if (FAILURE_STATUSES.has(status)) return 'failure'
  if (endpoint === 'probe') return 'healthy'
  if (status === 502) {
    const body = parseUpstreamBody(answer.body)
    return classifyBadGateway({ body, estimatedBytes: undefined, capBytes: INCODE_RESPONSE_CAP_BYTES }) ===
      'size-cap'
      ? 'healthy'
      : 'failure'
  }
  // A streamed body was checked by its sink, which refuses (throws) what it cannot take.
  if (answer.streamedBytes !== undefined) return 'healthy'
  if (status >= 200 && status <= 299 && !looksLikeJson(answer.body)) return 'failure'
  return 'healthy'
}

/** An answer with the verdict on it, as the breaker's result. */
interface Judged {
  answer: RawAnswer
  failed: boolean
}

function isFailureAnswer(result: unknown): boolean {
  return (result as Judged | undefined)?.failed === true
}

/** One endpoint's breaker and when it last opened. */
interface EndpointBreaker {
  policy: CircuitBreakerPolicy
  openedAt: number
}

const GAUGE: Record<CircuitState, number> = {
  [CircuitState.Closed]: 0,
  [CircuitState.HalfOpen]: 1,
  [CircuitState.Open]: 2,
  [CircuitState.Isolated]: 2,
}

const MAX_TIMER_MS = 2 ** 31 - 1

/** The turn of a caller that had already left: ends at once, so that the queue moves on. */
class LeftQueueError extends Error {}

/**
 * Runs `task` when `enqueue` gives it its turn, unless the caller leaves or the deadline passes
 * first: then the caller is answered at once (ClientClosedError, or `late()`), and its turn, when
 * it comes, ends at once. Neither cockatiel's bulkhead nor rate-limiter-flexible's queue can drop a
 * waiting task, and
 * the bulkhead stalls its queue when handed an aborted signal, hence this. Once started, the task
 * is bounded by the transport's own signal and deadline handling.
 */
function waitTurn<T>(
  call: UpstreamCall,
  enqueue: (turn: () => Promise<T>) => Promise<T>,
  task: () => Promise<T>,
  late: () => AppError,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const { signal } = call
    let state: 'waiting' | 'started' | 'left' = 'waiting'
    const leave = (err: AppError) => {
      if (state !== 'waiting') return
      state = 'left'
      cleanup()
      reject(err)
    }
    const onAbort = () => leave(new ClientClosedError())
    const timer = setTimeout(
      () => leave(late()),
      Math.max(0, Math.min(call.deadlineAt - Date.now(), MAX_TIMER_MS)),
    )
    const cleanup = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    enqueue(() => {
      if (state === 'left') return Promise.reject(new LeftQueueError())
      state = 'started'
      cleanup()
      return task()
    }).then(resolve, (err: unknown) => {
      if (state === 'left') return // the caller has had its answer
      cleanup()
      reject(err instanceof Error ? err : new Error(String(err)))
    })
  })
}

/**
 * The resilience policy of every upstream call, in one place. Outermost first:
 *
 * 1. circuit breaker (cockatiel, ConsecutiveBreaker), one per upstream endpoint (so that a failing
 *    log-in does not close the image endpoints): while open, calls fail fast with
 *    CircuitOpenError before queueing anywhere; the failure accounting and the half-open probe
 *    wrap only the network part (step 4), so that a call refused by the bulkhead or the rate
 *    budget, or one that waited in a queue while the circuit opened, neither counts nor probes;
 * 2. bulkhead (cockatiel): UPSTREAM_MAX_CONCURRENT in flight, UPSTREAM_MAX_QUEUE waiting;
 * 3. request-rate budget (rate-limiter-flexible, even spacing; fleet-wide in fleet mode: see
 *    rateBudget.ts) when UPSTREAM_RATE_PER_SEC > 0;
 * 4. retries: undici's retry interceptor on the transport's dispatcher (retryInterceptors,
 *    composed where the transport is made), decided per call by Retries (see retry.ts) within
 *    the retry budget;
 * 5. the transport, which this policy is given and calls.
 *
 * What counts as a failure: the errors of isBreakerFailure, and answers judged so (the call's own
 * judge, else defaultVerdict). The bulkhead and the rate budget are shared by every endpoint.
 *
 * The caller's abort signal and deadline bound every wait. A probe that ends in anything but a
 * failure (a 4xx, or even its caller leaving) closes the circuit: cockatiel knows only those two.
 */
export class UpstreamPolicy {
  readonly #transport: Transport
  readonly #metrics: Metrics | undefined
  readonly #breakers = new Map<UpstreamEndpoint, EndpointBreaker>()
  readonly #threshold: number
  readonly #resetMs: number
  readonly #retryBudget: RetryBudget
  readonly #bulkhead: BulkheadPolicy
  readonly #rateBudget: RateBudget | undefined
  readonly #retries: Retries

  constructor(
    config: Config,
    options: {
      /** Its dispatcher composed with retryInterceptors(config.RETRY_MAX). */
      transport: Transport
      metrics?: Metrics | undefined
      /** Fleet mode: the request-rate budget shared by every replica (a RateLimiterRedis). */
      sharedRateLimiter?: RateLimiterLike | undefined
      /** Source of retry jitter, 0 ≤ x < 1 (tests pin it). */
      random?: () => number
    },
  ) {
    this.#transport = options.transport
    const metrics = options.metrics
    this.#metrics = metrics

    this.#resetMs = config.BREAKER_RESET_MS
    this.#threshold = config.BREAKER_FAILURE_THRESHOLD
    for (const endpoint of UPSTREAM_ENDPOINTS) this.#breakerOf(endpoint)

    this.#bulkhead = bulkhead(config.UPSTREAM_MAX_CONCURRENT, config.UPSTREAM_MAX_QUEUE)

    const rate = config.UPSTREAM_RATE_PER_SEC
    this.#rateBudget = rate > 0 ? new RateBudget(rate, options.sharedRateLimiter) : undefined

    this.#retryBudget = new RetryBudget({ ratio: config.RETRY_BUDGET_RATIO })
    this.#retries = new Retries({
      maxRetries: config.RETRY_MAX,
      baseMs: config.RETRY_BASE_MS,
      maxDelayMs: config.RETRY_MAX_DELAY_MS,
      budget: this.#retryBudget,
      metrics,
      ...(options.random ? { random: options.random } : {}),
    })
  }

  /**
   * The circuit breaker's state of one endpoint; 'half-open' once the next call would be let
   * through as the probe. Each endpoint has its own, so that one failing (the admin log-in, say)
   * does not refuse calls to the others.
   */
  breakerState(endpoint: UpstreamEndpoint): BreakerState {
    const breaker = this.#breakerOf(endpoint)
    switch (breaker.policy.state) {
      case CircuitState.Closed:
        return 'closed'
      case CircuitState.HalfOpen:
        return 'half-open'
      default:
        // cockatiel moves to half-open only when a call arrives; report it as due.
        return Date.now() - breaker.openedAt >= this.#resetMs ? 'half-open' : 'open'
    }
  }

  /**
   * Spends one retry from the service-wide retry budget for a retry decided by the caller (one
   * that only its answer's body could justify); false when the budget has none left.
   */
  spendRetry(): boolean {
    const granted = this.#retryBudget.tryRetry()
    this.#metrics?.upstreamRetries.inc({ outcome: granted ? 'retried' : 'budget_exhausted' })
    return granted
  }

  #breakerOf(endpoint: UpstreamEndpoint): EndpointBreaker {
    const known = this.#breakers.get(endpoint)
    if (known) return known
    const policy = circuitBreaker(handleWhen(isBreakerFailure).orWhenResult(isFailureAnswer), {
      halfOpenAfter: this.#resetMs,
      breaker: new ConsecutiveBreaker(this.#threshold),
    })
    const breaker: EndpointBreaker = { policy, openedAt: 0 }
    policy.onBreak(() => {
      breaker.openedAt = Date.now()
    })
    const metrics = this.#metrics
    policy.onStateChange((state) => metrics?.breakerState.set({ endpoint }, GAUGE[state]))
    metrics?.breakerState.set({ endpoint }, GAUGE[CircuitState.Closed])
    this.#breakers.set(endpoint, breaker)
    return breaker
  }

  /**
   * One logical call to Incode under the policy: may fail fast (CircuitOpenError, OverloadedError),
   * is retried where safe, and returns whatever status Incode answered last.
   */
  request(call: UpstreamCall): Promise<RawAnswer> {
    const { judge: _judge, ...request } = call
    const endpoint = call.endpoint ?? 'probe'
    // One span per logical call: its retries are events on it, each HTTP attempt undici's child span.
    return inSpan(`incode ${endpoint}`, async (span) => {
      if (span.isRecording()) span.setAttribute('incode.endpoint', endpoint)
      // Sent in this call's context even when its turn comes from another call's release.
      const send = inContext(activeContext(), () =>
        this.#transport.request({ ...request, retryOptions: (bounds) => this.#retries.forCall(bounds) }),
      )
      const answer = await this.#run(call, send)
      if (span.isRecording()) {
        span.setAttributes({
          'incode.status': answer.status,
          'incode.response_bytes': answer.streamedBytes ?? answer.body.length,
        })
      }
      return answer
    })
  }

  /** Runs one logical upstream call (`send`: the transport, retries inside) under the policy. */
  async #run(call: UpstreamCall, send: () => Promise<RawAnswer>): Promise<RawAnswer> {
    const endpoint = call.endpoint ?? 'probe'
    let startedAt: number | undefined
    try {
      const answer = await this.#admit(call, () =>
        this.#throughBreaker(call, () => {
          startedAt = performance.now()
          return send()
        }),
      )
      this.#metrics?.upstreamCalls.inc({ endpoint, status: String(answer.status) })
      return answer
    } catch (err) {
      this.#metrics?.upstreamCalls.inc({ endpoint, status: err instanceof AppError ? err.code : 'ERROR' })
      throw err
    } finally {
      // Only calls that reached the network: fast refusals would drown the latency histogram.
      if (startedAt !== undefined) {
        this.#metrics?.upstreamLatency.observe({ endpoint }, (performance.now() - startedAt) / 1000)
      }
    }
  }

  async #admit(call: UpstreamCall, start: () => Promise<RawAnswer>): Promise<RawAnswer> {
    if (call.signal?.aborted) throw new ClientClosedError()
    if (Date.now() >= call.deadlineAt) {
      throw new UpstreamTimeoutError('The request deadline passed before calling Incode')
    }
    // Fail fast while open, and while the half-open probe is out, rather than queue behind it.
    const breaker = this.#breakerOf(call.endpoint ?? 'probe')
    if (
      this.breakerState(call.endpoint ?? 'probe') === 'open' ||
      breaker.policy.state === CircuitState.HalfOpen
    ) {
      throw this.#openError(breaker)
    }
    const bulkhead = this.#bulkhead
    if (bulkhead.executionSlots <= 0 && bulkhead.queueSlots <= 0) throw this.#bulkheadFull()
    try {
      return await waitTurn(
        call,
        (turn) => bulkhead.execute(turn),
        () => this.#paced(call, start),
        () =>
          this.#shed(
            'bulkhead',
            new OverloadedError(
              'No slot for a call to Incode came free before the request deadline',
              1,
              'UPSTREAM_BULKHEAD_FULL',
            ),
          ),
      )
    } catch (err) {
      if (err instanceof BulkheadRejectedError) throw this.#bulkheadFull()
      throw err
    }
  }

  #paced(call: UpstreamCall, start: () => Promise<RawAnswer>): Promise<RawAnswer> {
    const budget = this.#rateBudget
    if (budget === undefined) return start()
    // Every call ahead holds one spacing slot.
    const waitMs = budget.waitMs()
    // Refuse at once what cannot start in time, instead of holding it until its deadline.
    if (Date.now() + waitMs >= call.deadlineAt) return Promise.reject(this.#rateLimited(waitMs))
    return waitTurn(
      call,
      (turn) => budget.schedule(turn),
      start,
      () => this.#rateLimited(waitMs),
    )
  }

  async #throughBreaker(call: UpstreamCall, send: () => Promise<RawAnswer>): Promise<RawAnswer> {
    // Checked here too, so that a deadline spent queueing never counts against Incode's health.
    if (call.signal?.aborted) throw new ClientClosedError()
    if (Date.now() >= call.deadlineAt) {
      throw new UpstreamTimeoutError('The request deadline passed before calling Incode')
    }
    const endpoint = call.endpoint ?? 'probe'
    const breaker = this.#breakerOf(endpoint)
    // Another call became the probe while this one waited in a queue.
    if (breaker.policy.state === CircuitState.HalfOpen) throw this.#openError(breaker)
    try {
      // The verdict is taken inside the breaker's accounting: a malformed 200 counts as a failure.
      const judged = await breaker.policy.execute(async (): Promise<Judged> => {
        const answer = await send()
        const verdict = call.judge?.(answer) ?? defaultVerdict(endpoint, answer)
        return { answer, failed: verdict === 'failure' }
      })
      return judged.answer
    } catch (err) {
      if (err instanceof BrokenCircuitError) throw this.#openError(breaker)
      throw err
    }
  }

  #openError(breaker: EndpointBreaker): CircuitOpenError {
    const remainingMs = breaker.openedAt + this.#resetMs - Date.now()
    return new CircuitOpenError(Math.max(1, Math.ceil(remainingMs / 1000)))
  }

  #bulkheadFull(): OverloadedError {
    return this.#shed(
      'bulkhead',
      new OverloadedError('Too many calls to Incode in flight and waiting', 1, 'UPSTREAM_BULKHEAD_FULL'),
    )
  }

  #rateLimited(waitMs: number): OverloadedError {
    return this.#shed(
      'upstream_rate',
      new OverloadedError(
        "Incode's request-rate budget cannot fit this call before its deadline",
        Math.max(1, Math.ceil(waitMs / 1000)),
        'UPSTREAM_RATE_LIMITED',
      ),
    )
  }

  #shed<E extends AppError>(reason: 'bulkhead' | 'upstream_rate', err: E): E {
    this.#metrics?.shed.inc({ reason })
    return err
  }
}
