import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible'
import type { Fleet } from './redis.js'

/**
 * The upstream request-rate budget shared by the fleet (UPSTREAM_RATE_PER_SEC): a
 * rate-limiter-flexible RateLimiterRedis of `ratePerSec` points per one-second window, one counter
 * for every replica. While Redis is down or not ready (`rejectIfRedisNotReady`, and ioredis's
 * short command timeout when it is slow) its insurance answers instead: a RateLimiterMemory of the
 * same budget in this replica alone, so the budget degrades to a per-replica one, never to none.
 * Each replica spaces its own calls evenly on top of this (upstream/rateBudget.ts).
 */
export function fleetUpstreamRateLimiter(fleet: Fleet, ratePerSec: number): RateLimiterRedis {
  return new RateLimiterRedis({
    storeClient: fleet.redis,
    keyPrefix: fleet.key('upstream-budget'),
    points: ratePerSec,
    duration: 1,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ points: ratePerSec, duration: 1 }),
  })
}
