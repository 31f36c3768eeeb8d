import t from 'tap'
import { FakeClock, FakeUpstream, makeCache } from './fixtures/cache.js'

void t.test('the entry bound evicts the least recently used entry', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock, { maxEntries: 2 })
  const upstream = new FakeUpstream(clock)

  await cache.resolve('admin', 'iv-1', ['selfie'], upstream.load)
  await cache.resolve('admin', 'iv-2', ['selfie'], upstream.load)
  await cache.resolve('admin', 'iv-1', ['selfie'], upstream.load) // iv-1 is now the most recent
  await cache.resolve('admin', 'iv-3', ['selfie'], upstream.load)

  const stats = cache.stats()
  t.equal(stats.entries, 2, 'never more than maxEntries')
  t.equal(stats.evictions, 1, 'one entry was evicted')
  t.ok(cache.peek('admin', 'iv-1', ['selfie']).entries.has('selfie'), 'the recently read entry survived')
  t.same(cache.peek('admin', 'iv-2', ['selfie']).misses, ['selfie'], 'the least recently used entry went')
  t.equal(cache.invalidate('iv-2'), 0, 'invalidate counts only entries still cached')
})

void t.test('the byte bound evicts and counts the key and JSON of each entry', async (t) => {
  const clock = new FakeClock()
  const upstream = new FakeUpstream(clock)
  const probe = makeCache(clock)
  await probe.resolve('admin', 'iv-1', ['selfie'], upstream.load)
  const oneEntry = probe.stats().bytes
  const entry = probe.peek('admin', 'iv-1', ['selfie']).entries.get('selfie')
  const keyParts = 'admin'.length + 'iv-1'.length + 'selfie'.length
  t.ok(
    oneEntry >= Buffer.byteLength(JSON.stringify(entry)) + keyParts,
    `an entry's size counts its JSON and its key (${oneEntry} bytes)`,
  )

  // Room for two entries of that size (same-length keys and URLs), not three.
  const cache = makeCache(clock, { maxBytes: Math.floor(oneEntry * 2.5) })
  for (const id of ['iv-1', 'iv-2', 'iv-3']) await cache.resolve('admin', id, ['selfie'], upstream.load)

  const stats = cache.stats()
  t.equal(stats.entries, 2, 'only two entries fit the byte bound')
  t.ok(stats.bytes <= Math.floor(oneEntry * 2.5), 'the byte total stays within maxBytes')
  t.equal(stats.evictions, 1, 'the oldest entry was evicted for bytes')
  t.same(cache.peek('admin', 'iv-1', ['selfie']).misses, ['selfie'], 'the oldest entry went')
})

void t.test('an entry larger than maxBytes on its own is served to its caller but not stored', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock, { maxBytes: 50 })
  const upstream = new FakeUpstream(clock)

  const result = await cache.resolve('admin', 'iv-1', ['selfie'], upstream.load)
  t.ok(result.entries.has('selfie'), 'the caller still gets the link')
  t.equal(cache.stats().entries, 0, 'the oversized entry was not stored')
  t.equal(cache.invalidate('iv-1'), 0, 'invalidate finds nothing to drop')
})
