import t from 'tap'
import { Metrics } from '../src/metrics.js'
import { SEEDED_INTERVIEW_IDS } from '../src/simulator/index.js'
import { at, FakeClock, FakeUpstream, HeldUpstream, makeCache } from './cache/fixtures/cache.js'
import { build, partnerHeaders } from './helpers/build.js'

/** The exposition lines of one metric: its TYPE and its sample. */
async function scrape(metrics: Metrics, name: string): Promise<{ type: string; value: number }> {
  const text = await metrics.registry.getSingleMetricAsString(name)
  const type = /^# TYPE \S+ (\w+)$/m.exec(text)?.[1] ?? ''
  const value = Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])
  return { type, value }
}

void t.test('evictions and coalesced waits are Prometheus counters fed by the cache totals', async (t) => {
  const clock = new FakeClock()
  const cache = makeCache(clock, { maxEntries: 2 })
  const metrics = new Metrics(() => cache.stats())
  const upstream = new FakeUpstream(clock)

  t.same(
    await scrape(metrics, 'gateway_link_cache_evictions_total'),
    { type: 'counter', value: 0 },
    'evictions: a counter with a _total name, 0 at start',
  )
  t.same(
    await scrape(metrics, 'gateway_link_cache_coalesced_waits_total'),
    { type: 'counter', value: 0 },
    'coalesced waits: a counter with a _total name, 0 at start',
  )

  for (const id of ['iv-1', 'iv-2', 'iv-3', 'iv-4'])
    await cache.resolve(at('admin', id), ['selfie'], upstream.load)
  t.equal((await scrape(metrics, 'gateway_link_cache_evictions_total')).value, 2, 'two evictions')
  t.equal(
    (await scrape(metrics, 'gateway_link_cache_evictions_total')).value,
    2,
    'a second scrape does not count them again',
  )
  await cache.resolve(at('admin', 'iv-5'), ['selfie'], upstream.load)
  t.equal((await scrape(metrics, 'gateway_link_cache_evictions_total')).value, 3, 'a later eviction adds one')

  const held = new HeldUpstream()
  const first = cache.resolve(at('admin', 'iv-9'), ['selfie'], held.load)
  const second = cache.resolve(at('admin', 'iv-9'), ['selfie'], held.load)
  held.call(0).pending.resolve(upstream.links(['selfie']))
  await Promise.all([first, second])
  t.equal(held.calls.length, 1, 'the second lookup waited on the first one’s load')
  t.equal((await scrape(metrics, 'gateway_link_cache_coalesced_waits_total')).value, 1, 'one coalesced wait')

  t.same(
    await scrape(metrics, 'gateway_link_cache_entries'),
    { type: 'gauge', value: 2 },
    'entries stay a gauge (a level)',
  )
  t.equal((await scrape(metrics, 'gateway_link_cache_bytes')).type, 'gauge', 'bytes stay a gauge')
})

void t.test('the app exports the link cache totals as counters on /metrics', async (t) => {
  const { app } = await build(t, { env: { LINK_CACHE_MAX_ENTRIES: '1' } })
  const links = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.full}/image-links`,
    headers: partnerHeaders(),
    payload: { images: ['selfie', 'document'] },
  })
  t.equal(links.statusCode, 200, 'two links fetched into a one-entry cache')
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: partnerHeaders() })
  t.equal(res.statusCode, 200, '/metrics answers')
  t.match(res.body, /^# TYPE gateway_link_cache_evictions_total counter$/m, 'evictions typed counter')
  t.match(res.body, /^gateway_link_cache_evictions_total 1$/m, 'with the one eviction')
  t.match(
    res.body,
    /^# TYPE gateway_link_cache_coalesced_waits_total counter$/m,
    'coalesced waits typed counter',
  )
  t.notMatch(res.body, /^gateway_link_cache_evictions /m, 'the old gauge name is gone')
})
