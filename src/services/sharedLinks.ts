import { randomBytes } from 'node:crypto'
import type { CacheSlot, LinkCache, LinkLoader, LoadedLinks, ResolvedLinks } from '../cache/linkCache.js'
import type { ImageType } from '../domain/imageTypes.js'
import type { NormalisedLinks } from '../domain/links.js'
import type { FetchedEntries, LinkStore, StoredLink, StoreSlot } from '../fleet/linkStore.js'
import type { Metrics } from '../metrics.js'

/** Claim-and-wait rounds before a replica stops waiting on others and asks Incode itself. */
const MAX_ROUNDS = 8

/** What one loader gathers, from Redis or Incode, in the LinkCache's terms. */
class Gathered {
  readonly entries: NormalisedLinks['entries'] = new Map()
  readonly missing: ImageType[] = []
  readonly fromStore = new Set<ImageType>()
  readonly servableUntilMs = new Map<ImageType, number>()

  /** What Redis held of `types` (a read made for more types adds only these). */
  addStored(found: ReadonlyMap<ImageType, StoredLink>, hit: boolean, types: readonly ImageType[]): void {
    for (const type of types) {
      const stored = found.get(type)
      if (!stored) continue
      if (stored.entry && stored.expiresAtMs !== undefined) {
        this.entries.set(type, { entry: stored.entry, expiresAtMs: stored.expiresAtMs })
      } else this.missing.push(type)
      this.servableUntilMs.set(type, stored.servableUntilMs)
      if (hit) this.fromStore.add(type)
    }
  }

  addLoaded(links: NormalisedLinks): void {
    for (const [type, got] of links.entries) this.entries.set(type, got)
    this.missing.push(...links.missing)
  }

  result(): LoadedLinks {
    return {
      entries: this.entries,
      missing: this.missing,
      fromStore: this.fromStore,
      servableUntilMs: this.servableUntilMs,
    }
  }
}

/**
 * A Redis read of a lookup's entries started before the request's body is read (readAhead): it
 * overlaps the round trip with parsing and validating the body, the rest of the request's hooks
 * and the handler, which the lookup otherwise spends before it reads.
 */
export interface ReadAhead {
  slot: CacheSlot
  types: readonly ImageType[]
  /** L1's epoch before the read: an invalidation since keeps what it found out of L1. */
  epoch: number
  fetched: Promise<FetchedEntries | undefined>
}

function storeSlotOf(slot: CacheSlot): StoreSlot {
  return {
    scope: slot.scope,
    interviewId: slot.interviewId,
    label: slot.label ?? slot.interviewId,
    notAfterMs: slot.notAfterMs ?? Infinity,
  }
}

/** Reads ahead in flight, per store and slot: requests arriving together share one MGET. */
const readsAhead = new WeakMap<LinkStore, Map<string, ReadAhead>>()

/**
 * Starts the Redis read of `types` for `slot` now, when a lookup for it is certain to read Redis:
 * L1 holds nothing of the interview and loads nothing of it, and the credential is alive. Else
 * undefined, and nothing is sent: an L1 hit never costs a Redis command. The lookup uses the read
 * when its request turns out valid (sharedLoader's `resolve`); a request refused after this (an
 * invalid body) has cost one MGET, as it would have after validation had its body been valid.
 * Requests for the same slot and types while a read is in flight share it (a herd on a cold
 * replica sends one MGET, not one per request), unless an invalidation came since it began.
 */
export function readAhead(
  store: LinkStore,
  cache: LinkCache,
  slot: CacheSlot,
  types: readonly ImageType[],
): ReadAhead | undefined {
  // isCold first: on a warm replica (every L1 hit) it is the one map lookup this costs.
  if (!cache.isCold(slot, types)) return undefined
  const storeSlot = storeSlotOf(slot)
  if (!(storeSlot.notAfterMs > store.now())) return undefined
  let inFlight = readsAhead.get(store)
  if (!inFlight) {
    inFlight = new Map()
    readsAhead.set(store, inFlight)
  }
  const key = `${storeSlot.scope}\0${storeSlot.interviewId}\0${storeSlot.label}\0${String(storeSlot.notAfterMs)}\0${types.join(',')}`
  const shared = inFlight.get(key)
  // Not one that began before an invalidation: this request may have come after it ended.
  if (shared && shared.epoch === cache.epoch) return shared
  const ahead: ReadAhead = { slot, types, epoch: cache.epoch, fetched: store.fetch(storeSlot, types) }
  inFlight.set(key, ahead)
  const done = () => {
    if (inFlight.get(key) === ahead) inFlight.delete(key)
  }
  void ahead.fetched.then(done, done)
  return ahead
}

const sameSlot = (a: CacheSlot, b: CacheSlot) =>
  a.scope === b.scope &&
  a.interviewId === b.interviewId &&
  (a.label ?? a.interviewId) === (b.label ?? b.interviewId) &&
  (a.notAfterMs ?? Infinity) === (b.notAfterMs ?? Infinity)

/**
 * A lookup's loader in fleet mode, and its way of resolving what L1 lacks (`resolve`): Redis is
 * read first, outside L1's loader and coalescing, and when it holds every type L1 lacks (an L2
 * hit) the lookup is answered from that one MGET (or the read made ahead of the body, when there
 * is one for the slot and the types: readAhead) at once (LinkCache.resolveStored fills L1 in the
 * same turn), with no loader, in-flight record or claim. Otherwise L1's `resolve` runs the loader,
 * which reads Redis again inside L1's coalescing: a read made before it may predate another
 * replica's write and released lock, and claiming on it made a second upstream call (seen in
 * test/fleet/link-coalescing's crashed-holder case, about one run in six on Node 24).
 */
export interface SharedLoader extends LinkLoader {
  resolve(cache: LinkCache, types: readonly ImageType[], load: LinkLoader): Promise<ResolvedLinks>
}

/**
 * Puts fleet mode's shared cache (Redis, L2) between a replica's LinkCache (L1) and Incode: what
 * L1 misses is read from Redis; what Redis lacks is locked by one replica, fetched from Incode
 * once and written to Redis for all, while the other replicas wait for it (bounded by the request
 * deadline) and fetch it themselves only if the holder gives up or vanishes. L1's own coalescing
 * stays in front, so one replica sends one waiter. When Redis is unavailable this is `load` alone.
 */
export function sharedLoader(
  store: LinkStore,
  slot: CacheSlot,
  deadlineAt: number,
  load: LinkLoader,
  metrics: Metrics,
  ahead?: ReadAhead,
): SharedLoader {
  const storeSlot = storeSlotOf(slot)
  const count = (result: string, n: number) => {
    if (n > 0) metrics.linkStoreLookups.inc({ result }, n)
  }
  const loader = async (types: ImageType[]): Promise<LoadedLinks> => {
    // A dead credential is never cached (LinkCache bypasses too).
    if (!(storeSlot.notAfterMs > store.now())) return load(types)
    const read = await store.read(storeSlot, types)
    if (!read) {
      count('unavailable', types.length)
      return load(types)
    }
    const gathered = new Gathered()
    gathered.addStored(read.found, true, types)
    let pending = types.filter((type) => !read.found.has(type))
    count('hit', types.length - pending.length)
    count('miss', pending.length)
    // All from Redis (an L2 hit): nothing to claim, load or wait for.
    if (pending.length === 0) return gathered.result()
    const token = randomBytes(12).toString('base64url')
    const loadAndShare = async (mine: ImageType[]): Promise<LoadedLinks> => {
      try {
        const links = await load(mine)
        await store.write(storeSlot, mine, links, token, read.generation)
        return links
      } catch (err) {
        await store.release(storeSlot, mine, token)
        throw err
      }
    }
    const own: Promise<LoadedLinks>[] = []
    const start = (loading: Promise<LoadedLinks>) => {
      // Observed at once: it may fail while this lookup still waits on other replicas.
      loading.catch(() => undefined)
      own.push(loading)
    }
    for (let round = 0; pending.length > 0; round++) {
      const claim =
        round < MAX_ROUNDS && Date.now() < deadlineAt
          ? await store.claim(storeSlot, pending, token)
          : undefined
      if (!claim) {
        // Redis unavailable, or no time or patience left for waiting: ask Incode directly.
        start(load(pending))
        break
      }
      if (claim.mine.length > 0) start(loadAndShare(claim.mine))
      if (claim.others.length === 0) break
      if (claim.held.length > 0) await store.waitFor(storeSlot, claim.held, deadlineAt)
      const again = await store.read(storeSlot, claim.others)
      if (!again) {
        start(load(claim.others))
        break
      }
      gathered.addStored(again.found, false, claim.others)
      count('waited', again.found.size)
      pending = claim.others.filter((type) => !again.found.has(type))
    }
    // Every load's rejection is observed here; the first one rejects this lookup.
    for (const links of await Promise.all(own)) gathered.addLoaded(links)
    return gathered.result()
  }

  const resolve = async (
    cache: LinkCache,
    types: readonly ImageType[],
    traced: LinkLoader,
  ): Promise<ResolvedLinks> => {
    // Loading here already (L1 coalescing), or a dead credential: L1's own way.
    if (cache.isLoading(slot, types) || !(storeSlot.notAfterMs > store.now()))
      return cache.resolve(slot, types, traced)
    const lacking = cache.peek(slot, types).misses
    const early =
      ahead && sameSlot(ahead.slot, slot) && lacking.every((type) => ahead.types.includes(type))
        ? ahead
        : undefined
    const epoch = early ? early.epoch : cache.epoch
    const fetched = await (early ? early.fetched : store.fetch(storeSlot, lacking))
    const found = fetched && store.decode(fetched, lacking)
    if (found && lacking.every((type) => found.has(type))) {
      const gathered = new Gathered()
      gathered.addStored(found, true, lacking)
      const answered = cache.resolveStored(slot, types, gathered.result(), epoch)
      if (answered) {
        count('hit', lacking.length)
        return answered
      }
    }
    // Not a full L2 hit: the loader reads again (see above).
    return cache.resolve(slot, types, traced)
  }

  return Object.assign(loader, { resolve })
}
