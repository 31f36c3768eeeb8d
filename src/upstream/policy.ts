import Bottleneck from 'bottleneck'
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
import type { Dispatcher } from 'undici'
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
import type { Metrics } from '../metrics.js'
import { Retries, RetryBudget, type CallRetryOptions } from './retry.js'
import type { RawAnswer, UpstreamEndpoint } from './transport.js'

/** 'half-open': the reset time has passed and the next call goes through as the probe, or it is out. */
export type BreakerState = 'closed' | 'half-open' | 'open'

/** What the policy needs to know of one upstream call. */
export interface PolicyCall {
  /** Metrics label; calls that name none are the readiness probe's. */
  endpoint?: UpstreamEndpoint | undefined
  signal?: AbortSignal | undefined
  /** Epoch ms (Date.now() clock). */
  deadlineAt: number
}

/** Answers that count against Incode's health (after retries). 502 is Incode's "too large": healthy. */
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

function isFailureAnswer(result: unknown): boolean {
  const status = (result as { status?: unknown } | null)?.status
  return typeof status === 'number' && FAILURE_STATUSES.has(status)
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
 * it comes, ends at once. Neither cockatiel's bulkhead nor bottleneck can drop a waiting task, and
 * the bulkhead stalls its queue when handed an aborted signal, hence this. Once started, the task
 * is bounded by the transport's own signal and deadline handling.
 */
function waitTurn<T>(
  call: PolicyCall,
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
 * 1. circuit breaker (cockatiel, ConsecutiveBreaker): while open, calls fail fast with
 *    CircuitOpenError before queueing anywhere; the failure accounting and the half-open probe
 *    wrap only the network part (step 4), so that a call refused by the bulkhead or the rate
 *    budget, or one that waited in a queue while the circuit opened, neither counts nor probes;
 * 2. bulkhead (cockatiel): UPSTREAM_MAX_CONCURRENT in flight, UPSTREAM_MAX_QUEUE waiting;
 * 3. request-rate budget (bottleneck, minTime spacing) when UPSTREAM_RATE_PER_SEC > 0;
 * 4. retries: undici's retry interceptor on the transport's dispatcher, decided per call by
 *    Retries (see retry.ts) within the retry budget;
 * 5. the transport.
 *
 * The caller's abort signal and deadline bound every wait. A probe that ends in anything but a
 * failure (a 4xx, or even its caller leaving) closes the circuit: cockatiel knows only those two.
 */
export class UpstreamPolicy {
  readonly #metrics: Metrics | undefined
  readonly #breaker: CircuitBreakerPolicy
  readonly #resetMs: number
  #openedAt = 0
  readonly #bulkhead: BulkheadPolicy
  readonly #limiter: Bottleneck | undefined
  readonly #spacingMs: number
  readonly #retries: Retries

  constructor(config: Config, options: { metrics?: Metrics | undefined; random?: () => number } = {}) {
    const metrics = options.metrics
    this.#metrics = metrics

    this.#resetMs = config.BREAKER_RESET_MS
    this.#breaker = circuitBreaker(handleWhen(isBreakerFailure).orWhenResult(isFailureAnswer), {
      halfOpenAfter: config.BREAKER_RESET_MS,
      breaker: new ConsecutiveBreaker(config.BREAKER_FAILURE_THRESHOLD),
    })
    this.#breaker.onBreak(() => {
      this.#openedAt = Date.now()
    })
    this.#breaker.onStateChange((state) => metrics?.breakerState.set(GAUGE[state]))
    metrics?.breakerState.set(GAUGE[CircuitState.Closed])

    this.#bulkhead = bulkhead(config.UPSTREAM_MAX_CONCURRENT, config.UPSTREAM_MAX_QUEUE)

    const rate = config.UPSTREAM_RATE_PER_SEC
    this.#spacingMs = rate > 0 ? Math.ceil(1000 / rate) : 0
    // Spacing rather than a reservoir: Incode's limits are unpublished, and even spacing never bursts.
    this.#limiter = rate > 0 ? new Bottleneck({ minTime: this.#spacingMs, maxConcurrent: null }) : undefined

    this.#retries = new Retries({
      maxRetries: config.RETRY_MAX,
      baseMs: config.RETRY_BASE_MS,
      maxDelayMs: config.RETRY_MAX_DELAY_MS,
      budget: new RetryBudget({ ratio: config.RETRY_BUDGET_RATIO }),
      metrics,
      ...(options.random ? { random: options.random } : {}),
    })
  }

  /** The circuit breaker's state; 'half-open' once the next call would be let through as the probe. */
  breakerState(): BreakerState {
    switch (this.#breaker.state) {
      case CircuitState.Closed:
        return 'closed'
      case CircuitState.HalfOpen:
        return 'half-open'
      default:
        // cockatiel moves to half-open only when a call arrives; report it as due.
        return Date.now() - this.#openedAt >= this.#resetMs ? 'half-open' : 'open'
    }
  }

  /** Interceptors for the transport's dispatcher (`dispatcher.compose(...)`). */
  interceptors(): Dispatcher.DispatcherComposeInterceptor[] {
    return this.#retries.interceptors()
  }

  /**
   * The per-request `retryOptions` for one upstream request: its signal (aborted when the caller
   * leaves or the deadline passes) and deadline bound the retries. Counts the call in the budget.
   */
  retryOptions(bounds: { signal: AbortSignal; deadlineAt: number }): CallRetryOptions {
    return this.#retries.forCall(bounds)
  }

  /** Runs one logical upstream call (`send`: the transport, retries inside) under the policy. */
  async run(call: PolicyCall, send: () => Promise<RawAnswer>): Promise<RawAnswer> {
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

  async #admit(call: PolicyCall, start: () => Promise<RawAnswer>): Promise<RawAnswer> {
    if (call.signal?.aborted) throw new ClientClosedError()
    if (Date.now() >= call.deadlineAt) {
      throw new UpstreamTimeoutError('The request deadline passed before calling Incode')
    }
    // Fail fast while open, and while the half-open probe is out, rather than queue behind it.
    if (this.breakerState() === 'open' || this.#breaker.state === CircuitState.HalfOpen) {
      throw this.#openError()
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

  #paced(call: PolicyCall, start: () => Promise<RawAnswer>): Promise<RawAnswer> {
    const limiter = this.#limiter
    if (limiter === undefined) return start()
    // Every job ahead holds one spacing slot (bottleneck registers them all at once, staggered).
    const { RECEIVED, QUEUED, RUNNING } = limiter.counts()
    const waitMs = (RECEIVED + QUEUED + RUNNING) * this.#spacingMs
    // Refuse at once what cannot start in time, instead of holding it until its deadline.
    if (Date.now() + waitMs >= call.deadlineAt) return Promise.reject(this.#rateLimited(waitMs))
    return waitTurn(
      call,
      (turn) => limiter.schedule(turn),
      start,
      () => this.#rateLimited(waitMs),
    )
  }

  async #throughBreaker(call: PolicyCall, send: () => Promise<RawAnswer>): Promise<RawAnswer> {
    // Checked here too, so that a deadline spent queueing never counts against Incode's health.
    if (call.signal?.aborted) throw new ClientClosedError()
    if (Date.now() >= call.deadlineAt) {
      throw new UpstreamTimeoutError('The request deadline passed before calling Incode')
    }
    // Another call became the probe while this one waited in a queue.
    if (this.#breaker.state === CircuitState.HalfOpen) throw this.#openError()
    try {
      return await this.#breaker.execute(send)
    } catch (err) {
      if (err instanceof BrokenCircuitError) throw this.#openError()
      throw err
    }
  }

  #openError(): CircuitOpenError {
    const remainingMs = this.#openedAt + this.#resetMs - Date.now()
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
