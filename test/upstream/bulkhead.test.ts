import t from 'tap'
import { ClientClosedError, OverloadedError } from '../../src/errors.js'
import { Metrics } from '../../src/metrics.js'
import { heldUpstream, settlesThisTurn, until } from './held.js'
import { getRoot as get, metricValue, rejectionOf, testConfig, upstreamPolicy } from './helpers.js'

void t.test('2 in flight and 1 waiting at most: a 4th call is refused at once', async (t) => {
  const upstream = await heldUpstream(t)
  const metrics = new Metrics()
  const policy = upstreamPolicy(
    t,
    testConfig(upstream.url, { UPSTREAM_MAX_CONCURRENT: '2', UPSTREAM_MAX_QUEUE: '1' }),
    { metrics },
  )

  const first3 = [get(policy), get(policy), get(policy)]
  await upstream.received(2)
  const fourth = rejectionOf(get(policy))
  t.ok(await settlesThisTurn(fourth), 'refused at once')
  const err = await fourth
  t.equal(upstream.requests.length, 2, 'while two calls are in flight and one waits')
  upstream.release()
  t.ok(err instanceof OverloadedError, 'an OverloadedError')
  t.match(
    err,
    { statusCode: 503, code: 'UPSTREAM_BULKHEAD_FULL', retryAfterSeconds: 1 },
    '503, Retry-After 1',
  )

  const answers = await Promise.all(first3)
  t.same(
    answers.map((a) => a.status),
    [200, 200, 200],
    'the first three succeed',
  )
  t.equal(upstream.requests.length, 3, 'Incode saw three calls')
  t.equal(upstream.maxHeld(), 2, 'never more than two at once')
  t.equal(await metricValue(metrics.shed, { reason: 'bulkhead' }), 1, 'one call shed by the bulkhead')
  t.equal(
    await metricValue(metrics.upstreamCalls, { endpoint: 'probe', status: 'UPSTREAM_BULKHEAD_FULL' }),
    1,
    'and counted with its code',
  )
})

void t.test('a waiting caller that leaves is answered at once, and the queue moves on', async (t) => {
  const upstream = await heldUpstream(t)
  const policy = upstreamPolicy(
    t,
    testConfig(upstream.url, { UPSTREAM_MAX_CONCURRENT: '1', UPSTREAM_MAX_QUEUE: '2' }),
  )

  const first = get(policy)
  const leaving = new AbortController()
  const left = rejectionOf(get(policy, { signal: leaving.signal }))
  const third = get(policy)
  await upstream.received(1)
  leaving.abort()
  t.ok(await settlesThisTurn(left), 'answered at once, while the first call still holds the slot')
  const err = await left
  t.ok(err instanceof ClientClosedError, 'the caller that left gets ClientClosedError')
  upstream.release()
  t.equal((await first).status, 200, 'the first call succeeds')
  t.equal((await third).status, 200, 'the call queued behind the one that left succeeds')
  t.equal(upstream.requests.length, 2, 'the call that left never reached Incode')
})

void t.test(
  'a waiting call whose deadline passes is shed with UPSTREAM_BULKHEAD_FULL, before a slot comes free',
  async (t) => {
    const upstream = await heldUpstream(t)
    const metrics = new Metrics()
    const policy = upstreamPolicy(
      t,
      testConfig(upstream.url, { UPSTREAM_MAX_CONCURRENT: '1', UPSTREAM_MAX_QUEUE: '1' }),
      { metrics },
    )

    const first = get(policy)
    // The first call holds the slot from here on; on a busy machine its request may reach the
    // upstream only later, so the count below is read once it has.
    await until(() => upstream.requests.length === 1)
    const started = Date.now()
    const err = await rejectionOf(get(policy, { deadlineMs: 100 }))
    const took = Date.now() - started
    t.match(err, { statusCode: 503, code: 'UPSTREAM_BULKHEAD_FULL' }, 'UPSTREAM_BULKHEAD_FULL')
    t.ok(took >= 90, `not before its deadline (${took} ms)`)
    t.equal(upstream.requests.length, 1, 'while the first call still held the only slot')
    upstream.release()
    t.equal((await first).status, 200, 'the first call succeeds')
    t.equal(upstream.requests.length, 1, 'the late call never reached Incode')
    t.equal(await metricValue(metrics.shed, { reason: 'bulkhead' }), 1, 'counted as shed by the bulkhead')
  },
)
