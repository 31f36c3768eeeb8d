import t from 'tap'
import { ClientClosedError, OverloadedError } from '../../src/errors.js'
import { Metrics } from '../../src/metrics.js'
import { Transport } from '../../src/upstream/transport.js'
import { getRoot as get, metricValue, rejectionOf, startServer, testConfig } from './helpers.js'

void t.test('UPSTREAM_RATE_PER_SEC 5: ten calls are spaced over about two seconds', async (t) => {
  const arrivals: number[] = []
  const upstream = await startServer(t, (_req, res) => {
    arrivals.push(Date.now())
    res.end('ok')
  })
  const transport = new Transport(testConfig(upstream.url, { UPSTREAM_RATE_PER_SEC: '5' }))
  t.teardown(() => transport.close())

  const started = Date.now()
  const answers = await Promise.all(Array.from({ length: 10 }, () => get(transport)))
  const took = Date.now() - started
  t.ok(
    answers.every((a) => a.status === 200),
    'all ten succeed',
  )
  t.ok(took >= 1500, `they took at least 1.5 s (${took} ms)`)
  const spread = (arrivals[9] ?? 0) - (arrivals[0] ?? 0)
  t.ok(spread >= 1500, `Incode saw them spread over at least 1.5 s (${spread} ms)`)
})

void t.test(
  'a call that cannot start before its deadline fails at once with UPSTREAM_RATE_LIMITED',
  async (t) => {
    const upstream = await startServer(t, (_req, res) => res.end('ok'))
    const metrics = new Metrics()
    const transport = new Transport(testConfig(upstream.url, { UPSTREAM_RATE_PER_SEC: '5' }), { metrics })
    t.teardown(() => transport.close())

    const ahead = Array.from({ length: 5 }, () => get(transport))
    const started = Date.now()
    // Five calls ahead at 200 ms apiece: it could not start before about 1 s.
    const err = await rejectionOf(get(transport, { deadlineMs: 600 }))
    t.ok(Date.now() - started < 400, 'refused at once, not at its deadline')
    t.ok(err instanceof OverloadedError, 'an OverloadedError')
    t.match(err, { statusCode: 503, code: 'UPSTREAM_RATE_LIMITED' }, '503 UPSTREAM_RATE_LIMITED')
    t.ok(((err as OverloadedError).retryAfterSeconds ?? 0) >= 1, 'with a Retry-After')
    await Promise.all(ahead)
    t.equal(upstream.requests.length, 5, 'Incode never saw the refused call')
    t.equal(
      await metricValue(metrics.shed, { reason: 'upstream_rate' }),
      1,
      'counted as shed by the rate budget',
    )
  },
)

void t.test('a call whose caller leaves while it waits for its slot is answered at once', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end('ok'))
  const transport = new Transport(testConfig(upstream.url, { UPSTREAM_RATE_PER_SEC: '5' }))
  t.teardown(() => transport.close())

  const ahead = Array.from({ length: 5 }, () => get(transport))
  const leaving = new AbortController()
  setTimeout(() => leaving.abort(), 50)
  const started = Date.now()
  const err = await rejectionOf(get(transport, { signal: leaving.signal }))
  t.ok(err instanceof ClientClosedError, 'ClientClosedError')
  t.ok(Date.now() - started < 500, 'long before its slot')
  await Promise.all(ahead)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(upstream.requests.length, 5, 'Incode never saw the call that left')
})

void t.test('UPSTREAM_RATE_PER_SEC 0 (the default) spaces nothing', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end('ok'))
  const transport = new Transport(testConfig(upstream.url))
  t.teardown(() => transport.close())
  const started = Date.now()
  await Promise.all(Array.from({ length: 10 }, () => get(transport)))
  t.ok(Date.now() - started < 1000, 'ten calls well within a second')
})
