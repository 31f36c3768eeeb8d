import { RateLimiterMemory, RateLimiterQueue, type RateLimiterLike } from 'rate-limiter-flexible'

/**
 * The request-rate budget toward Incode (UPSTREAM_RATE_PER_SEC), on rate-limiter-flexible.
 *
 * In this process, calls are spaced evenly, one every 1000/rate ms (a RateLimiterMemory of one
 * point per spacing, waited on in a RateLimiterQueue, first in first out): Incode's limits are
 * unpublished, and even spacing never bursts. Given a shared limiter (fleet mode: a
 * RateLimiterRedis of `rate` points per second, with a local one as its insurance), each call
 * then also takes a point from it, so that the fleet as a whole stays within the budget; when
 * Redis fails, its insurance answers and the spacing above still holds in each replica.
 */
export class RateBudget {
  readonly spacingMs: number
  readonly #local: RateLimiterQueue
  readonly #shared: RateLimiterQueue | undefined
  /** Calls given to the budget whose call has not ended yet (each holds one spacing slot). */
  #pending = 0

  constructor(ratePerSec: number, shared?: RateLimiterLike) {
    this.spacingMs = Math.ceil(1000 / ratePerSec)
    this.#local = new RateLimiterQueue(new RateLimiterMemory({ points: 1, duration: this.spacingMs / 1000 }))
    this.#shared = shared ? new RateLimiterQueue(shared) : undefined
  }

  /** How long a call given now would wait for its turn, as far as this process can tell. */
  waitMs(): number {
    return this.#pending * this.spacingMs
  }

  /** Runs `turn` once the budget has a slot for it. */
  async schedule<T>(turn: () => Promise<T>): Promise<T> {
    this.#pending++
    try {
      await this.#local.removeTokens(1)
      await this.#shared?.removeTokens(1)
      return await turn()
    } finally {
      this.#pending--
    }
  }
}
