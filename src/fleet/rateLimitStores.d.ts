// @fastify/rate-limit ships its stores untyped: the store interface src/fleet/rateLimitStore.ts implements.

declare module '@fastify/rate-limit/store/RedisStore.js' {
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
}
