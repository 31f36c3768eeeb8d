import { randomBytes } from 'node:crypto'
import { servableUntilMs } from '../cache/linkCache.js'
import { IMAGE_TYPES, type ImageType } from '../domain/imageTypes.js'
import type { LinkEntry, NormalisedLinks } from '../domain/links.js'
import type { Metrics } from '../metrics.js'
import type { Fleet } from './redis.js'

/** Pub/sub: lock names released (value written, or the load failed); waiters look again. */
const FILLED = 'links-filled'
/** Pub/sub: a sealed { label, nonce }: every replica drops its L1 entries for that interview. */
const INVALIDATE = 'links-invalidate'
/** Pub/sub: a nonce, each replica's acknowledgement of an INVALIDATE. */
const INVALIDATED = 'links-invalidated'
/**
 * How long an interview's generation outlives its last DELETE. A load that read the generation
 * before a DELETE must find it changed when it writes: loads end within the request deadline,
 * far shorter than this.
 */
const GENERATION_TTL_MS = 3_600_000
/** How long a DELETE waits for every replica to say it dropped its L1 entries. */
const ACK_WAIT_MS = 2_000
/**
 * Key kinds of entries and locks. An interview's entries (per scope) are named as one set, every
 * image type at once (FleetSeal.nameSets, position = the type's in IMAGE_TYPES): an L2 read of
 * 6 types costs one hash computation per accepted secret, not six keyed hashes.
 */
const VALUES = 'link-set'
const LOCKS = 'link-lock-set'
const TYPE_INDEX = new Map(IMAGE_TYPES.map((type, i) => [type, i]))

/** Where one lookup's entries live in Redis and what bounds them (as the L1 CacheSlot). */
export interface StoreSlot {
  /** Who may read: 'admin' or a token's hash; part of every key name, so scopes never meet. */
  scope: string
  interviewId: string
  /** The interview the entries belong to: DELETE finds them through its index. */
  label: string
  /** The credential's expiry (epoch ms): nothing is kept in Redis past it. */
  notAfterMs: number
}

/** An entry read from Redis: a link, or a cached "no such image" (entry undefined). */
export interface StoredLink {
  entry: LinkEntry | undefined
  expiresAtMs: number | undefined
  servableUntilMs: number
}

/** One MGET's answer for `types`: per type its names (every accepted secret's), values in order. */
export interface FetchedEntries {
  types: readonly ImageType[]
  names: string[][]
  values: (Buffer | null)[]
  /** The interview's generation, when it was read too. */
  generation: string | undefined
}

export interface StoreRead {
  found: Map<ImageType, StoredLink>
  /** The interview's generation when read (DELETE bumps it); a write made under another is refused. */
  generation: string
}

/** Who fetches what: `mine` locked by this caller; `others` cached or locked by another replica. */
export interface Claim {
  mine: ImageType[]
  /** Locked by another replica: wait for it. */
  held: ImageType[]
  /** held, plus those already in Redis: read them again. */
  others: ImageType[]
}

export interface LinkStoreOptions {
  fleet: Fleet
  marginMs: number
  missingTtlMs: number
  lockTtlMs: number
  pollMs: number
  metrics?: Metrics | undefined
  now?: () => number
}

// Each script runs atomically in Redis, so concurrent replicas see one consistent answer.

/** KEYS: value, lock pairs; ARGV: token, lock TTL. Per pair: 0 value present, 1 locked now, 2 held. */
const CLAIM = `
local out = {}
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then out[#out + 1] = 0
  elseif redis.call('SET', KEYS[i + 1], ARGV[1], 'NX', 'PX', ARGV[2]) then out[#out + 1] = 1
  else out[#out + 1] = 2 end
end
return out`

/**
 * KEYS: generation, index, n values, n locks; ARGV: generation read, token, (value, TTL) × n.
 * Written only if no DELETE came since the generation was read; the index is kept as long as its
 * longest-lived entry; the caller's locks are released either way.
 */
const WRITE = `
local n = (#KEYS - 2) / 2
local written = 0
if (redis.call('GET', KEYS[1]) or '') == ARGV[1] then
  for i = 1, n do
    local ttl = tonumber(ARGV[2 + 2 * i])
    if ttl > 0 then
      redis.call('SET', KEYS[2 + i], ARGV[1 + 2 * i], 'PX', ttl)
      redis.call('SADD', KEYS[2], KEYS[2 + i])
      if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
      written = written + 1
    end
  end
end
for i = n + 3, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2] then redis.call('DEL', KEYS[i]) end
end
return written`

/** KEYS: locks; ARGV: token. Releases the caller's own locks only. */
const RELEASE = `
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 0`

/**
 * KEYS: generation, index names (one per accepted secret); ARGV: generation TTL. Bumps the
 * generation (loads in flight will not write), deletes every indexed entry and the index.
 * The entries' names are read from the index: Redis Cluster would need them in one hash slot.
 */
const INVALIDATE_SCRIPT = `
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local dropped = 0
for i = 2, #KEYS do
  for _, key in ipairs(redis.call('SMEMBERS', KEYS[i])) do dropped = dropped + redis.call('DEL', key) end
  redis.call('DEL', KEYS[i])
end
return dropped`

/**
 * Fleet mode's shared link cache (L2) in Redis, behind each replica's LinkCache (L1). Entries are
 * kept per (scope, interview, type) like L1's, sealed, under keyed-hash names, with Redis TTLs
 * from the same rule as L1. It also coalesces loads across replicas (a short lock per entry, a
 * pub/sub notice when it is released) and invalidates an interview on every replica (a
 * per-interview index under a hashed name, a generation that refuses late writes, pub/sub to drop
 * L1 entries). Every method answers `undefined` or nothing when Redis is unavailable, never throws.
 */
export class LinkStore {
  readonly #fleet: Fleet
  readonly #marginMs: number
  readonly #missingTtlMs: number
  readonly #lockTtlMs: number
  readonly #pollMs: number
  readonly #metrics: Metrics | undefined
  readonly now: () => number
  /** Lock name → waiters to wake when it is released. */
  readonly #waiters = new Map<string, Set<() => void>>()
  /** Invalidation nonce → its acknowledgement handler. */
  readonly #acks = new Map<string, () => void>()
  /** Settles once Redis has acknowledged listen()'s subscriptions (tests wait for it). */
  listening: Promise<void> = Promise.resolve()

  constructor(options: LinkStoreOptions) {
    this.#fleet = options.fleet
    this.#marginMs = options.marginMs
    this.#missingTtlMs = options.missingTtlMs
    this.#lockTtlMs = options.lockTtlMs
    this.#pollMs = options.pollMs
    this.#metrics = options.metrics
    this.now = options.now ?? Date.now
  }

  /**
   * Subscribes to the fleet's notices; `drop` is called with an interview ID when any replica
   * invalidates it. Resolves once Redis has acknowledged the subscriptions.
   */
  listen(drop: (label: string) => void): Promise<void> {
    this.listening = this.#subscribe(drop)
    return this.listening
  }

  async #subscribe(drop: (label: string) => void): Promise<void> {
    await Promise.all([
      this.#fleet.subscribe(FILLED, (message) => {
        for (const lock of message.toString().split(' ')) {
          for (const wake of this.#waiters.get(lock) ?? []) wake()
        }
      }),
      this.#fleet.subscribe(INVALIDATE, (message) => {
        const notice = parseInvalidation(this.#fleet.seal.open(message))
        if (!notice) return
        drop(notice.label)
        void this.#fleet.publish(INVALIDATED, notice.nonce)
      }),
      this.#fleet.subscribe(INVALIDATED, (message) => {
        this.#acks.get(message.toString())?.()
      }),
    ])
  }

  /** The Redis name of an entry (current secret). */
  valueKey(scope: string, interviewId: string, type: ImageType): string {
    return this.#names(VALUES, scope, interviewId, type)[0] ?? ''
  }

  /** The Redis name of an entry's load lock. */
  lockKey(scope: string, interviewId: string, type: ImageType): string {
    return this.#names(LOCKS, scope, interviewId, type)[0] ?? ''
  }

  /** A type's entry (or lock) name under every accepted secret, the current one first. */
  #names(kind: string, scope: string, interviewId: string, type: ImageType): string[] {
    const index = TYPE_INDEX.get(type) ?? -1
    return this.#fleet
      .keySets(kind, IMAGE_TYPES.length, scope, interviewId)
      .map((names) => names[index] ?? this.#fleet.key(kind, scope, interviewId, type))
  }

  /** Servable entries for `types` and the interview's generation; undefined when Redis is unavailable. */
  async read(slot: StoreSlot, types: readonly ImageType[]): Promise<StoreRead | undefined> {
    const fetched = await this.fetch(slot, types, true)
    return fetched && { found: this.decode(fetched, types), generation: fetched.generation ?? '' }
  }

  /**
   * read's one MGET, the values left sealed: `decode` opens those of the types a lookup turns out
   * to need (a read made before the request's body says which, see readAhead, asks every type).
   * The interview's generation is read only when asked for: a lookup answered from Redis alone
   * (an L2 hit) has no use for it; one that claims and loads reads again, with it (read).
   */
  async fetch(
    slot: StoreSlot,
    types: readonly ImageType[],
    withGeneration = false,
  ): Promise<FetchedEntries | undefined> {
    // Every accepted secret's name per type (rotation), then the generation, in one MGET.
    const sets = this.#fleet.keySets(VALUES, IMAGE_TYPES.length, slot.scope, slot.interviewId)
    const names = types.map((type) => {
      const index = TYPE_INDEX.get(type) ?? -1
      return sets.map((set) => set[index] ?? this.#fleet.key(VALUES, slot.scope, slot.interviewId, type))
    })
    const keys = names.flat()
    if (withGeneration) keys.push(this.#generationKey(slot.label))
    const values = await this.#fleet.run((redis) => redis.mgetBuffer(...keys))
    if (!values) return undefined
    const generation = withGeneration ? (values[keys.length - 1]?.toString() ?? '') : undefined
    return { types, names, values, generation }
  }

  /** The servable entries of `types` (of those fetched; others are left out). */
  decode(fetched: FetchedEntries, types: readonly ImageType[]): Map<ImageType, StoredLink> {
    const { names, values } = fetched
    const now = this.now()
    const found = new Map<ImageType, StoredLink>()
    let at = 0
    fetched.types.forEach((type, i) => {
      const typeNames = names[i] ?? []
      if (!types.includes(type)) {
        at += typeNames.length
        return
      }
      for (const name of typeNames) {
        const sealed = values[at++]
        if (!sealed || found.has(type)) continue
        const stored = parseStored(this.#fleet.seal.open(sealed))
        if (stored && stored.servableUntilMs > now) {
          found.set(type, stored)
          continue
        }
        // Unreadable (altered, unknown key, bad shape) or past its time: a miss, and gone.
        if (!stored) this.#metrics?.linkStoreLookups.inc({ result: 'corrupt' })
        void this.#fleet.run((redis) => redis.del(name))
      }
    })
    return found
  }

  /** Locks what is neither in Redis nor locked; undefined when Redis is unavailable. */
  async claim(slot: StoreSlot, types: readonly ImageType[], token: string): Promise<Claim | undefined> {
    const keys = types.flatMap((type) => [
      this.valueKey(slot.scope, slot.interviewId, type),
      this.lockKey(slot.scope, slot.interviewId, type),
    ])
    const answer = await this.#fleet.run((redis) =>
      redis.eval(CLAIM, keys.length, ...keys, token, this.#lockTtlMs),
    )
    if (!Array.isArray(answer) || answer.length !== types.length) return undefined
    const claim: Claim = { mine: [], held: [], others: [] }
    types.forEach((type, i) => {
      const state: unknown = answer[i]
      if (state === 1) claim.mine.push(type)
      else {
        if (state === 2) claim.held.push(type)
        claim.others.push(type)
      }
    })
    return claim
  }

  /**
   * Writes an upstream answer for `types` (sealed, with L1's TTL rule) unless the interview was
   * invalidated since `generation` was read, releases the caller's locks and wakes the waiters.
   */
  async write(
    slot: StoreSlot,
    types: readonly ImageType[],
    links: NormalisedLinks,
    token: string,
    generation: string,
  ): Promise<void> {
    const now = this.now()
    const rule = {
      now,
      marginMs: this.#marginMs,
      missingTtlMs: this.#missingTtlMs,
      notAfterMs: slot.notAfterMs,
    }
    const pairs = types.flatMap((type) => {
      const got = links.entries.get(type)
      const until = servableUntilMs(got?.expiresAtMs, rule)
      const ttl = Math.floor(until - now)
      const plain = JSON.stringify(got ? { e: got.entry, x: got.expiresAtMs, u: until } : { m: 1, u: until })
      return [ttl > 0 ? this.#fleet.seal.seal(plain) : '', String(Math.max(0, ttl))]
    })
    const locks = types.map((type) => this.lockKey(slot.scope, slot.interviewId, type))
    const keys = [
      this.#generationKey(slot.label),
      this.#fleet.key('link-index', slot.label),
      ...types.map((type) => this.valueKey(slot.scope, slot.interviewId, type)),
      ...locks,
    ]
    await this.#fleet.run((redis) => redis.eval(WRITE, keys.length, ...keys, generation, token, ...pairs))
    await this.#fleet.publish(FILLED, locks.join(' '))
  }

  /** Releases the caller's locks (its load failed) and wakes the waiters, who try themselves. */
  async release(slot: StoreSlot, types: readonly ImageType[], token: string): Promise<void> {
    const locks = types.map((type) => this.lockKey(slot.scope, slot.interviewId, type))
    await this.#fleet.run((redis) => redis.eval(RELEASE, locks.length, ...locks, token))
    await this.#fleet.publish(FILLED, locks.join(' '))
  }

  /**
   * Waits until one of the locks on `types` is gone (its holder wrote or gave up, or crashed and
   * the lock expired), Redis is unavailable, or `deadlineAt` (epoch ms, wall clock) passes. Woken
   * by the holder's notice, and checks every FLEET_LOCK_POLL_MS in case the notice was missed.
   */
  async waitFor(slot: StoreSlot, types: readonly ImageType[], deadlineAt: number): Promise<void> {
    const locks = types.map((type) => this.lockKey(slot.scope, slot.interviewId, type))
    for (;;) {
      const remaining = deadlineAt - Date.now()
      if (remaining <= 0) return
      // Listen before looking, so a notice sent in between is not lost.
      const notice = this.#notice(locks, Math.min(this.#pollMs, remaining))
      const held = await this.#fleet.run((redis) => redis.exists(...locks))
      if (held === undefined || held < locks.length) {
        notice.cancel()
        return
      }
      await notice.promise
    }
  }

  /**
   * Deletes the interview's entries in every scope and tells every replica to drop its L1 entries
   * for it, waiting (briefly) until they say they have. The number of Redis entries deleted, or
   * undefined when Redis is unavailable.
   */
  async invalidate(label: string): Promise<number | undefined> {
    const keys = [this.#generationKey(label), ...this.#fleet.keys('link-index', label)]
    const dropped = await this.#fleet.run((redis) =>
      redis.eval(INVALIDATE_SCRIPT, keys.length, ...keys, GENERATION_TTL_MS),
    )
    const nonce = randomBytes(12).toString('base64url')
    let acked = 0
    let wake = () => {}
    const allAcked = new Promise<void>((resolve) => (wake = resolve))
    let receivers = Infinity
    this.#acks.set(nonce, () => {
      if (++acked >= receivers) wake()
    })
    const timer = setTimeout(wake, ACK_WAIT_MS)
    try {
      const message = this.#fleet.seal.seal(JSON.stringify({ label, nonce }))
      const sent = await this.#fleet.run((redis) => redis.publish(this.#fleet.prefix + INVALIDATE, message))
      receivers = sent ?? 0
      if (acked < receivers) await allAcked
    } finally {
      clearTimeout(timer)
      this.#acks.delete(nonce)
    }
    return typeof dropped === 'number' ? dropped : undefined
  }

  #generationKey(label: string): string {
    return this.#fleet.key('link-generation', label)
  }

  /** Resolves on a release notice for any of `locks`, or after `ms`. */
  #notice(locks: readonly string[], ms: number): { promise: Promise<void>; cancel: () => void } {
    let cancel = () => {}
    const promise = new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        cancel()
        resolve()
      }
      cancel = () => {
        clearTimeout(timer)
        for (const lock of locks) {
          const set = this.#waiters.get(lock)
          set?.delete(done)
          if (set?.size === 0) this.#waiters.delete(lock)
        }
      }
      for (const lock of locks) {
        let set = this.#waiters.get(lock)
        if (!set) {
          set = new Set()
          this.#waiters.set(lock, set)
        }
        set.add(done)
      }
    })
    return { promise, cancel: () => cancel() }
  }
}

const isString = (value: unknown): value is string => typeof value === 'string'
const isFiniteNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value)

/** A stored value as written by write(), or undefined when it is not one. */
function parseStored(plain: Buffer | undefined): StoredLink | undefined {
  if (!plain) return undefined
  let value: unknown
  try {
    value = JSON.parse(plain.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { e, x, u, m } = value as Record<string, unknown>
  if (!isFiniteNumber(u)) return undefined
  if (m === 1) return { entry: undefined, expiresAtMs: undefined, servableUntilMs: u }
  const entry = parseEntry(e)
  if (!entry || !isFiniteNumber(x)) return undefined
  return { entry, expiresAtMs: x, servableUntilMs: u }
}

function parseEntry(value: unknown): LinkEntry | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const { url, expiresAt, attempts } = value as Record<string, unknown>
  if (!isString(url) || !isString(expiresAt) || !Array.isArray(attempts)) return undefined
  const parsed: LinkEntry['attempts'] = []
  for (const attempt of attempts as unknown[]) {
    if (typeof attempt !== 'object' || attempt === null) return undefined
    const a = attempt as Record<string, unknown>
    if (!isString(a.capturedAt) || !isString(a.url) || !isString(a.expiresAt)) return undefined
    parsed.push({ capturedAt: a.capturedAt, url: a.url, expiresAt: a.expiresAt })
  }
  return { url, expiresAt, attempts: parsed }
}

function parseInvalidation(plain: Buffer | undefined): { label: string; nonce: string } | undefined {
  if (!plain) return undefined
  try {
    const value: unknown = JSON.parse(plain.toString('utf8'))
    if (typeof value !== 'object' || value === null) return undefined
    const { label, nonce } = value as Record<string, unknown>
    return isString(label) && isString(nonce) ? { label, nonce } : undefined
  } catch {
    return undefined
  }
}
