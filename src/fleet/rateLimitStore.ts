import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { ChildOptions, RateLimitCount, RateLimitStore } from '@fastify/rate-limit/store/RedisStore.js'
import type { Fleet } from './redis.js'

/** Caller keys whose Redis names are remembered per store (an HMAC each otherwise, per request). */
const NAMES_KEPT = 10_000

/**
 * @fastify/rate-limit's store in fleet mode: each request is counted by the replica's
 * RateCounters (fleet.rateCounters), which answer at once from memory and synchronise with Redis
 * every RATE_LIMIT_SYNC_MS in one round trip for all callers, so that a caller's limit holds
 * across the fleet (up to what the other replicas admit between syncs, see RateCounters) without
 * any request waiting on Redis. While Redis is unavailable the counting goes on in the replica on
 * top of the last fleet total it saw: never more than the limit per replica, never unlimited
 * (unlike the plugin's `skipOnError`), and no request fails for Redis.
 *
 * The plugin's `continueExceeding` and `exponentialBackoff` are not supported here (this service
 * uses neither): the window is the one Redis started for the caller.
 *
 * Key names are the keyed hash (fleet.seal) of the limit's namespace and the caller key: they
 * reveal no token hash, partner name or address.
 */
class FleetRateLimitStore implements RateLimitStore {
  readonly #fleet: Fleet
  readonly #namespace: string
  readonly #names = new Map<string, string>()

  constructor(fleet: Fleet, namespace: string) {
    this.#fleet = fleet
    this.#namespace = namespace
  }

  incr(
    key: string,
    callback: (err: Error | null, result: RateLimitCount | null) => void,
    timeWindow: number,
  ): void {
    let name = this.#names.get(key)
    if (name === undefined) {
      name = `${this.#fleet.prefix}rate-limit:${this.#fleet.seal.name('rate-limit', this.#namespace, key)}`
      if (this.#names.size >= NAMES_KEPT) this.#names.clear()
      this.#names.set(key, name)
    }
    callback(null, this.#fleet.rateCounters.incr(name, timeWindow))
  }

  child(options: ChildOptions): RateLimitStore {
    const { method = '', url = '' } = options.routeInfo
    return new FleetRateLimitStore(this.#fleet, `${this.#namespace}|${method} ${url}`)
  }
}

/** The store class to give @fastify/rate-limit (`store:`) in fleet mode. */
export function fleetRateLimitStore(fleet: Fleet): FastifyRateLimitStoreCtor {
  const store = class extends FleetRateLimitStore {
    constructor() {
      super(fleet, 'global')
    }
  }
  // The plugin's type names a narrower incr (key and callback); it calls it with the window and max.
  return store as unknown as FastifyRateLimitStoreCtor
}
