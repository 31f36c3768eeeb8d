import {
  ConsecutiveBreaker,
  CircuitState,
  circuitBreaker,
  handleAll,
  type CircuitBreakerPolicy,
} from 'cockatiel'
import type { FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import type { Config } from '../config.js'
import type { Metrics } from '../metrics.js'
import { RateCounters } from './rateCounters.js'
import { FleetSeal } from './seal.js'

/** Consecutive Redis failures after which the replica stops asking Redis for a while. */
const FAILURES_TO_OPEN = 3
/**
 * Key names remembered: each is a keyed hash per accepted secret, and an L2 lookup of 6 types
 * names 7 keys (about 25–45 µs of HMACs per read when computed each time). A name depends only
 * on the secrets, the prefix and the parts, so it never goes stale.
 */
const NAMES_KEPT = 20_000

type Handler = (message: Buffer) => void

export interface FleetOptions {
  config: Config
  log: FastifyBaseLogger
  metrics?: Metrics | undefined
}

/**
 * Fleet mode's one door to Redis (ioredis): every command goes through `run`, which never throws
 * and never waits long. A command gets REDIS_COMMAND_TIMEOUT_MS; commands are not queued while
 * the connection is down (they fail at once); consecutive failures open a breaker of its own for
 * REDIS_BREAKER_RESET_MS, during which `run` answers `undefined` without asking Redis. Callers
 * read `undefined` as "Redis has nothing to say" and fall back to local state (L1 cache, local
 * coalescing, local limits). Entering and leaving that degraded mode is logged once each way and
 * shown by the gateway_fleet_degraded gauge. ioredis reconnects by itself (with backoff), and
 * the subscriber connection re-subscribes by itself.
 */
export class Fleet {
  readonly redis: Redis
  readonly seal: FleetSeal
  readonly prefix: string
  /** The per-caller rate limits' counts, local first and synchronised with Redis in batches. */
  readonly rateCounters: RateCounters
  readonly #log: FastifyBaseLogger
  readonly #metrics: Metrics | undefined
  readonly #breaker: CircuitBreakerPolicy
  readonly #handlers = new Map<string, Set<Handler>>()
  /** kind and parts (joined as the keyed hash reads them) → the key's names, current secret first. */
  readonly #names = new LRUCache<string, readonly string[]>({ max: NAMES_KEPT })
  readonly #nameSets = new LRUCache<string, readonly (readonly string[])[]>({ max: NAMES_KEPT })
  #subscriber: Redis | undefined
  #degraded = false
  #closed = false

  constructor(options: FleetOptions) {
    const { config, log, metrics } = options
    if (config.REDIS_URL === undefined || config.FLEET_SECRET === undefined)
      throw new Error('fleet mode needs REDIS_URL and FLEET_SECRET')
    this.#log = log
    this.#metrics = metrics
    this.prefix = config.REDIS_KEY_PREFIX
    this.seal = new FleetSeal(
      config.FLEET_SECRET,
      config.FLEET_OLD_SECRETS.split(',').map((s) => s.trim()),
    )
    this.redis = new Redis(config.REDIS_URL, {
      commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: Math.max(1_000, config.REDIS_COMMAND_TIMEOUT_MS * 10),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Off: auto-pipelining holds each command until setImmediate to batch it with others, which
      // cost an L2 hit's one MGET about 0.1–0.5 ms on a busy machine (measured in-process, each
      // way twice); no request path now sends more than one command at a time, and the rate
      // limits batch their counts themselves (RateCounters).
      enableAutoPipelining: false,
      // Reconnect for ever, backing off to once every 2 s.
      retryStrategy: (times) => Math.min(times * 100, 2_000),
      lazyConnect: false,
    })
    // Without a listener ioredis prints every connection error; the state changes are logged below.
    this.redis.on('error', () => {})
    this.redis.on('ready', () => {
      this.#setDegraded(false)
    })
    this.redis.on('end', () => {
      this.#setDegraded(true)
    })
    this.#breaker = circuitBreaker(handleAll, {
      halfOpenAfter: config.REDIS_BREAKER_RESET_MS,
      breaker: new ConsecutiveBreaker(FAILURES_TO_OPEN),
    })
    this.#breaker.onBreak(() => {
      this.#setDegraded(true)
    })
    this.#breaker.onReset(() => {
      if (this.redis.status === 'ready') this.#setDegraded(false)
    })
    metrics?.fleetDegraded.set(0)
    this.rateCounters = new RateCounters({ fleet: this, syncMs: config.RATE_LIMIT_SYNC_MS })
  }

  /**
   * Resolves once the first connection attempt has an outcome: ready, refused or failed (the
   * replica then runs degraded and recovers by itself), or after `maxMs` at most. The start-up
   * readiness check waits for it: run before Redis answers, its admin log-in would be each
   * replica's own instead of one for the fleet.
   */
  connected(maxMs: number): Promise<void> {
    if (this.redis.status === 'ready') return Promise.resolve()
    const outcomes = ['ready', 'error', 'end'] as const
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        for (const event of outcomes) this.redis.off(event, done)
        resolve()
      }
      const timer = setTimeout(done, maxMs)
      timer.unref()
      for (const event of outcomes) this.redis.once(event, done)
    })
  }

  /** Whether the replica is on local state (Redis unreachable, slow or failing). */
  get degraded(): boolean {
    return this.#degraded || this.redis.status !== 'ready' || this.#breaker.state === CircuitState.Open
  }

  /**
   * The degraded state, after one probe when the breaker is open but the connection is back: a
   * replica without traffic (nothing else runs a command through the breaker) would otherwise
   * report itself degraded for ever after Redis returned. The probe passes only once the
   * breaker's reset time is over.
   */
  async probe(): Promise<boolean> {
    if (this.redis.status === 'ready' && this.#breaker.state !== CircuitState.Closed) {
      await this.run((redis) => redis.ping())
    }
    return this.degraded
  }

  /** A key name under the prefix: the keyed hash of `parts`, so names reveal nothing. */
  key(kind: string, ...parts: string[]): string {
    const [current] = this.keys(kind, ...parts)
    return current ?? `${this.prefix}${kind}:${this.seal.name(kind, ...parts)}`
  }

  /** The same key's names under every accepted secret, the current one first (for reads). */
  keys(kind: string, ...parts: string[]): readonly string[] {
    // The bytes the keyed hash reads, less the last NUL (each part ends with one): equal ids, equal names.
    const id = [kind, ...parts].join('\0')
    let names = this.#names.get(id)
    if (names === undefined) {
      names = this.seal.names(kind, ...parts).map((name) => `${this.prefix}${kind}:${name}`)
      this.#names.set(id, names)
    }
    return names
  }

  /**
   * The names of a set of `count` keys sharing `parts` (seal.nameSets), per accepted secret, the
   * current one first: `keySets(…)[secret][i]`. Remembered, as `keys`.
   */
  keySets(kind: string, count: number, ...parts: string[]): readonly (readonly string[])[] {
    const id = [kind, String(count), ...parts].join('\0')
    let sets = this.#nameSets.get(id)
    if (sets === undefined) {
      sets = this.seal
        .nameSets(count, kind, ...parts)
        .map((names) => names.map((name) => `${this.prefix}${kind}:${name}`))
      this.#nameSets.set(id, sets)
    }
    return sets
  }

  /**
   * Runs Redis commands; the result, or `undefined` when Redis is down, slow, failing or the
   * breaker is open. Never throws.
   */
  async run<T>(command: (redis: Redis) => Promise<T>): Promise<T | undefined> {
    if (this.#closed) return undefined
    if (this.redis.status !== 'ready') {
      this.#metrics?.fleetRedisFailures.inc({ outcome: 'skipped' })
      this.#setDegraded(true)
      return undefined
    }
    try {
      return await this.#breaker.execute(() => command(this.redis))
    } catch (err) {
      const outcome = this.#breaker.state === CircuitState.Open ? 'skipped' : errorOutcome(err)
      this.#metrics?.fleetRedisFailures.inc({ outcome })
      return undefined
    }
  }

  /** Publishes to every replica (this one included); false when Redis could not take it. */
  async publish(channel: string, message: Buffer | string): Promise<boolean> {
    const receivers = await this.run((redis) => redis.publish(this.prefix + channel, message))
    return receivers !== undefined
  }

  /** Calls `handler` with each message published on `channel` by any replica. */
  async subscribe(channel: string, handler: Handler): Promise<void> {
    const name = this.prefix + channel
    let handlers = this.#handlers.get(name)
    if (!handlers) {
      handlers = new Set()
      this.#handlers.set(name, handlers)
    }
    handlers.add(handler)
    const subscriber = this.#subscriberConnection()
    if (handlers.size === 1) await subscriber.subscribe(name).catch(() => undefined)
  }

  async close(): Promise<void> {
    // The counts made since the last sync go to Redis first.
    await this.rateCounters.close()
    this.#closed = true
    await Promise.all([quit(this.redis), this.#subscriber ? quit(this.#subscriber) : undefined])
  }

  #subscriberConnection(): Redis {
    if (this.#subscriber) return this.#subscriber
    // A subscribed connection can run no other command; ioredis re-subscribes after reconnecting.
    const subscriber = this.redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined })
    subscriber.on('error', () => {})
    subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      for (const handler of this.#handlers.get(channel.toString()) ?? []) {
        try {
          handler(message)
        } catch (err) {
          this.#log.error({ err }, 'fleet: a pub/sub handler failed')
        }
      }
    })
    this.#subscriber = subscriber
    return subscriber
  }

  #setDegraded(degraded: boolean): void {
    if (this.#closed || degraded === this.#degraded) return
    this.#degraded = degraded
    this.#metrics?.fleetDegraded.set(degraded ? 1 : 0)
    if (degraded) this.#log.warn('fleet: Redis unavailable, this replica runs on local state')
    else this.#log.info('fleet: Redis available again, shared state resumed')
  }
}

function errorOutcome(err: unknown): string {
  const message = err instanceof Error ? err.message : ''
  return /timed out/i.test(message) ? 'timeout' : 'error'
}

async function quit(redis: Redis): Promise<void> {
  try {
    await redis.quit()
  } catch {
    redis.disconnect()
  }
}
