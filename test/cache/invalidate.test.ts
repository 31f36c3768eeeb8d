import t from 'tap'
import { scopeForToken } from '../../src/cache/linkCache.js'
import { FakeClock, FakeUpstream, HeldUpstream, flush, makeCache } from './fixtures/cache.js'

void t.test('invalidate drops the interview in every scope and leaves other interviews', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const token = scopeForToken('token-a')

  await cache.resolve('admin', 'iv-1', ['selfie', 'document'], upstream.load)
  await cache.resolve(token, 'iv-1', ['selfie'], upstream.load)
  await cache.resolve('admin', 'iv-2', ['selfie'], upstream.load)

  t.equal(cache.invalidate('iv-1'), 3, 'three entries of iv-1 were dropped')
  t.same(
    cache.peek('admin', 'iv-1', ['selfie', 'document']).misses,
    ['selfie', 'document'],
    'admin scope is empty',
  )
  t.same(cache.peek(token, 'iv-1', ['selfie']).misses, ['selfie'], 'the token scope is empty')
  t.ok(cache.peek('admin', 'iv-2', ['selfie']).entries.has('selfie'), 'iv-2 is untouched')
  t.equal(cache.stats().entries, 1, 'one entry remains')
  t.equal(cache.stats().evictions, 0, 'invalidation is not counted as eviction')
  t.equal(cache.invalidate('iv-1'), 0, 'a second invalidate finds nothing')
  t.equal(cache.invalidate('iv-unknown'), 0, 'an unknown interview drops nothing')
})

void t.test(
  'entries stored without an interview id are not dropped by an interview invalidation',
  async (t) => {
    const clock = new FakeClock()
    const cache = makeCache(clock)
    const upstream = new FakeUpstream(clock)
    const token = scopeForToken('token-a')

    await cache.resolve(token, '', ['selfie'], upstream.load)
    t.equal(cache.invalidate('iv-1'), 0, 'nothing is dropped')
    t.ok(cache.peek(token, '', ['selfie']).entries.has('selfie'), 'the token-only entry stays')
  },
)

void t.test('a load in flight before invalidate does not repopulate the cache', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()

  const before = cache.resolve('admin', 'iv-1', ['selfie'], held.load)
  const other = cache.resolve('admin', 'iv-2', ['selfie'], held.load)
  await flush()
  cache.invalidate('iv-1')

  // A request after the invalidation does not join the old load.
  const after = cache.resolve('admin', 'iv-1', ['selfie'], held.load)
  await flush()
  t.equal(held.calls.length, 3, 'the post-invalidation request started its own load')

  held.call(0).pending.resolve(upstream.links(['selfie']))
  held.call(1).pending.resolve(upstream.links(['selfie']))
  const old = await before
  t.ok(old.entries.has('selfie'), 'the pre-invalidation caller still gets its answer')
  await other
  t.same(cache.peek('admin', 'iv-1', ['selfie']).misses, ['selfie'], 'the old load was not stored')
  t.ok(cache.peek('admin', 'iv-2', ['selfie']).entries.has('selfie'), 'another interview’s load was stored')

  held.call(2).pending.resolve(upstream.links(['selfie']))
  const fresh = await after
  t.not(fresh.entries.get('selfie')?.url, old.entries.get('selfie')?.url, 'the new request got the new link')
  t.equal(
    cache.peek('admin', 'iv-1', ['selfie']).entries.get('selfie')?.url,
    fresh.entries.get('selfie')?.url,
    'the post-invalidation load was stored',
  )
})

void t.test('a load in flight before clear does not repopulate the cache', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()

  const before = cache.resolve('admin', 'iv-1', ['selfie'], held.load)
  await flush()
  cache.clear()
  held.call(0).pending.resolve(upstream.links(['selfie']))
  await before
  t.equal(cache.stats().entries, 0, 'the old load was not stored')
})
