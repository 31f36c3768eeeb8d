import t from 'tap'
import { scopeForToken } from '../../src/cache/linkCache.js'
import { at, FakeClock, FakeUpstream, flush, HeldUpstream, makeCache } from './fixtures/cache.js'

void t.test('scopeForToken is a deterministic hash that never contains the token', (t) => {
  const token = 'eyJhbGciOiJIUzI1NiJ9.session-token-A'
  const scope = scopeForToken(token)
  t.equal(scope, scopeForToken(token), 'the same token gives the same scope')
  t.not(scope, scopeForToken('eyJhbGciOiJIUzI1NiJ9.session-token-B'), 'another token gives another scope')
  t.match(scope, /^tok:[0-9a-f]{64}$/, "'tok:' and a sha256 hex digest")
  t.notOk(scope.includes(token), 'the token itself is not in the scope')
  t.equal(
    scopeForToken('abc'),
    'tok:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    'matches the sha256 test vector',
  )
  t.end()
})

void t.test('two token scopes never see each other’s entries', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)
  const a = scopeForToken('token-a')
  const b = scopeForToken('token-b')

  const loadedA = await cache.resolve(at(a, ''), ['selfie'], upstream.load)
  t.same(cache.peek(at(b, ''), ['selfie']).misses, ['selfie'], 'scope b does not see scope a’s entry')
  t.same(cache.peek(at('admin', ''), ['selfie']).misses, ['selfie'], 'the admin scope does not see it either')

  const loadedB = await cache.resolve(at(b, ''), ['selfie'], upstream.load)
  t.equal(loadedB.status, 'MISS', 'scope b loads with its own loader')
  t.not(loadedB.entries.get('selfie')?.url, loadedA.entries.get('selfie')?.url, 'each scope has its own link')
  t.equal(
    cache.peek(at(a, ''), ['selfie']).entries.get('selfie')?.url,
    loadedA.entries.get('selfie')?.url,
    'scope a still gets its own link',
  )
})

void t.test('loads are not shared across scopes', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const held = new HeldUpstream()

  const a = cache.resolve(at(scopeForToken('token-a'), 'iv-1'), ['selfie'], held.load)
  const b = cache.resolve(at(scopeForToken('token-b'), 'iv-1'), ['selfie'], held.load)
  await flush()
  t.equal(held.calls.length, 2, 'each scope calls the upstream with its own credentials')
  const upstream = new FakeUpstream(clock)
  held.call(0).pending.resolve(upstream.links(['selfie']))
  held.call(1).pending.resolve(upstream.links(['selfie']))
  await Promise.all([a, b])
  t.equal(cache.stats().coalesced, 0, 'nothing was coalesced across scopes')
})

void t.test('scopes and ids with separators cannot collide', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock)

  await cache.resolve(at('a:b', 'c'), ['selfie'], upstream.load)
  t.same(
    cache.peek(at('a', 'b:c'), ['selfie']).misses,
    ['selfie'],
    'a different split of the same text is another key',
  )
})
