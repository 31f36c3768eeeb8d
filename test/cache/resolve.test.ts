import t from 'tap'
import { LinkCache } from '../../src/cache/linkCache.js'
import { at, FakeClock, FakeUpstream, MISSING_TTL, makeCache } from './fixtures/cache.js'

void t.test('a cold cache is a MISS and stores what it loaded', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  const first = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  t.equal(first.status, 'MISS', 'nothing was cached yet')
  t.same([...first.entries.keys()].sort(), ['document', 'selfie'], 'both types are returned')
  t.same(first.missing, [], 'nothing is missing')
  t.same(upstream.calls, [['selfie', 'document']], 'the loader was called once with both types')

  const second = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  t.equal(second.status, 'HIT', 'every type now comes from the cache')
  t.equal(upstream.calls.length, 1, 'a HIT does not call the loader')
  t.equal(
    second.entries.get('selfie')?.url,
    first.entries.get('selfie')?.url,
    'the cached link is the one loaded before',
  )
  const { bytes, ...counters } = cache.stats()
  t.ok(bytes > 0, 'the stored entries take bytes')
  t.same(counters, { hits: 2, misses: 2, coalesced: 0, entries: 2, evictions: 0 }, 'stats count per type')
})

void t.test('a partly cached request is PARTIAL and the loader gets only the uncached types', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  const result = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'signature', 'document'], upstream.load)

  t.equal(result.status, 'PARTIAL', 'one of three types came from the cache')
  t.same(upstream.calls[1], ['signature', 'document'], 'the loader received only the uncached types')
  t.same(
    [...result.entries.keys()],
    ['selfie', 'signature', 'document'],
    'cached and loaded types are merged in one answer, in the requested order',
  )
})

void t.test('duplicate types in a request are loaded and counted once', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  const result = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'selfie'], upstream.load)
  t.same(upstream.calls, [['selfie']], 'the loader saw the type once')
  t.equal(result.entries.size, 1, 'one entry is returned')
  t.equal(cache.stats().misses, 1, 'one miss is counted')
})

void t.test('an empty request is a HIT that never calls the loader', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  const result = await cache.resolve(at('admin', 'iv-1'), [], upstream.load)
  t.equal(result.status, 'HIT', 'nothing needed loading')
  t.equal(upstream.calls.length, 0, 'the loader was not called')
})

void t.test('types the upstream reports missing are cached as missing, for the missing TTL', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { missing: ['signature'] })

  const first = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'signature'], upstream.load)
  t.same(first.missing, ['signature'], 'signature is reported missing')
  t.notOk(first.entries.has('signature'), 'a missing type has no entry')

  clock.advance(MISSING_TTL - 1)
  const second = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'signature'], upstream.load)
  t.equal(second.status, 'HIT', 'selfie and "no signature" both come from the cache')
  t.same(second.missing, ['signature'], 'signature is still reported missing')
  t.equal(upstream.calls.length, 1, 'no upstream call within the missing TTL')
  t.same(cache.peek(at('admin', 'iv-1'), ['signature']).missing, ['signature'], 'peek reports it missing')

  clock.advance(1)
  const third = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'signature'], upstream.load)
  t.equal(third.status, 'PARTIAL', 'selfie is cached, "no signature" has expired')
  t.same(upstream.calls[1], ['signature'], 'the missing type is asked for again (a new capture may appear)')
})

void t.test('a type the loader silently leaves out is reported missing', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  const result = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], (types) =>
    Promise.resolve(upstream.links(types.filter((type) => type !== 'document'))),
  )
  t.same(result.missing, ['document'], 'the omitted type is missing, not dropped')
})

void t.test('a rejected load rejects the call, is not cached, and a later call retries', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const boom = new Error('upstream 503')

  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  await t.rejects(
    cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], () => Promise.reject(boom)),
    boom,
    'the loader error reaches the caller as is',
  )
  t.equal(cache.stats().entries, 1, 'nothing was stored for the failed load')

  const retried = await cache.resolve(at('admin', 'iv-1'), ['document'], upstream.load)
  t.equal(retried.status, 'MISS', 'the failed type is loaded again')
  t.same(upstream.calls[1], ['document'], 'the retry called the loader')
})

void t.test('a loader that throws synchronously rejects instead of throwing', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const boom = new Error('sync')

  await t.rejects(
    cache.resolve(at('admin', 'iv-1'), ['selfie'], () => {
      throw boom
    }),
    boom,
    'the synchronous throw becomes a rejection',
  )
  t.equal(cache.stats().entries, 0, 'nothing was stored')
})

void t.test('cached entries are frozen copies: no caller can change the cache', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  const first = await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  const loaded = first.entries.get('selfie')
  t.ok(loaded, 'selfie was loaded')
  if (loaded) loaded.url = 'mutated-by-caller'

  const hit = (await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)).entries.get('selfie')
  t.not(hit?.url, 'mutated-by-caller', 'the cache stored its own copy, untouched by the loader’s caller')
  t.ok(hit && Object.isFrozen(hit) && Object.isFrozen(hit.attempts), 'hits hand out frozen entries')
  t.throws(() => {
    if (hit) hit.url = 'mutated-again'
  }, 'writing to a hit fails')
  t.not(
    cache.peek(at('admin', 'iv-1'), ['selfie']).entries.get('selfie')?.url,
    'mutated-again',
    'the cache is unchanged',
  )
})

void t.test('peek serves only what is cached, never loads, and reports the rest as misses', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  const peeked = cache.peek(at('admin', 'iv-1'), ['selfie', 'document'])
  t.same([...peeked.entries.keys()], ['selfie'], 'the cached type is served')
  t.same(peeked.misses, ['document'], 'the uncached type is a miss')
  t.equal(upstream.calls.length, 1, 'peek does not load')
})

void t.test('clear empties the cache', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  cache.clear()
  t.equal(cache.stats().entries, 0, 'no entries remain')
  t.equal(cache.stats().bytes, 0, 'no bytes remain')
  t.equal(cache.invalidate('iv-1'), 0, 'invalidate finds nothing left to drop')
  const again = await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  t.equal(again.status, 'MISS', 'the next request loads again')
})

void t.test('options are validated', (t) => {
  const base = { maxEntries: 10, maxBytes: 1000, marginMs: 0 }
  t.throws(() => new LinkCache({ ...base, maxEntries: 0 }), RangeError, 'maxEntries must be positive')
  t.throws(() => new LinkCache({ ...base, maxBytes: 1.5 }), RangeError, 'maxBytes must be an integer')
  t.throws(() => new LinkCache({ ...base, marginMs: -1 }), RangeError, 'marginMs must not be negative')
  t.throws(() => new LinkCache({ ...base, missingTtlMs: 0 }), RangeError, 'missingTtlMs must be positive')
  t.doesNotThrow(() => new LinkCache(base), 'a zero margin is allowed')
  t.end()
})
