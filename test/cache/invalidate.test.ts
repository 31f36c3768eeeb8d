import t from 'tap'
import { scopeForToken } from '../../src/cache/linkCache.js'
import { at, FakeClock, FakeUpstream, flush, HeldUpstream, makeCache } from './fixtures/cache.js'

void t.test('invalidate drops the interview in every scope and leaves other interviews', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const token = scopeForToken('token-a')

  await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  await cache.resolve(at(token, 'iv-1'), ['selfie'], upstream.load)
  await cache.resolve(at('admin', 'iv-2'), ['selfie'], upstream.load)

  t.equal(cache.invalidate('iv-1'), 3, 'three entries of iv-1 were dropped')
  t.same(
    cache.peek(at('admin', 'iv-1'), ['selfie', 'document']).misses,
    ['selfie', 'document'],
    'admin scope is empty',
  )
  t.same(cache.peek(at(token, 'iv-1'), ['selfie']).misses, ['selfie'], 'the token scope is empty')
  t.ok(cache.peek(at('admin', 'iv-2'), ['selfie']).entries.has('selfie'), 'iv-2 is untouched')
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

    await cache.resolve(at(token, ''), ['selfie'], upstream.load)
    t.equal(cache.invalidate('iv-1'), 0, 'nothing is dropped')
    t.ok(cache.peek(at(token, ''), ['selfie']).entries.has('selfie'), 'the token-only entry stays')
  },
)

void t.test('a load in flight before invalidate does not repopulate the cache', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()

  const before = cache.resolve(at('admin', 'iv-1'), ['selfie'], held.load)
  const other = cache.resolve(at('admin', 'iv-2'), ['selfie'], held.load)
  await flush()
  cache.invalidate('iv-1')

  // A request after the invalidation does not join the old load.
  const after = cache.resolve(at('admin', 'iv-1'), ['selfie'], held.load)
  await flush()
  t.equal(held.calls.length, 3, 'the post-invalidation request started its own load')

  held.call(0).pending.resolve(upstream.links(['selfie']))
  held.call(1).pending.resolve(upstream.links(['selfie']))
  const old = await before
  t.ok(old.entries.has('selfie'), 'the pre-invalidation caller still gets its answer')
  await other
  t.same(cache.peek(at('admin', 'iv-1'), ['selfie']).misses, ['selfie'], 'the old load was not stored')
  t.ok(
    cache.peek(at('admin', 'iv-2'), ['selfie']).entries.has('selfie'),
    'another interview’s load was stored',
  )

  held.call(2).pending.resolve(upstream.links(['selfie']))
  const fresh = await after
  t.not(fresh.entries.get('selfie')?.url, old.entries.get('selfie')?.url, 'the new request got the new link')
  t.equal(
    cache.peek(at('admin', 'iv-1'), ['selfie']).entries.get('selfie')?.url,
    fresh.entries.get('selfie')?.url,
    'the post-invalidation load was stored',
  )
})

void t.test('a load in flight before clear does not repopulate the cache', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()

  const before = cache.resolve(at('admin', 'iv-1'), ['selfie'], held.load)
  await flush()
  cache.clear()
  held.call(0).pending.resolve(upstream.links(['selfie']))
  await before
  t.equal(cache.stats().entries, 0, 'the old load was not stored')
})

void t.test('a label lets invalidate reach entries keyed without the interview, and only that', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { missing: ['signature'] })
  const a = at(scopeForToken('token-a'), '', { label: 'iv-1' })
  const b = at(scopeForToken('token-b'), '', { label: 'iv-1' })

  await cache.resolve(a, ['selfie', 'signature'], upstream.load)
  t.same(
    cache.peek(b, ['selfie', 'signature']).misses,
    ['selfie', 'signature'],
    'the same label reads nothing',
  )
  t.same(cache.peek(at('admin', 'iv-1'), ['selfie']).misses, ['selfie'], 'nor does the labelled interview')
  t.same(cache.peek(a, ['signature']).missing, ['signature'], 'the "missing" answer is cached too')

  t.equal(cache.invalidate('iv-2'), 0, 'another interview drops nothing')
  t.equal(cache.invalidate('iv-1'), 2, 'the link and the "missing" answer are dropped by their label')
  t.same(cache.peek(a, ['selfie', 'signature']).misses, ['selfie', 'signature'], 'both are gone')
})

void t.test('a load in flight for a label is not stored after invalidate', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const held = new HeldUpstream()
  const slot = at(scopeForToken('token-a'), '', { label: 'iv-1' })

  const before = cache.resolve(slot, ['selfie'], held.load)
  await flush()
  cache.invalidate('iv-1')
  held.call(0).pending.resolve(upstream.links(['selfie']))
  t.ok((await before).entries.has('selfie'), 'the caller still gets its answer')
  t.equal(cache.stats().entries, 0, 'the pre-invalidation load was not stored')
})
