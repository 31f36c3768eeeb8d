import t from 'tap'
import type { LoadedLinks } from '../../src/cache/linkCache.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { at, FakeClock, FakeUpstream, HOUR, MARGIN, linkEntry, makeCache } from '../cache/fixtures/cache.js'

// LinkCache.resolveStored: fleet mode's L2 hit answered at once from what Redis held, L1 filled
// in the same turn, unless an invalidation came while Redis was read.

/** What a shared cache (Redis) would hand over: links for `linked`, "no such image" for `missing`. */
/** A cache on a fake clock and the partner slot of interview iv-1. */
function adminSetup() {
  const clock = new FakeClock()
  return { clock, cache: makeCache(clock), slot: at('admin', 'iv-1') }
}

function fromStore(clock: FakeClock, linked: readonly ImageType[], missing: ImageType[] = []): LoadedLinks {
  const expiresAtMs = clock.ms + 2 * HOUR
  return {
    entries: new Map(
      linked.map((type) => [type, { entry: linkEntry(`https://l2/${type}`, expiresAtMs), expiresAtMs }]),
    ),
    missing,
    fromStore: new Set([...linked, ...missing]),
    servableUntilMs: new Map([...linked, ...missing].map((type) => [type, expiresAtMs - MARGIN])),
  }
}

void t.test('an L2 hit is answered as resolve answers it, and L1 holds it afterwards', async (t) => {
  const { clock, cache, slot } = adminSetup()
  const stored = fromStore(clock, ['selfie', 'document'], ['signature'])

  const fast = cache.resolveStored(slot, ['document', 'signature', 'selfie'], stored, cache.epoch)
  if (!fast) throw new Error('the L2 hit was not answered')
  t.equal(fast.status, 'HIT', 'a HIT')
  t.same([...fast.entries.keys()], ['document', 'selfie'], 'the links in the requested order')
  t.same(fast.missing, ['signature'], 'the type Redis holds as missing is missing')
  t.ok(
    [...fast.entries.values()].every((e) => Object.isFrozen(e)),
    'handed out as L1 keeps them (frozen)',
  )
  t.same(cache.stats().misses, 3, 'the three types counted as L1 misses, as resolve counts a load')

  const other = makeCache(clock)
  const slow = await other.resolve(slot, ['document', 'signature', 'selfie'], async () => stored)
  t.same(
    { entries: [...fast.entries], missing: fast.missing, status: fast.status },
    { entries: [...slow.entries], missing: slow.missing, status: slow.status },
    'the same answer as the loader path gives',
  )

  const again = cache.resolveCached(slot, ['selfie', 'document', 'signature'])
  t.equal(again?.status, 'HIT', 'L1 was filled: the next lookup is a warm hit')
  t.equal(again?.entries.get('selfie'), fast.entries.get('selfie'), 'the same frozen entry')
})

void t.test('what L1 holds is served from L1, the rest from the store', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const slot = at('admin', 'iv-1')
  await cache.resolve(slot, ['selfie'], upstream.load)
  const kept = cache.peek(slot, ['selfie']).entries.get('selfie')
  const before = cache.stats()
  const found = cache.resolveStored(slot, ['selfie', 'document'], fromStore(clock, ['document']), cache.epoch)
  t.equal(found?.status, 'HIT', 'a HIT')
  t.equal(found?.entries.get('selfie'), kept, "selfie: L1's entry")
  t.equal(found?.entries.get('document')?.url, 'https://l2/document', "document: the store's")
  const after = cache.stats()
  t.same([after.hits - before.hits, after.misses - before.misses], [1, 1], 'one hit, one miss counted')
})

void t.test(
  'a type neither in L1 nor in the store: left to resolve, nothing counted or stored',
  async (t) => {
    const { clock, cache, slot } = adminSetup()
    const found = cache.resolveStored(slot, ['selfie', 'document'], fromStore(clock, ['selfie']), cache.epoch)
    t.equal(found, undefined, 'not answered')
    t.same(cache.stats(), { ...cache.stats(), hits: 0, misses: 0, entries: 0 }, 'nothing counted or stored')
  },
)

void t.test('an invalidation while Redis was read: answered, but not kept in L1', async (t) => {
  const { clock, cache, slot } = adminSetup()
  const epoch = cache.epoch
  cache.invalidate('iv-1')
  const found = cache.resolveStored(slot, ['selfie'], fromStore(clock, ['selfie']), epoch)
  t.equal(found?.entries.get('selfie')?.url, 'https://l2/selfie', 'the caller gets what was read')
  t.same(cache.peek(slot, ['selfie']).misses, ['selfie'], 'L1 does not keep the pre-DELETE value')
  t.equal(cache.stats().entries, 0, 'nothing stored')
})

void t.test('a dead credential is never answered here', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const slot = at('tok:abc', 'iv-1', { label: 'iv-1', notAfterMs: clock.ms })
  t.equal(
    cache.resolveStored(slot, ['selfie'], fromStore(clock, ['selfie']), cache.epoch),
    undefined,
    'left to resolve',
  )
})

void t.test('isLoading tells whether a load in flight fetches one of the types', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const slot = at('admin', 'iv-1')
  let release = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  const loading = cache.resolve(slot, ['selfie'], async (types) => {
    await gate
    return upstream.load(types)
  })
  t.ok(cache.isLoading(slot, ['document', 'selfie']), 'selfie is being loaded')
  t.notOk(cache.isLoading(slot, ['document']), 'document is not')
  t.notOk(cache.isLoading(at('admin', 'iv-2'), ['selfie']), 'nor another interview')
  release()
  await loading
  t.notOk(cache.isLoading(slot, ['selfie']), 'no longer once loaded')
})

void t.test(
  'an invalidation right after the answer, before L1 stored it: dropped all the same',
  async (t) => {
    const { clock, cache, slot } = adminSetup()
    const found = cache.resolveStored(slot, ['selfie'], fromStore(clock, ['selfie']), cache.epoch)
    t.equal(found?.status, 'HIT', 'answered')
    cache.invalidate('iv-1')
    t.same(cache.peek(slot, ['selfie']).misses, ['selfie'], 'a miss after the invalidation')
    await new Promise<void>((resolve) => setImmediate(resolve))
    t.same(cache.peek(slot, ['selfie']).misses, ['selfie'], 'and still one a turn later')
  },
)
