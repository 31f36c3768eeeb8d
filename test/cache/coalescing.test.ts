import t from 'tap'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { at, FakeClock, FakeUpstream, flush, HeldUpstream, makeCache } from './fixtures/cache.js'

void t.test('200 concurrent identical resolves call the loader once', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()

  const types: ImageType[] = ['selfie', 'document']
  const all = Array.from({ length: 200 }, () => cache.resolve(at('admin', 'iv-1'), types, held.load))
  await flush()
  t.equal(held.calls.length, 1, 'one upstream call for 200 requests')
  held.call(0).pending.resolve(upstream.links(types))

  const results = await Promise.all(all)
  const urls = new Set(results.map((r) => r.entries.get('selfie')?.url))
  t.equal(urls.size, 1, 'every request got the same link')
  t.ok(
    results.every((r) => r.status === 'MISS' && r.entries.size === 2),
    'every request got both types, none from the cache',
  )
  const stats = cache.stats()
  t.equal(stats.coalesced, 199 * 2, 'every type-wait but the loader’s own was coalesced')
  t.equal(stats.misses, 400, 'all 400 type lookups missed the cache')
  t.equal(stats.entries, 2, 'the load was stored once')
})

void t.test('overlapping lists: cached served, in-flight awaited, only the rest loaded', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()

  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load) // a: cached
  const first = cache.resolve(at('admin', 'iv-1'), ['document'], held.load) // b: in flight
  const second = cache.resolve(at('admin', 'iv-1'), ['selfie', 'document', 'signature'], held.load)
  await flush()

  t.same(
    held.calls.map((c) => c.types),
    [['document'], ['signature']],
    'the second request loads only the type neither cached nor in flight',
  )
  held.call(1).pending.resolve(upstream.links(['signature']))
  await flush()
  held.call(0).pending.resolve(upstream.links(['document']))

  const [a, b] = await Promise.all([first, second])
  t.equal(a.status, 'MISS', 'the first request loaded its type')
  t.equal(b.status, 'PARTIAL', 'the second request had one type from the cache')
  t.same(
    [...b.entries.keys()],
    ['selfie', 'document', 'signature'],
    'it got all three, in the requested order',
  )
  t.equal(
    b.entries.get('document')?.url,
    a.entries.get('document')?.url,
    'document came from the first request’s load',
  )
  t.equal(cache.stats().coalesced, 1, 'one type-wait was coalesced')
})

void t.test('a type another load reports missing is missing for its waiters too', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { missing: ['signature'] })
  const held = new HeldUpstream()

  const first = cache.resolve(at('admin', 'iv-1'), ['signature'], held.load)
  const second = cache.resolve(at('admin', 'iv-1'), ['signature', 'selfie'], held.load)
  await flush()
  t.same(held.calls[1]?.types, ['selfie'], 'the waiter loads only selfie itself')
  held.call(0).pending.resolve(upstream.links(['signature']))
  held.call(1).pending.resolve(upstream.links(['selfie']))

  t.same((await first).missing, ['signature'], 'the loading request sees it missing')
  t.same((await second).missing, ['signature'], 'the waiting request sees it missing')
})

void t.test('a rejected load rejects every waiter, is not cached, and the next call retries', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()
  const boom = new Error('upstream timeout')

  const waiters = Array.from({ length: 5 }, () => cache.resolve(at('admin', 'iv-1'), ['selfie'], held.load))
  // A request that also loads a type of its own still fails with the shared load.
  const mixed = cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], held.load)
  await flush()
  t.equal(held.calls.length, 2, 'one shared load plus the mixed request’s own load')
  held.call(1).pending.resolve(upstream.links(['document']))
  held.call(0).pending.reject(boom)

  for (const [i, waiter] of waiters.entries()) {
    await t.rejects(waiter, boom, `waiter ${i} gets the loader's error`)
  }
  await t.rejects(mixed, boom, 'the mixed request gets the error too')
  t.same(cache.peek(at('admin', 'iv-1'), ['selfie']).misses, ['selfie'], 'the error was not cached')
  t.ok(
    cache.peek(at('admin', 'iv-1'), ['document']).entries.has('document'),
    'the other, successful load was stored',
  )

  const retry = await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  t.equal(retry.status, 'MISS', 'the retry loads again')
  t.same(upstream.calls, [['selfie']], 'the retry reached the loader')
})

void t.test('a request after a load settles reads the cache instead of joining it', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()

  const first = cache.resolve(at('admin', 'iv-1'), ['selfie'], held.load)
  await flush()
  held.call(0).pending.resolve(upstream.links(['selfie']))
  await first
  const second = await cache.resolve(at('admin', 'iv-1'), ['selfie'], held.load)
  t.equal(second.status, 'HIT', 'served from the cache')
  t.equal(held.calls.length, 1, 'no new load')
})
