import t from 'tap'
import { ClientClosedError, OverloadedError } from '../../src/errors.js'
import { Metrics } from '../../src/metrics.js'
import { heldUpstream, settlesThisTurn } from './held.js'
import {
  getRoot as get,
  inMs,
  metricValue,
  rejectionOf,
  startServer,
  testConfig,
  upstreamPolicy,
} from './helpers.js'

void t.test('UPSTREAM_RATE_PER_SEC 5: ten calls are spaced over about two seconds', async (t) => {
  const arrivals: number[] = []
  const upstream = await startServer(t, (_req, res) => {
    arrivals.push(Date.now())
    res.end('ok')
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url, { UPSTREAM_RATE_PER_SEC: '5' }))

  const started = Date.now()
  const answers = await Promise.all(Array.from({ length: 10 }, () => get(policy)))
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
    const policy = upstreamPolicy(t, testConfig(upstream.url, { UPSTREAM_RATE_PER_SEC: '5' }), { metrics })

    const ahead = Array.from({ length: 5 }, () => get(policy))
    // Five calls ahead at 200 ms apiece: it could not start before about 1 s.
    const refused = rejectionOf(get(policy, { deadlineMs: 600 }))
    t.ok(await settlesThisTurn(refused), 'refused at once, not at its deadline')
    const err = await refused
    t.ok(err instanceof OverloadedError, 'an OverloadedError')
    t.match(err, { statusCode: 503, code: 'UPSTREAM_RATE_LIMITED' }, '503 UPSTREAM_RATE_LIMITED')
    t.ok(err instanceof OverloadedError && (err.retryAfterSeconds ?? 0) >= 1, 'with a Retry-After')
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
  const upstream = await heldUpstream(t)
  const policy = upstreamPolicy(t, testConfig(upstream.url, { UPSTREAM_RATE_PER_SEC: '5' }))

  const ahead = Array.from({ length: 5 }, () => get(policy))
  const leaving = new AbortController()
  const left = rejectionOf(
    policy.request({
      method: 'GET',
      path: '/left',
      headers: {},
      deadlineAt: inMs(10_000),
      signal: leaving.signal,
    }),
  )
  const behind = get(policy)
  await upstream.received(1)
  leaving.abort()
  t.ok(await settlesThisTurn(left), 'answered at once, long before its slot')
  t.ok((await left) instanceof ClientClosedError, 'ClientClosedError')
  upstream.release()
  await Promise.all([...ahead, behind])
  // The queue is first in, first out: the call that left would have gone before the one behind it.
  t.equal(upstream.requests.length, 6, 'Incode saw the five calls ahead and the one behind')
  t.notOk(
    upstream.requests.some((req) => req.url === '/left'),
    'Incode never saw the call that left',
  )
})

void t.test('UPSTREAM_RATE_PER_SEC 0 (the default) spaces nothing', async (t) => {
  const upstream = await heldUpstream(t)
  const policy = upstreamPolicy(t, testConfig(upstream.url, { UPSTREAM_MAX_CONCURRENT: '10' }))
  const calls = Array.from({ length: 10 }, () => get(policy))
  // Each waits for its answer: had they been spaced, the later ones would never have been sent.
  await upstream.received(10)
  t.equal(upstream.maxHeld(), 10, 'all ten reached Incode while none was answered')
  upstream.release()
  const answers = await Promise.all(calls)
  t.ok(
    answers.every((a) => a.status === 200),
    'all ten succeed',
  )
})
