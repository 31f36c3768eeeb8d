import type { Redis } from 'ioredis'

/** The part of Fleet these counters use (run never throws; undefined when Redis is unavailable). */
export interface CounterFleet {
  run<T>(command: (redis: Redis) => Promise<T>): Promise<T | undefined>
}

export interface RateCountersOptions {
  fleet: CounterFleet
  /** How often counts are pushed to Redis and the fleet's totals pulled back (RATE_LIMIT_SYNC_MS). */
  syncMs: number
  now?: () => number
}

/** Every this many syncs, counters whose window is over are forgotten. */
const PRUNE_EVERY_TICKS = 10

/** What a replica knows of one caller's count in the current window. */
interface Counter {
  /** The fleet's total (this replica's pushed counts included) as of the last sync. */
  synced: number
  /** Counted here since the last sync began, not yet sent. */
  pending: number
  /** Sent in the sync in flight, not yet answered. */
  inflight: number
  /** The window's end (epoch ms): Redis's own once a sync has answered. */
  resetAt: number
  windowMs: number
}

/** What a rate-limit store answers for one request. */
export interface Count {
  current: number
  /** Milliseconds left in the window. */
  ttl: number
}

/**
 * KEYS: counters; ARGV: (increment, window ms) per key. Adds each increment (0: only reads), starts
 * the window on a new key, and answers each key's total and milliseconds left (-2: no such key),
 * flattened.
 */
const SYNC = `
local out = {}
for i = 1, #KEYS do
  local total
  if ARGV[2 * i - 1] == '0' then total = tonumber(redis.call('GET', KEYS[i]) or '0')
  else total = redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1]) end
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl == -1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
    ttl = tonumber(ARGV[2 * i])
  end
  out[#out + 1] = total
  out[#out + 1] = ttl
end
return out`

/** A caller counted within this many sync intervals has its fleet total read back at each sync. */
const REFRESH_INTERVALS = 10

/**
 * Fleet mode's rate-limit counts, local first (as Kong's rate-limiting plugin with its sync_rate):
 * a request is counted in this process and answered at once, never waiting on Redis; every
 * RATE_LIMIT_SYNC_MS one round trip (one script, for every caller counted since) adds this
 * replica's new counts to the fleet's totals in Redis and reads those totals back. A request sees
 * the fleet's total as of this replica's last sync plus what this replica counted since.
 *
 * The bound: within one window the fleet admits at most the limit plus what the other replicas
 * admitted for that caller since their last sync had begun (what this replica cannot have seen):
 * with R replicas each admitting at most k per caller per interval, N + (R − 1) × k. And never more
 * than N per replica: a replica's own counts are always part of what it sees. While Redis is
 * unavailable nothing is lost: counting goes on here on top of the last known total, and the
 * counts are sent once Redis answers again (within the window).
 *
 * Windows are Redis's: the first sync of a caller's window starts it there (PEXPIRE), every
 * replica's sync adopts its time left.
 */
export class RateCounters {
  readonly #fleet: CounterFleet
  readonly #syncMs: number
  readonly #now: () => number
  readonly #counters = new Map<string, Counter>()
  /** Name → when last counted here, oldest first: these have their totals read back at each sync. */
  readonly #recent = new Map<string, number>()
  /** Names whose counts a failed sync could not send (sent with the next one). */
  readonly #unsent = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #ticks = 0
  #syncing: Promise<void> | undefined
  #closed = false

  constructor(options: RateCountersOptions) {
    this.#fleet = options.fleet
    this.#syncMs = options.syncMs
    this.#now = options.now ?? Date.now
  }

  /** Counts one request against `name` (a Redis key) and answers the count it sees now. */
  incr(name: string, windowMs: number): Count {
    const now = this.#now()
    let counter = this.#counters.get(name)
    if (!counter || counter.resetAt <= now || counter.windowMs !== windowMs) {
      // A new window: a new counter (a sync still in flight for the old one updates only that).
      counter = { synced: 0, pending: 0, inflight: 0, resetAt: now + windowMs, windowMs }
      this.#counters.set(name, counter)
    }
    counter.pending++
    // Moved to the end (newest) at most once per sync interval: the read-back horizon is ten.
    const last = this.#recent.get(name)
    if (last === undefined || now - last >= this.#syncMs) {
      this.#recent.delete(name)
      this.#recent.set(name, now)
    }
    this.#start()
    return { current: counter.synced + counter.inflight + counter.pending, ttl: counter.resetAt - now }
  }

  /**
   * Sends the counts made since the last sync and reads the fleet's totals back, in one round
   * trip; waits for a sync in flight first. The timer calls it; tests call it to decide when.
   */
  async sync(): Promise<void> {
    while (this.#syncing) await this.#syncing
    if ((this.#recent.size === 0 && this.#unsent.size === 0) || this.#closed) return
    this.#syncing = this.#syncOnce().finally(() => {
      this.#syncing = undefined
    })
    await this.#syncing
  }

  /** Stops the timer and sends what is left (best effort). */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.sync()
    this.#closed = true
  }

  /** Counters kept in memory (for tests and the size bound). */
  get size(): number {
    return this.#counters.size
  }

  #start(): void {
    if (this.#timer || this.#closed) return
    this.#timer = setInterval(() => {
      // One sync at a time: a tick that finds one in flight is skipped.
      if (!this.#syncing) void this.sync()
      if (++this.#ticks % PRUNE_EVERY_TICKS === 0) this.#prune()
    }, this.#syncMs)
    this.#timer.unref()
  }

  async #syncOnce(): Promise<void> {
    const started = this.#now()
    const since = started - REFRESH_INTERVALS * this.#syncMs
    for (const [name, countedAt] of this.#recent) {
      if (countedAt >= since) break
      this.#recent.delete(name)
      // Not read back any more, but counts not sent yet are sent (a stalled loop, a late tick).
      if ((this.#counters.get(name)?.pending ?? 0) > 0) this.#unsent.add(name)
    }
    const batch: { name: string; counter: Counter; sent: number }[] = []
    for (const name of new Set([...this.#unsent, ...this.#recent.keys()])) {
      const counter = this.#counters.get(name)
      // A window over (Redis was away till its end): its counts are void.
      if (!counter || counter.resetAt <= started) continue
      batch.push({ name, counter, sent: counter.pending })
      counter.inflight += counter.pending
      counter.pending = 0
    }
    this.#unsent.clear()
    if (batch.length === 0) return
    const answer = await this.#fleet.run((redis) =>
      redis.eval(
        SYNC,
        batch.length,
        ...batch.map((b) => b.name),
        ...batch.flatMap((b) => [b.sent, b.counter.windowMs]),
      ),
    )
    const now = this.#now()
    batch.forEach(({ name, counter, sent }, i) => {
      counter.inflight -= sent
      const total: unknown = Array.isArray(answer) ? answer[2 * i] : undefined
      const ttl: unknown = Array.isArray(answer) ? answer[2 * i + 1] : undefined
      if (typeof total === 'number' && typeof ttl === 'number') {
        counter.synced = total
        // No key (nothing counted in the fleet's window yet): this replica's window stands.
        if (ttl >= 0) counter.resetAt = now + ttl
      } else {
        // Redis unavailable: the counts stay here, and are sent with the next sync.
        counter.pending += sent
        if (sent > 0) this.#unsent.add(name)
      }
    })
  }

  /** Forgets the counters whose window is over. */
  #prune(): void {
    const now = this.#now()
    for (const [name, counter] of this.#counters) {
      if (counter.resetAt <= now && counter.pending + counter.inflight === 0) this.#counters.delete(name)
    }
  }
}
