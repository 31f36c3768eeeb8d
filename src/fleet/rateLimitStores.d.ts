// @fastify/rate-limit ships its two stores untyped: what src/fleet/rateLimitStore.ts uses of them.

declare module '@fastify/rate-limit/store/LocalStore.js' {
  import type { RateLimitStore } from '@fastify/rate-limit/store/RedisStore.js'
  const LocalStore: new (
    continueExceeding: boolean,
    exponentialBackoff: boolean,
    cache?: number,
  ) => RateLimitStore
  export default LocalStore
}

declare module '@fastify/rate-limit/store/RedisStore.js' {
  import type { Redis } from 'ioredis'

  export interface RateLimitCount {
    current: number
    /** Milliseconds left in the window. */
    ttl: number
  }
  /** What the plugin passes to `child` (its merged options for a route or a createRateLimit). */
  export interface ChildOptions {
    continueExceeding: boolean
    exponentialBackoff: boolean
    cache?: number
    routeInfo: { method?: string; url?: string }
  }
  export interface RateLimitStore {
    incr(
      key: string,
      callback: (err: Error | null, result: RateLimitCount | null) => void,
      timeWindow: number,
      max: number,
    ): void
    child(options: ChildOptions): RateLimitStore
  }
  const RedisStore: new (
    continueExceeding: boolean,
    exponentialBackoff: boolean,
    redis: Redis,
    key?: string,
  ) => RateLimitStore
  export default RedisStore
}
