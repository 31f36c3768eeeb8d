import { LRUCache } from 'lru-cache'
import { sha256Hex } from '../auth/apiKeys.js'
import type { ImageType } from '../domain/imageTypes.js'
import type { LinkEntry, NormalisedLinks } from '../domain/links.js'
import {
  assertPositiveInteger,
  deepFreeze,
  entryHeapBytes,
  frozenCopy,
  inCallersOrder,
  keyOf,
  servableUntilMs,
  type CacheStatus,
  type ResolvedLinks,
} from './entries.js'

export { entryHeapBytes, servableUntilMs, type CacheStatus, type ResolvedLinks }

/** Where one lookup's entries are kept, who may read them, and what limits and labels them. */
export interface CacheSlot {
  /** Who may read: 'admin', or scopeForToken(the caller's token). The only thing deciding access. */
  scope: string
  /** The interview as the request named it ('' when only the token names it): part of the key. */
  interviewId: string
  /**
   * The interview the entries belong to, for invalidate() only (default: interviewId). Never used
   * to read: a label cannot let one scope see another's entries.
   */
  label?: string
  /**
   * When the credential that fetches the entries stops working (epoch ms, e.g. a token's `exp`):
   * no entry is served at or after it, and a lookup made at or after it bypasses the cache.
   */
  notAfterMs?: number
}

export interface LinkCacheOptions {
  /** Upper bound on cached (scope, interview, type) entries. */
  maxEntries: number
  /**
   * Upper bound on the summed size of entries, in bytes of heap as estimated by entryHeapBytes:
   * the key, the entry's strings, the answer texts kept beside it, and per-entry overhead.
   */
  maxBytes: number
  /** Links expiring within this many ms are never served from the cache. */
  marginMs: number
  /** How long "the session has no such image" is cached (ms; default 60 s). */
  missingTtlMs?: number
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

/** What a loader answers: Incode's links, or some of them from a shared store (fleet mode's L2). */
export interface LoadedLinks extends NormalisedLinks {
  /** Types answered from a shared cache rather than Incode: they count as hits for X-Cache. */
  fromStore?: ReadonlySet<ImageType>
  /** Per type, a further bound on serving the answer (epoch ms), e.g. the shared entry's own end. */
  servableUntilMs?: ReadonlyMap<ImageType, number>
}

export type LinkLoader = (types: ImageType[]) => Promise<LoadedLinks>

/** What the cache keeps per key; label is kept to clean the invalidation index on disposal. */
interface Stored {
  /** undefined: the session has no image of that type (a cached "missing" answer). */
  entry: LinkEntry | undefined
  /** Served while now < this: the link's expiry − margin, the missing TTL, the credential's expiry. */
  servableUntilMs: number
  label: string
  /** Heap bytes this entry accounts for (see entryHeapBytes). */
  bytes: number
}

/** One upstream call in flight, shared by every request that needs one of its keys. */
interface InFlight {
  label: string
  notAfterMs: number
  keys: string[]
  /** Set by invalidate/clear: the result must not be written into the cache. */
  stale: boolean
  promise: Promise<LoadedLinks>
}

/** The cache scope of a caller's session token: a hash, so the token itself is never kept as a key. */
export function scopeForToken(token: string): string {
  return 'tok:' + sha256Hex(token)
}

const DEFAULT_MISSING_TTL_MS = 60_000

/**
 * Caches Incode's temporary image links per (scope, interview, image type) and coalesces
 * concurrent loads, so each link is fetched upstream once while it is still comfortably valid.
 * "No image of that type" answers are cached too, briefly. Every entry carries what limits its
 * life (its links' expiry, its credential's expiry) and the label that invalidates it.
 */
export class LinkCache {
  readonly #now: () => number
  readonly #marginMs: number
  readonly #missingTtlMs: number
  readonly #lru: LRUCache<string, Stored>
  /** label (interview ID) → keys stored with it, so invalidate() finds every scope's entries. */
  readonly #byLabel = new Map<string, Set<string>>()
  /** key → the load currently fetching it. */
  readonly #inFlight = new Map<string, InFlight>()
  #hits = 0
  #misses = 0
  #coalesced = 0
  #evictions = 0
  /** Bumped by invalidate() and clear(): what was read elsewhere before then must not be stored. */
  #epoch = 0
  /** resolveStored's entries, stored after the answer: at the next turn, or first thing on the next call. */
  #deferred: { key: string; type: ImageType; label: string; entry: LinkEntry | undefined; until: number }[] =
    []
  #flushing: NodeJS.Immediate | undefined

  constructor(options: LinkCacheOptions) {
    assertPositiveInteger('maxEntries', options.maxEntries)
    assertPositiveInteger('maxBytes', options.maxBytes)
    if (!Number.isFinite(options.marginMs) || options.marginMs < 0) {
      throw new RangeError(
        `LinkCache: marginMs must be a finite number >= 0, got ${String(options.marginMs)}`,
      )
    }
    const missingTtlMs = options.missingTtlMs ?? DEFAULT_MISSING_TTL_MS
    assertPositiveInteger('missingTtlMs', missingTtlMs)
    const now = options.now ?? Date.now
    this.#now = now
    this.#marginMs = options.marginMs
    this.#missingTtlMs = missingTtlMs
    this.#lru = new LRUCache<string, Stored>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (value) => value.bytes,
      // TTL is set per entry from what limits its life; reads never extend it.
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
        this.#unindex(value.label, key)
      },
    })
  }

  async resolve(slot: CacheSlot, types: readonly ImageType[], load: LinkLoader): Promise<ResolvedLinks> {
    if (this.#deferred.length > 0) this.#flush()
    const wanted = [...new Set(types)]
    const now = this.#now()
    const notAfterMs = slot.notAfterMs ?? Infinity
    if (!(notAfterMs > now)) return this.#bypass(wanted, load)

    const entries = new Map<ImageType, LinkEntry>()
    const cachedMissing = new Set<ImageType>()
    const waits: { type: ImageType; flight: InFlight }[] = []
    const toLoad: ImageType[] = []

    for (const type of wanted) {
      const key = keyOf(slot.scope, slot.interviewId, type)
      const cached = this.#read(key, now)
      if (cached) {
        if (cached.entry) entries.set(type, cached.entry)
        else cachedMissing.add(type)
        continue
      }
      const flight = this.#inFlight.get(key)
      if (flight) waits.push({ type, flight })
      else toLoad.push(type)
    }

    let fromCache = entries.size + cachedMissing.size
    this.#hits += fromCache
    this.#misses += wanted.length - fromCache
    this.#coalesced += waits.length

    if (toLoad.length > 0) {
      const flight = this.#start(slot, toLoad, load)
      for (const type of toLoad) waits.push({ type, flight })
    }

    if (waits.length > 0) {
      // Any rejected load rejects this call; every load's rejection is observed here.
      const flights = [...new Set(waits.map((w) => w.flight))]
      const results = new Map(await Promise.all(flights.map(async (f) => [f, await f.promise] as const)))
      for (const { type, flight } of waits) {
        const result = results.get(flight)
        const got = result?.entries.get(type)
        if (got) entries.set(type, got.entry)
        // Served by a shared cache (fleet mode's L2): a hit for the caller, as from this one.
        if (result?.fromStore?.has(type)) fromCache++
      }
    }
    const status: CacheStatus = fromCache === wanted.length ? 'HIT' : fromCache === 0 ? 'MISS' : 'PARTIAL'
    return inCallersOrder(wanted, entries, status)
  }

  /**
   * The lookup when every type is servable from the cache now: counted as hits, as `resolve`
   * counts them, and answered without a loader, a promise or a wait (the warm path of every
   * cached links request). Undefined, and nothing counted, when any type is not: `resolve` then.
   */
  resolveCached(slot: CacheSlot, types: readonly ImageType[]): ResolvedLinks | undefined {
    if (this.#deferred.length > 0) this.#flush()
    const now = this.#now()
    if (!((slot.notAfterMs ?? Infinity) > now)) return undefined
    const wanted = [...new Set(types)]
    const entries = new Map<ImageType, LinkEntry>()
    const missing: ImageType[] = []
    for (const type of wanted) {
      const cached = this.#read(keyOf(slot.scope, slot.interviewId, type), now)
      if (!cached) return undefined
      if (cached.entry) entries.set(type, cached.entry)
      else missing.push(type)
    }
    this.#hits += wanted.length
    return { entries, missing, status: 'HIT' }
  }

  /**
   * Whether a load in flight here fetches any of `types` for the slot (its callers wait for it;
   * fleet mode then skips its own L2 read ahead of `resolve`).
   */
  isLoading(slot: CacheSlot, types: readonly ImageType[]): boolean {
    return types.some((type) => this.#inFlight.has(keyOf(slot.scope, slot.interviewId, type)))
  }

  /**
   * Whether this cache holds nothing of the slot's interview (in any scope, expired entries
   * included until they are read), is about to store nothing of it and loads none of `types` for
   * the slot: a lookup for it will find no entry here. Fleet mode then reads Redis ahead of the
   * request's body (readAhead in src/services/sharedLinks.ts). One map lookup when it holds some.
   */
  isCold(slot: CacheSlot, types: readonly ImageType[]): boolean {
    if (this.#deferred.length > 0) this.#flush()
    return !this.#byLabel.has(slot.label ?? slot.interviewId) && !this.isLoading(slot, types)
  }

  /** Changes whenever invalidate() or clear() runs; see resolveStored. */
  get epoch(): number {
    return this.#epoch
  }

  /**
   * The lookup when everything this cache lacks was found in a shared cache (fleet mode's L2
   * hit): `loaded` answers every type not servable here, and the lookup is answered at once
   * (HIT), with no loader, in-flight record or promise. Its entries are frozen in place and kept
   * as they are, not copied (pass entries nobody else holds, as LinkStore.read parses them); they
   * are stored here after the answer is sent (the next turn, or sooner if this cache is used
   * first) under the expiry rule of a load's answer. `epoch` is this cache's epoch from before
   * the shared cache was read: if an invalidation came since, nothing is stored (as a load made
   * stale). Undefined, nothing counted or stored, when a type is neither here nor in `loaded`.
   */
  resolveStored(
    slot: CacheSlot,
    types: readonly ImageType[],
    loaded: LoadedLinks,
    epoch: number,
  ): ResolvedLinks | undefined {
    if (this.#deferred.length > 0) this.#flush()
    const now = this.#now()
    const notAfterMs = slot.notAfterMs ?? Infinity
    if (!(notAfterMs > now)) return undefined
    const wanted = [...new Set(types)]
    const cached: (Stored | undefined)[] = []
    for (const type of wanted) {
      const found = this.#read(keyOf(slot.scope, slot.interviewId, type), now)
      if (!found && !loaded.entries.has(type) && !loaded.missing.includes(type)) return undefined
      cached.push(found)
    }
    const rule = { now, marginMs: this.#marginMs, missingTtlMs: this.#missingTtlMs, notAfterMs }
    const label = slot.label ?? slot.interviewId
    const entries = new Map<ImageType, LinkEntry>()
    const missing: ImageType[] = []
    let stored = 0
    wanted.forEach((type, i) => {
      const here = cached[i]
      let entry = here?.entry
      if (!here) {
        stored++
        const got = loaded.entries.get(type)
        entry = got && deepFreeze(got.entry)
        const until = Math.min(
          servableUntilMs(got?.expiresAtMs, rule),
          loaded.servableUntilMs?.get(type) ?? Infinity,
        )
        const key = keyOf(slot.scope, slot.interviewId, type)
        if (epoch === this.#epoch) this.#deferred.push({ key, type, label, entry, until })
      }
      if (entry) entries.set(type, entry)
      else missing.push(type)
    })
    if (this.#deferred.length > 0) this.#flushing ??= setImmediate(() => this.#flush())
    this.#hits += wanted.length - stored
    this.#misses += stored
    return { entries, missing, status: 'HIT' }
  }

  /** Stores resolveStored's entries (unless invalidate or clear came since: they were dropped). */
  #flush(): void {
    if (this.#flushing) clearImmediate(this.#flushing)
    this.#flushing = undefined
    const now = this.#now()
    for (const { key, type, label, entry, until } of this.#deferred.splice(0)) {
      this.#store(key, type, label, entry, until, now)
    }
  }

  /**
   * What is servable from the cache now, without loading or waiting (e.g. while upstream is
   * down): links, types cached as missing, and the misses.
   */
  peek(
    slot: CacheSlot,
    types: readonly ImageType[],
  ): { entries: Map<ImageType, LinkEntry>; missing: ImageType[]; misses: ImageType[] } {
    if (this.#deferred.length > 0) this.#flush()
    const entries = new Map<ImageType, LinkEntry>()
    const missing: ImageType[] = []
    const misses: ImageType[] = []
    const now = this.#now()
    const live = (slot.notAfterMs ?? Infinity) > now
    for (const type of new Set(types)) {
      const cached = live ? this.#read(keyOf(slot.scope, slot.interviewId, type), now) : undefined
      if (!cached) misses.push(type)
      else if (cached.entry) entries.set(type, cached.entry)
      else missing.push(type)
    }
    return { entries, missing, misses }
  }

  /**
   * Drops every entry labelled with the interview, in every scope (links and cached "missing"
   * answers alike); loads already in flight for it will not be stored.
   */
  invalidate(interviewId: string): number {
    if (this.#deferred.length > 0) this.#flush()
    this.#epoch++
    for (const [key, flight] of this.#inFlight) {
      if (flight.label !== interviewId) continue
      flight.stale = true
      // Later requests start a fresh load rather than waiting on pre-invalidation data.
      this.#inFlight.delete(key)
    }
    let dropped = 0
    // Copy: dispose() edits the index while we delete.
    for (const key of [...(this.#byLabel.get(interviewId) ?? [])]) {
      if (this.#lru.delete(key)) dropped++
    }
    return dropped
  }

  stats(): LinkCacheStats {
    if (this.#deferred.length > 0) this.#flush()
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
    this.#epoch++
    this.#deferred = []
    for (const flight of this.#inFlight.values()) flight.stale = true
    this.#inFlight.clear()
    this.#lru.clear()
  }

  /** A lookup with a dead credential: loaded as if there were no cache (nothing read, joined or stored). */
  async #bypass(wanted: ImageType[], load: LinkLoader): Promise<ResolvedLinks> {
    this.#misses += wanted.length
    if (wanted.length === 0) return { entries: new Map(), missing: [], status: 'HIT' }
    const links = await load([...wanted])
    const entries = new Map<ImageType, LinkEntry>()
    for (const type of wanted) {
      const got = links.entries.get(type)
      if (got) entries.set(type, got.entry)
    }
    return inCallersOrder(wanted, entries, 'MISS')
  }

  #start(slot: CacheSlot, types: ImageType[], load: LinkLoader): InFlight {
    const keys = types.map((type) => keyOf(slot.scope, slot.interviewId, type))
    // async wrapper: a loader that throws synchronously still becomes a rejection.
    const promise = (async () => load([...types]))()
    const flight: InFlight = {
      label: slot.label ?? slot.interviewId,
      notAfterMs: slot.notAfterMs ?? Infinity,
      keys,
      stale: false,
      promise,
    }
    for (const key of keys) this.#inFlight.set(key, flight)
    const settle = (links?: LoadedLinks) => {
      for (const key of keys) {
        if (this.#inFlight.get(key) === flight) this.#inFlight.delete(key)
      }
      if (!links || flight.stale) return
      const now = this.#now()
      types.forEach((type, i) => {
        const key = keys[i]
        if (key !== undefined) this.#storeLoaded(key, type, flight, links, now)
      })
    }
    // Registered before any waiter's handler, so the cache is written before waiters resume.
    // Errors are not cached; the rejection reaches every waiter through `promise` itself.
    promise.then(settle, () => settle()).catch(() => undefined)
    return flight
  }

  /** Stores a loader's answer for one type under the expiry rule; the frozen entry kept, if any. */
  #storeLoaded(
    key: string,
    type: ImageType,
    bounds: { label: string; notAfterMs: number },
    links: LoadedLinks,
    now: number,
  ): LinkEntry | undefined {
    const got = links.entries.get(type)
    // A type the answer has no link for is cached as missing, briefly (a capture may come).
    const until = servableUntilMs(got?.expiresAtMs, {
      now,
      marginMs: this.#marginMs,
      missingTtlMs: this.#missingTtlMs,
      notAfterMs: bounds.notAfterMs,
    })
    const bound = links.servableUntilMs?.get(type) ?? Infinity
    return this.#store(key, type, bounds.label, got?.entry, Math.min(until, bound), now)
  }

  /** Stores one answer; the frozen entry kept (undefined when nothing or "missing" was stored). */
  #store(
    key: string,
    type: ImageType,
    label: string,
    entry: LinkEntry | undefined,
    servableUntilMs: number,
    now: number,
  ): LinkEntry | undefined {
    const ttl = Math.floor(servableUntilMs - now)
    // Expires within the margin, after the credential, or has no usable expiry: never stored,
    // only handed to the loader's callers.
    if (!(ttl > 0)) return undefined
    const frozen = entry && frozenCopy(entry)
    const stored: Stored = {
      entry: frozen,
      servableUntilMs,
      label,
      bytes: entryHeapBytes(key, type, frozen),
    }
    // Delete first: with noUpdateTTL a replaced value would keep the old entry's TTL.
    this.#lru.delete(key)
    this.#lru.set(key, stored, { ttl })
    // Not stored if larger than maxBytes on its own.
    if (this.#lru.peek(key) !== stored) return undefined
    let keys = this.#byLabel.get(label)
    if (!keys) {
      keys = new Set()
      this.#byLabel.set(label, keys)
    }
    keys.add(key)
    return frozen
  }

  /** A servable cached record, or undefined; records past their servable time count as misses. */
  #read(key: string, now: number): Stored | undefined {
    const stored = this.#lru.get(key)
    if (!stored) return undefined
    // Belt and braces: lru-cache's TTL should already have dropped it.
    if (!(stored.servableUntilMs > now)) {
      this.#lru.delete(key)
      return undefined
    }
    return stored
  }

  #unindex(label: string, key: string): void {
    const keys = this.#byLabel.get(label)
    if (!keys) return
    keys.delete(key)
    if (keys.size === 0) this.#byLabel.delete(label)
  }
}
