import t from 'tap'
import { at, FakeClock, FakeUpstream, HOUR, MARGIN, makeCache } from './fixtures/cache.js'

// The warm path (`resolveCached`): a lookup the cache answers whole, without a loader or a promise;
// anything less is left to `resolve`, with nothing counted twice.

void t.test(
  'a fully cached lookup is answered at once, as resolve answers it, and counted once',
  async (t) => {
    const clock = new FakeClock()
    const cache = makeCache(clock)
    const upstream = new FakeUpstream(clock, { missing: ['signature'] })
    await cache.resolve(at('admin', 'iv-1'), ['selfie', 'signature', 'document'], upstream.load)
    const before = cache.stats()

    const found = cache.resolveCached(at('admin', 'iv-1'), ['document', 'signature', 'selfie', 'document'])
    if (!found) throw new Error('the fully cached lookup was not answered')
    t.equal(found.status, 'HIT', 'a HIT')
    t.same([...found.entries.keys()], ['document', 'selfie'], 'the links, in the requested order, each once')
    t.same(found.missing, ['signature'], 'the type cached as missing is missing')
    t.equal(upstream.calls.length, 1, 'no load')
    const after = cache.stats()
    t.equal(after.hits - before.hits, 3, 'three types counted as hits, the repeated one once')
    t.equal(after.misses, before.misses, 'no miss counted')

    const viaResolve = await cache.resolve(
      at('admin', 'iv-1'),
      ['document', 'signature', 'selfie'],
      upstream.load,
    )
    t.same(
      { entries: [...viaResolve.entries], missing: viaResolve.missing, status: viaResolve.status },
      { entries: [...found.entries], missing: found.missing, status: found.status },
      'the same answer as resolve gives',
    )
  },
)

void t.test('a partly cached or uncached lookup is left to resolve, with nothing counted', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  const before = cache.stats()

  t.equal(cache.resolveCached(at('admin', 'iv-1'), ['selfie', 'document']), undefined, 'partly cached')
  t.equal(cache.resolveCached(at('admin', 'iv-2'), ['selfie']), undefined, 'another interview')
  t.equal(cache.resolveCached(at('tok:abc', 'iv-1'), ['selfie']), undefined, 'another scope')
  const after = cache.stats()
  t.same([after.hits, after.misses], [before.hits, before.misses], 'no hit and no miss counted')

  const partial = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  t.equal(partial.status, 'PARTIAL', 'resolve then answers it as before')
})

void t.test('expiry stays exact: past the margin, or past the credential, nothing is served', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const slot = at('tok:abc', 'iv-1', { label: 'iv-1', notAfterMs: clock.ms + 2 * HOUR })
  await cache.resolve(slot, ['selfie'], upstream.load)

  clock.advance(HOUR - MARGIN - 1)
  t.ok(cache.resolveCached(slot, ['selfie']), 'served 1 ms before the link enters its margin')
  clock.advance(1)
  t.equal(cache.resolveCached(slot, ['selfie']), undefined, 'not served once the link is within the margin')

  await cache.resolve(slot, ['selfie'], upstream.load)
  t.ok(cache.resolveCached(slot, ['selfie']), 'a fresh link is served again')
  t.equal(
    cache.resolveCached({ ...slot, notAfterMs: clock.ms }, ['selfie']),
    undefined,
    'not served to a credential that has expired',
  )
})
