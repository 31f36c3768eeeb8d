import { LRUCache } from 'lru-cache'
import { sha256Hex } from '../auth/apiKeys.js'
import type { ImageType } from '../domain/imageTypes.js'
import type { LinkEntry, NormalisedLinks } from '../domain/links.js'

/** HIT: every requested type came from the cache; MISS: none did; PARTIAL: some did. */
export type CacheStatus = 'HIT' | 'MISS' | 'PARTIAL'

export interface LinkCacheOptions {
  /** Upper bound on cached (scope, interview, type) entries. */
  maxEntries: number
  /** Upper bound on the summed size of entries (JSON of the entry + key, in bytes). */
  maxBytes: number
  /** Links expiring within this many ms are never served from the cache. */
  marginMs: number
  /** Clock in epoch ms; drives lru-cache's TTL too, so tests can use a fake one. */
  now?: () => number
}

export interface LinkCacheStats {
  /** Type lookups served from the cache. */
  hits: number
  /** Type lookups not served from the cache (loaded, or waited on another request's load). */
  misses: number
  /** Of the misses, those served by another request's in-flight load. */
  coalesced: number
  entries: number
  bytes: number
  /** Entries pushed out by the entry or byte bound (not expiries, deletes or invalidations). */
  evictions: number
}

export interface ResolvedLinks {
  entries: Map<ImageType, LinkEntry>
  missing: ImageType[]
  status: CacheStatus
}

export type LinkLoader = (types: ImageType[]) => Promise<NormalisedLinks>

/** What the cache keeps per key; interviewId is kept to clean the invalidation index on disposal. */
interface Stored {
  entry: LinkEntry
  expiresAtMs: number
  interviewId: string
}

/** One upstream call in flight, shared by every request that needs one of its keys. */
interface InFlight {
  interviewId: string
  keys: string[]
  /** Set by invalidate/clear: the result must not be written into the cache. */
  stale: boolean
  promise: Promise<NormalisedLinks>
}

/** The cache scope of a caller's session token: a hash, so the token itself is never kept as a key. */
export function scopeForToken(token: string): string {
  return 'tok:' + sha256Hex(token)
}

function keyOf(scope: string, interviewId: string, type: ImageType): string {
  // The parts are joined by a NUL, which none of them can hold (scopes are 'admin' or a hex hash,
  // interview IDs are checked by the routes' schemas, types come from the fixed list); a part
  // that did hold one is JSON-encoded instead, so keys stay unambiguous.
  if (scope.includes('\0') || interviewId.includes('\0')) return JSON.stringify([scope, interviewId, type])
  return `${scope}\0${interviewId}\0${type}`
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`LinkCache: ${name} must be a positive integer, got ${String(value)}`)
  }
}

/**
 * Caches Incode's temporary image links per (scope, interview, image type) and coalesces
 * concurrent loads, so each link is fetched upstream once while it is still comfortably valid.
 */
export class LinkCache {
  readonly #now: () => number
  readonly #marginMs: number
  readonly #lru: LRUCache<string, Stored>
  /** interviewId → keys stored with it, so invalidate() finds every scope's entries. */
  readonly #byInterview = new Map<string, Set<string>>()
  /** key → the load currently fetching it. */
  readonly #inFlight = new Map<string, InFlight>()
  #hits = 0
  #misses = 0
  #coalesced = 0
  #evictions = 0

  constructor(options: LinkCacheOptions) {
    assertPositiveInteger('maxEntries', options.maxEntries)
    assertPositiveInteger('maxBytes', options.maxBytes)
    if (!Number.isFinite(options.marginMs) || options.marginMs < 0) {
      throw new RangeError(
        `LinkCache: marginMs must be a finite number >= 0, got ${String(options.marginMs)}`,
      )
    }
    const now = options.now ?? Date.now
    this.#now = now
    this.#marginMs = options.marginMs
    this.#lru = new LRUCache<string, Stored>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (value, key) =>
        Buffer.byteLength(JSON.stringify(value.entry)) + Buffer.byteLength(key),
      // TTL is set per entry from its link's expiry; reads never extend it.
      updateAgeOnGet: false,
      updateAgeOnHas: false,
      noUpdateTTL: true,
      allowStale: false,
      // Our clock drives lru-cache's TTL. ttlResolution 0: read it on every check (no cached
      // "now" that a fake clock could outrun). No autopurge: its timers run on real time.
      perf: { now: () => now() },
      ttlResolution: 0,
      ttlAutopurge: false,
      dispose: (value, key, reason) => {
        if (reason === 'evict') this.#evictions++
        this.#unindex(value.interviewId, key)
      },
    })
  }

  async resolve(
    scope: string,
    interviewId: string,
    types: readonly ImageType[],
    load: LinkLoader,
  ): Promise<ResolvedLinks> {
    const wanted = [...new Set(types)]
    const entries = new Map<ImageType, LinkEntry>()
    const waits: { type: ImageType; flight: InFlight }[] = []
    const toLoad: ImageType[] = []
    const now = this.#now()

    for (const type of wanted) {
      const key = keyOf(scope, interviewId, type)
      const cached = this.#read(key, now)
      if (cached) {
        entries.set(type, cached)
        continue
      }
      const flight = this.#inFlight.get(key)
      if (flight) waits.push({ type, flight })
      else toLoad.push(type)
    }

    const fromCache = entries.size
    this.#hits += fromCache
    this.#misses += wanted.length - fromCache
    this.#coalesced += waits.length
    const status: CacheStatus = fromCache === wanted.length ? 'HIT' : fromCache === 0 ? 'MISS' : 'PARTIAL'

    if (toLoad.length > 0) {
      const flight = this.#start(scope, interviewId, toLoad, load)
      for (const type of toLoad) waits.push({ type, flight })
    }

    if (waits.length > 0) {
      // Any rejected load rejects this call; every load's rejection is observed here.
      const flights = [...new Set(waits.map((w) => w.flight))]
      const results = new Map(await Promise.all(flights.map(async (f) => [f, await f.promise] as const)))
      for (const { type, flight } of waits) {
        const got = results.get(flight)?.entries.get(type)
        if (got) entries.set(type, got.entry)
      }
    }
    // Answer in the caller's order, whichever source each type came from.
    const ordered = new Map<ImageType, LinkEntry>()
    const missing: ImageType[] = []
    for (const type of wanted) {
      const entry = entries.get(type)
      if (entry) ordered.set(type, entry)
      else missing.push(type)
    }
    return { entries: ordered, missing, status }
  }

  /** What is servable from the cache now, without loading or waiting (e.g. while upstream is down). */
  peek(
    scope: string,
    interviewId: string,
    types: readonly ImageType[],
  ): { entries: Map<ImageType, LinkEntry>; misses: ImageType[] } {
    const entries = new Map<ImageType, LinkEntry>()
    const misses: ImageType[] = []
    const now = this.#now()
    for (const type of new Set(types)) {
      const cached = this.#read(keyOf(scope, interviewId, type), now)
      if (cached) entries.set(type, cached)
      else misses.push(type)
    }
    return { entries, misses }
  }

  /** Drops the interview's entries in every scope; loads already in flight for it will not be stored. */
  invalidate(interviewId: string): number {
    for (const [key, flight] of this.#inFlight) {
      if (flight.interviewId !== interviewId) continue
      flight.stale = true
      // Later requests start a fresh load rather than waiting on pre-invalidation data.
      this.#inFlight.delete(key)
    }
    let dropped = 0
    // Copy: dispose() edits the index while we delete.
    for (const key of [...(this.#byInterview.get(interviewId) ?? [])]) {
      if (this.#lru.delete(key)) dropped++
    }
    return dropped
  }

  stats(): LinkCacheStats {
    // No autopurge timers, so expired entries linger until read or evicted: drop them for honest numbers.
    this.#lru.purgeStale()
    return {
      hits: this.#hits,
      misses: this.#misses,
      coalesced: this.#coalesced,
      entries: this.#lru.size,
      bytes: this.#lru.calculatedSize,
      evictions: this.#evictions,
    }
  }

  /** Empties the cache; loads in flight will not be stored. Counters are kept. */
  clear(): void {
    for (const flight of this.#inFlight.values()) flight.stale = true
    this.#inFlight.clear()
    this.#lru.clear()
  }

  #start(scope: string, interviewId: string, types: ImageType[], load: LinkLoader): InFlight {
    const keys = types.map((type) => keyOf(scope, interviewId, type))
    // async wrapper: a loader that throws synchronously still becomes a rejection.
    const promise = (async () => load([...types]))()
    const flight: InFlight = { interviewId, keys, stale: false, promise }
    for (const key of keys) this.#inFlight.set(key, flight)
    const settle = (links?: NormalisedLinks) => {
      for (const key of keys) {
        if (this.#inFlight.get(key) === flight) this.#inFlight.delete(key)
      }
      if (!links || flight.stale) return
      types.forEach((type, i) => {
        const got = links.entries.get(type)
        const key = keys[i]
        if (got && key !== undefined) this.#store(key, interviewId, got.entry, got.expiresAtMs)
      })
    }
    // Registered before any waiter's handler, so the cache is written before waiters resume.
    // Errors are not cached; the rejection reaches every waiter through `promise` itself.
    promise.then(settle, () => settle()).catch(() => undefined)
    return flight
  }

  #store(key: string, interviewId: string, entry: LinkEntry, expiresAtMs: number): void {
    const ttl = Math.floor(expiresAtMs - this.#marginMs - this.#now())
    // Expires within the margin (or has no usable expiry): never stored, only handed to the loader's callers.
    if (!(ttl > 0)) return
    const stored: Stored = { entry: frozenCopy(entry), expiresAtMs, interviewId }
    // Delete first: with noUpdateTTL a replaced value would keep the old entry's TTL.
    this.#lru.delete(key)
    this.#lru.set(key, stored, { ttl })
    // Not stored if larger than maxBytes on its own.
    if (this.#lru.peek(key) !== stored) return
    let keys = this.#byInterview.get(interviewId)
    if (!keys) {
      keys = new Set()
      this.#byInterview.set(interviewId, keys)
    }
    keys.add(key)
  }

  /** A servable cached entry (frozen, shared), or undefined; entries within the margin count as misses. */
  #read(key: string, now: number): LinkEntry | undefined {
    const stored = this.#lru.get(key)
    if (!stored) return undefined
    // Belt and braces: lru-cache's TTL should already have dropped it.
    if (!(stored.expiresAtMs - this.#marginMs > now)) {
      this.#lru.delete(key)
      return undefined
    }
    return stored.entry
  }

  #unindex(interviewId: string, key: string): void {
    const keys = this.#byInterview.get(interviewId)
    if (!keys) return
    keys.delete(key)
    if (keys.size === 0) this.#byInterview.delete(interviewId)
  }
}

/**
 * Copied once when stored and frozen, so that every hit can hand out the same object: no caller
 * can alter what the cache holds, and hits cost no copy.
 */
function frozenCopy(entry: LinkEntry): LinkEntry {
  const attempts = entry.attempts.map((a) => Object.freeze({ ...a }))
  return Object.freeze({ ...entry, attempts: Object.freeze(attempts) as LinkEntry['attempts'] })
}
