import t from 'tap'
import { scopeForToken } from '../../src/cache/linkCache.js'
import {
  at,
  FakeClock,
  FakeUpstream,
  flush,
  HeldUpstream,
  HOUR,
  makeCache,
  MARGIN,
} from './fixtures/cache.js'

void t.test('an entry is served until its expiry minus the margin, and not after', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlMs: HOUR })

  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  const servableFor = HOUR - MARGIN

  clock.advance(servableFor - 1)
  t.equal(
    (await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)).status,
    'HIT',
    'served 1 ms before expiry - margin',
  )

  clock.advance(1)
  t.equal(
    (await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)).status,
    'MISS',
    'not served at expiry - margin',
  )
  t.equal(upstream.calls.length, 2, 'the expired entry was loaded again')
})

void t.test('each type keeps its own expiry', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlByType: { selfie: 20 * 60_000, document: HOUR } })

  await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  clock.advance(20 * 60_000 - MARGIN)
  const result = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  t.equal(result.status, 'PARTIAL', 'the earlier-expiring type is no longer served, the other is')
  t.same(upstream.calls[1], ['selfie'], 'only the expired type is reloaded')
})

void t.test('reads do not extend the TTL', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlMs: HOUR })

  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  // Read it every 10 minutes; with an age reset on read it would never expire.
  let elapsed = 0
  while (elapsed + 10 * 60_000 < HOUR - MARGIN) {
    clock.advance(10 * 60_000)
    elapsed += 10 * 60_000
    const hit = await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
    t.equal(hit.status, 'HIT', `still served after ${elapsed / 60_000} min`)
    t.ok(cache.peek(at('admin', 'iv-1'), ['selfie']).entries.has('selfie'), 'peek serves it as well')
  }
  clock.advance(HOUR - MARGIN - elapsed)
  t.same(
    cache.peek(at('admin', 'iv-1'), ['selfie']).misses,
    ['selfie'],
    'peek no longer serves it at the deadline',
  )
  t.equal(
    (await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)).status,
    'MISS',
    'expired at the original deadline despite the reads',
  )
})

void t.test("lru-cache's own TTL is not reset by reads", async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlMs: HOUR })

  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  clock.advance(HOUR - MARGIN - 1)
  t.equal(
    (await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)).status,
    'HIT',
    'read just before the deadline',
  )
  clock.advance(2)
  // No read now (a read would drop it anyway): stats() only purges what lru-cache itself deems stale.
  t.equal(cache.stats().entries, 0, 'lru-cache dropped it at the original deadline')
})

void t.test('a link expiring within the margin is returned to its caller but never stored', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlByType: { selfie: MARGIN, document: MARGIN + 1 } })

  const first = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  t.ok(first.entries.has('selfie'), 'the fetching caller still gets the short-lived link')
  t.equal(cache.stats().entries, 1, 'only the link that outlives the margin was stored')
  t.same(
    cache.peek(at('admin', 'iv-1'), ['selfie']).misses,
    ['selfie'],
    'the short-lived link is not in the cache',
  )

  const second = await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  t.equal(second.status, 'PARTIAL', 'document (1 ms of life beyond the margin) is served')
  t.same(upstream.calls[1], ['selfie'], 'the unstored link is fetched again')

  clock.advance(1)
  t.same(cache.peek(at('admin', 'iv-1'), ['document']).misses, ['document'], 'and document goes 1 ms later')
})

void t.test('an already expired link is returned but not stored', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlMs: -1000 })

  const result = await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  t.ok(result.entries.has('selfie'), 'the caller gets what the upstream sent')
  t.equal(cache.stats().entries, 0, 'nothing was stored')
})

void t.test('expired entries are purged from the stats without a read', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlMs: HOUR })

  await cache.resolve(at('admin', 'iv-1'), ['selfie', 'document'], upstream.load)
  t.equal(cache.stats().entries, 2, 'two entries while fresh')
  clock.advance(HOUR)
  t.equal(cache.stats().entries, 0, 'none once expired')
  t.equal(cache.stats().bytes, 0, 'and no bytes')
  t.equal(cache.stats().evictions, 0, 'expiry is not counted as eviction')
})

void t.test('an entry lives no longer than the credential that fetched it (notAfterMs)', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlMs: HOUR, missing: ['signature'] })
  const token = at(scopeForToken('token-a'), '', { notAfterMs: clock.ms + 10 * 60_000 })

  await cache.resolve(token, ['selfie', 'signature'], upstream.load)
  clock.advance(10 * 60_000 - 1)
  t.equal((await cache.resolve(token, ['selfie'], upstream.load)).status, 'HIT', 'served 1 ms before it')
  clock.advance(1)
  t.same(
    cache.peek({ ...token, notAfterMs: Infinity }, ['selfie']).misses,
    ['selfie'],
    'gone at the credential expiry, though the link had 50 minutes left',
  )
  t.equal(cache.stats().entries, 0, 'nothing of that credential is left')
})

void t.test('a lookup with an expired credential reads, joins and stores nothing', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock)
  const upstream = new FakeUpstream(clock, { ttlMs: HOUR })
  const held = new HeldUpstream()
  const scope = scopeForToken('token-a')
  const live = at(scope, '', { notAfterMs: clock.ms + 60_000 })

  await cache.resolve(live, ['selfie'], upstream.load)
  const pending = cache.resolve(live, ['document'], held.load)
  await flush()
  const expired = at(scope, '', { notAfterMs: clock.ms })
  const result = await cache.resolve(expired, ['selfie', 'document'], upstream.load)
  t.equal(result.status, 'MISS', 'no HIT for a credential at its expiry, though its entry is cached')
  t.same(upstream.calls.at(-1), ['selfie', 'document'], 'everything was asked of the upstream')
  t.equal(held.calls.length, 1, 'without joining the load in flight')
  t.same(
    cache.peek(live, ['selfie']).entries.get('selfie')?.url,
    (await cache.resolve(live, ['selfie'], upstream.load)).entries.get('selfie')?.url,
    'the live entry is untouched by the bypass',
  )
  held.call(0).pending.resolve(upstream.links(['document']))
  await pending
  t.equal(cache.peek(expired, ['selfie']).misses.length, 1, 'peek serves nothing to an expired credential')
})
