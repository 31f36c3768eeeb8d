import { LRUCache } from 'lru-cache'
import { sha256Hex } from '../auth/apiKeys.js'
import type { ImageType } from '../domain/imageTypes.js'
import { prepareEntryTexts, type LinkEntry, type NormalisedLinks } from '../domain/links.js'

/** HIT: every requested type came from the cache; MISS: none did; PARTIAL: some did. */
export type CacheStatus = 'HIT' | 'MISS' | 'PARTIAL'

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

export interface ResolvedLinks {
  entries: Map<ImageType, LinkEntry>
  /** Types with no link: reported so by the loader now, or cached as such. */
  missing: ImageType[]
  status: CacheStatus
}

/** What a loader answers: Incode's links, or some of them from a shared store (fleet mode's L2). */
export interface LoadedLinks extends NormalisedLinks {
  /** Types answered from a shared cache rather than Incode: they count as hits for X-Cache. */
  fromStore?: ReadonlySet<ImageType>
  /** Per type, a further bound on serving the answer (epoch ms), e.g. the shared entry's own end. */
  servableUntilMs?: ReadonlyMap<ImageType, number>
}

export type LinkLoader = (types: ImageType[]) => Promise<LoadedLinks>

/**
 * Until when one answer may be served (epoch ms): a link until its earliest expiry less the margin,
 * "no such image" for the missing TTL, and neither at or after the credential's expiry. The same
 * rule for every tier (this cache, and Redis in fleet mode).
 */
export function servableUntilMs(
  expiresAtMs: number | undefined,
  rule: { now: number; marginMs: number; missingTtlMs: number; notAfterMs: number },
): number {
  const until = expiresAtMs === undefined ? rule.now + rule.missingTtlMs : expiresAtMs - rule.marginMs
  return Math.min(until, rule.notAfterMs)
}

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

function keyOf(scope: string, interviewId: string, type: ImageType): string {
  // The parts are joined by a NUL, which none of them can hold (scopes are 'admin' or a hex hash,
  // interview IDs are checked by the routes' schemas, types come from the fixed list); a part
  // that did hold one is JSON-encoded instead, so keys stay unambiguous.
  if (scope.includes('\0') || interviewId.includes('\0')) return JSON.stringify([scope, interviewId, type])
  return `${scope}\0${interviewId}\0${type}`
}

/**
 * Heap overhead beyond the strings, in bytes, measured on Node 20 (x64) by filling a cache and
 * comparing heapUsed with the accounted total (within 1% for 1 to 8 attempts per link; the former
 * count, JSON + key, was 4.5 times short; test/cache/bounds.test.ts keeps them close): per record,
 * lru-cache's key map entry, the Stored record and the invalidation index entry; per link, the
 * frozen entry, its attempts array and the weak-map records holding its texts; per attempt, its
 * frozen object. lru-cache's slot arrays are sized by maxEntries up front (about 44 bytes a slot),
 * a fixed cost outside this count.
 */
const RECORD_OVERHEAD_BYTES = 200
const LINK_OVERHEAD_BYTES = 400
const ATTEMPT_OVERHEAD_BYTES = 224
/** V8's header of a sequential string. */
const STRING_HEADER_BYTES = 16
const DEFAULT_MISSING_TTL_MS = 60_000

/** Heap bytes of a flat string: one byte per character unless one needs two. */
function stringHeapBytes(text: string): number {
  // eslint-disable-next-line no-control-regex
  return STRING_HEADER_BYTES + (/[^\u0000-\u00ff]/.test(text) ? 2 : 1) * text.length
}

/**
 * What one stored entry costs the heap: its key, every string of the entry (the latest link
 * and each attempt's, which are separate strings even when equal), the answer texts kept beside
 * it (prepared here), and the fixed overhead. An estimate, but one that counts everything held.
 */
export function entryHeapBytes(key: string, type: ImageType, entry: LinkEntry | undefined): number {
  let bytes = RECORD_OVERHEAD_BYTES + stringHeapBytes(key)
  if (entry === undefined) return bytes
  bytes += LINK_OVERHEAD_BYTES + stringHeapBytes(entry.url) + stringHeapBytes(entry.expiresAt)
  for (const attempt of entry.attempts) {
    bytes += ATTEMPT_OVERHEAD_BYTES
    bytes += stringHeapBytes(attempt.url) + stringHeapBytes(attempt.capturedAt)
    bytes += stringHeapBytes(attempt.expiresAt)
  }
  for (const text of prepareEntryTexts(type, entry)) bytes += stringHeapBytes(text)
  return bytes
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`LinkCache: ${name} must be a positive integer, got ${String(value)}`)
  }
}

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
   * What is servable from the cache now, without loading or waiting (e.g. while upstream is
   * down): links, types cached as missing, and the misses.
   */
  peek(
    slot: CacheSlot,
    types: readonly ImageType[],
  ): { entries: Map<ImageType, LinkEntry>; missing: ImageType[]; misses: ImageType[] } {
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
        if (key === undefined) return
        const got = links.entries.get(type)
        // A type the answer has no link for is cached as missing, briefly (a capture may come).
        const until = servableUntilMs(got?.expiresAtMs, {
          now,
          marginMs: this.#marginMs,
          missingTtlMs: this.#missingTtlMs,
          notAfterMs: flight.notAfterMs,
        })
        const bound = links.servableUntilMs?.get(type) ?? Infinity
        this.#store(key, type, flight, got?.entry, Math.min(until, bound), now)
      })
    }
    // Registered before any waiter's handler, so the cache is written before waiters resume.
    // Errors are not cached; the rejection reaches every waiter through `promise` itself.
    promise.then(settle, () => settle()).catch(() => undefined)
    return flight
  }

  #store(
    key: string,
    type: ImageType,
    flight: InFlight,
    entry: LinkEntry | undefined,
    servableUntilMs: number,
    now: number,
  ): void {
    const ttl = Math.floor(servableUntilMs - now)
    // Expires within the margin, after the credential, or has no usable expiry: never stored,
    // only handed to the loader's callers.
    if (!(ttl > 0)) return
    const frozen = entry && frozenCopy(entry)
    const stored: Stored = {
      entry: frozen,
      servableUntilMs,
      label: flight.label,
      bytes: entryHeapBytes(key, type, frozen),
    }
    // Delete first: with noUpdateTTL a replaced value would keep the old entry's TTL.
    this.#lru.delete(key)
    this.#lru.set(key, stored, { ttl })
    // Not stored if larger than maxBytes on its own.
    if (this.#lru.peek(key) !== stored) return
    let keys = this.#byLabel.get(flight.label)
    if (!keys) {
      keys = new Set()
      this.#byLabel.set(flight.label, keys)
    }
    keys.add(key)
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

/** The answer in the caller's order, whichever source each type came from; the rest missing. */
function inCallersOrder(
  wanted: readonly ImageType[],
  entries: Map<ImageType, LinkEntry>,
  status: CacheStatus,
): ResolvedLinks {
  const ordered = new Map<ImageType, LinkEntry>()
  const missing: ImageType[] = []
  for (const type of wanted) {
    const entry = entries.get(type)
    if (entry) ordered.set(type, entry)
    else missing.push(type)
  }
  return { entries: ordered, missing, status }
}

/**
 * Copied once when stored and frozen, so that every hit can hand out the same object: no caller
 * can alter what the cache holds, and hits cost no copy.
 */
function frozenCopy(entry: LinkEntry): LinkEntry {
  const attempts = entry.attempts.map((a) => Object.freeze({ ...a }))
  return Object.freeze({ ...entry, attempts: Object.freeze(attempts) as LinkEntry['attempts'] })
}
