import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import LocalStore from '@fastify/rate-limit/store/LocalStore.js'
import RedisStore, {
  type ChildOptions,
  type RateLimitCount,
  type RateLimitStore,
} from '@fastify/rate-limit/store/RedisStore.js'
import type { Fleet } from './redis.js'

/** What @fastify/rate-limit gives a store's constructor, as far as this store reads it. */
interface StoreParams {
  continueExceeding: boolean
  exponentialBackoff: boolean
}

/**
 * @fastify/rate-limit's store in fleet mode: the plugin's own Redis store (its atomic Lua
 * counter) while Redis answers, so that a caller's limit holds across the fleet, and its own
 * local store when Redis does not. The local store counts every request all the time, so that
 * it is warm when Redis goes away.
 *
 * Chosen over the plugin's `skipOnError` (which lets every request through while Redis is down:
 * no limit at all) and over failing requests (Redis must never fail one). The trade-off: while
 * Redis is down, each replica enforces the limit on its own, so a caller spread over N replicas
 * gets up to N times its limit, and counts made in Redis are not carried over in either direction.
 *
 * Key names are the keyed hash (fleet.seal) of the limit's namespace and the caller key: they
 * reveal no token hash, partner name or address.
 */
class FleetRateLimitStore implements RateLimitStore {
  readonly #fleet: Fleet
  readonly #shared: RateLimitStore
  readonly #local: RateLimitStore
  readonly #namespace: string

  constructor(fleet: Fleet, params: StoreParams, namespace: string) {
    this.#fleet = fleet
    this.#namespace = namespace
    this.#shared = new RedisStore(
      params.continueExceeding,
      params.exponentialBackoff,
      fleet.redis,
      `${fleet.prefix}rate-limit:`,
    )
    this.#local = new LocalStore(params.continueExceeding, params.exponentialBackoff)
  }

  incr(
    key: string,
    callback: (err: Error | null, result: RateLimitCount | null) => void,
    timeWindow: number,
    max: number,
  ): void {
    this.#local.incr(
      key,
      (localError, local) => {
        const name = this.#fleet.seal.name('rate-limit', this.#namespace, key)
        void this.#fleet
          .run(
            () =>
              new Promise<RateLimitCount | null>((resolve, reject) => {
                this.#shared.incr(
                  name,
                  (err, result) => {
                    if (err) reject(err)
                    else resolve(result)
                  },
                  timeWindow,
                  max,
                )
              }),
          )
          .then((shared) => {
            // Redis down, slow or failing (fleet.run answered undefined): this replica's count.
            if (shared) callback(null, shared)
            else callback(localError, local)
          })
      },
      timeWindow,
      max,
    )
  }

  child(options: ChildOptions): RateLimitStore {
    const { method = '', url = '' } = options.routeInfo
    return new FleetRateLimitStore(this.#fleet, options, `${this.#namespace}|${method} ${url}`)
  }
}

/** The store class to give @fastify/rate-limit (`store:`) in fleet mode. */
export function fleetRateLimitStore(fleet: Fleet): FastifyRateLimitStoreCtor {
  const store = class extends FleetRateLimitStore {
    constructor(params: StoreParams) {
      super(fleet, params, 'global')
    }
  }
  // The plugin's type names a narrower incr (key and callback); it calls it with the window and max.
  return store as unknown as FastifyRateLimitStoreCtor
}
