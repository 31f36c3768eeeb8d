import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { entryHeapBytes } from '../../src/cache/linkCache.js'
import { incodeLinksAnswerJson, linksAnswerJson, toIncodeLinksShape } from '../../src/domain/links.js'
import { at, FakeClock, FakeUpstream, makeCache } from './fixtures/cache.js'

void t.test('the entry bound evicts the least recently used entry', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock, { maxEntries: 2 })
  const upstream = new FakeUpstream(clock)

  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  await cache.resolve(at('admin', 'iv-2'), ['selfie'], upstream.load)
  await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load) // iv-1 is now the most recent
  await cache.resolve(at('admin', 'iv-3'), ['selfie'], upstream.load)

  const stats = cache.stats()
  t.equal(stats.entries, 2, 'never more than maxEntries')
  t.equal(stats.evictions, 1, 'one entry was evicted')
  t.ok(cache.peek(at('admin', 'iv-1'), ['selfie']).entries.has('selfie'), 'the recently read entry survived')
  t.same(cache.peek(at('admin', 'iv-2'), ['selfie']).misses, ['selfie'], 'the least recently used entry went')
  t.equal(cache.invalidate('iv-2'), 0, 'invalidate counts only entries still cached')
})

void t.test('an entry counts its key, every string it holds, its answer texts and overhead', async (t) => {
  const clock = new FakeClock()
  const upstream = new FakeUpstream(clock)
  const probe = makeCache(clock)
  await probe.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  const oneEntry = probe.stats().bytes
  const entry = probe.peek(at('admin', 'iv-1'), ['selfie']).entries.get('selfie')
  if (!entry) throw new Error('selfie was not cached')
  const key = 'admin\0iv-1\0selfie'
  const strings = [
    entry.url,
    entry.expiresAt,
    ...entry.attempts.flatMap((a) => [a.url, a.capturedAt, a.expiresAt]),
  ]
  const texts = [JSON.stringify(entry), JSON.stringify(toIncodeLinksShape([['selfie', entry]])).slice(1, -1)]
  const held = [key, ...strings, ...texts].reduce((sum, text) => sum + text.length, 0)
  t.equal(entryHeapBytes(key, 'selfie', entry), oneEntry, 'the cache counts an entry as entryHeapBytes does')
  t.ok(oneEntry >= held, `every character held is counted (${held} characters, ${oneEntry} bytes)`)
  t.ok(
    oneEntry - held <= 1_500,
    `and the rest is per-object overhead, bounded (${oneEntry - held} bytes for one attempt)`,
  )
  t.equal(
    linksAnswerJson([['selfie', entry]], []),
    `{"images":{"selfie":${texts[0]}},"missing":[]}`,
    'the /v1 text counted is the one answered',
  )
  t.equal(incodeLinksAnswerJson([['selfie', entry]]), `{${texts[1]}}`, 'so is the Incode-shape text')

  const missingOnly = makeCache(clock)
  await missingOnly.resolve(at('admin', 'iv-1'), ['document'], () =>
    Promise.resolve({ entries: new Map(), missing: ['document'] }),
  )
  const missingBytes = missingOnly.stats().bytes
  t.ok(
    missingBytes > 'admin\0iv-1\0document'.length && missingBytes < oneEntry,
    `a cached "missing" counts its key and overhead only (${missingBytes} bytes)`,
  )

  // Room for two entries of that size (same-length keys and URLs), not three.
  const cache = makeCache(clock, { maxBytes: Math.floor(oneEntry * 2.5) })
  for (const id of ['iv-1', 'iv-2', 'iv-3']) await cache.resolve(at('admin', id), ['selfie'], upstream.load)

  const stats = cache.stats()
  t.equal(stats.entries, 2, 'only two entries fit the byte bound')
  t.ok(stats.bytes <= Math.floor(oneEntry * 2.5), 'the byte total stays within maxBytes')
  t.equal(stats.evictions, 1, 'the oldest entry was evicted for bytes')
  t.same(cache.peek(at('admin', 'iv-1'), ['selfie']).misses, ['selfie'], 'the oldest entry went')
})

void t.test('an entry larger than maxBytes on its own is served to its caller but not stored', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock, { maxBytes: 50 })
  const upstream = new FakeUpstream(clock)

  const result = await cache.resolve(at('admin', 'iv-1'), ['selfie'], upstream.load)
  t.ok(result.entries.has('selfie'), 'the caller still gets the link')
  t.equal(cache.stats().entries, 0, 'the oversized entry was not stored')
  t.equal(cache.invalidate('iv-1'), 0, 'invalidate finds nothing to drop')
})

void t.test('maxBytes bounds the heap the cache really holds (measured with --expose-gc)', async (t) => {
  const maxBytes = 8_000_000
  const script = fileURLToPath(new URL('./fixtures/heapFill.ts', import.meta.url))
  for (const attempts of [1, 4]) {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', script, String(maxBytes), String(attempts)],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)) },
    )
    const measured = JSON.parse(stdout) as { accounted: number; entries: number; heapDelta: number }
    const what = `${attempts} attempt(s) a link: ${measured.entries} entries, ${measured.heapDelta} bytes of heap`
    t.ok(measured.accounted <= maxBytes, `${what}: the accounted total stays within maxBytes`)
    // Bytes the old count (JSON + key) let in came to 4.5 times maxBytes; the fixed slot arrays
    // and weak-map slack add a little.
    t.ok(measured.heapDelta <= 1.5 * maxBytes, `${what}: the real heap is within 1.5 × maxBytes`)
    t.ok(measured.heapDelta >= 0.5 * measured.accounted, `${what}: and the count is not far above it`)
  }
})
