import t from 'tap'
import { Metrics } from '../../src/metrics.js'
import { SEEDED_SESSIONS } from '../../src/simulator/index.js'
import { AdminTokenProvider } from '../../src/upstream/adminToken.js'
import { IncodeClient } from '../../src/upstream/incode.js'
import { closedPort, inMs, metricValue, rejectionOf, testConfig, upstreamPolicy } from './helpers.js'
import { simConfig, startSim } from './withSimulator.js'

const small = SEEDED_SESSIONS[1]?.interviewId ?? ''
const ctx = () => ({ deadlineAt: inMs(10_000) })

void t.test('calls are counted per endpoint and status, timed, and log-ins counted', async (t) => {
  const sim = await startSim(t)
  const config = simConfig(sim)
  const metrics = new Metrics()
  const policy = upstreamPolicy(t, config, { metrics })
  const tokens = new AdminTokenProvider({ config, policy, metrics })
  const incode = new IncodeClient({ config, policy, adminTokens: tokens })

  await incode.call('images', { kind: 'admin', interviewId: small }, { images: ['signature'] }, ctx())
  await incode.call('imageLinks', { kind: 'admin', interviewId: small }, { images: ['selfie'] }, ctx())
  const refused = await incode.forward('images', { kind: 'token', token: 'bad' }, {}, ctx())
  t.equal(refused.status, 401, 'a refused forward')

  const calls = metrics.upstreamCalls
  t.equal(await metricValue(calls, { endpoint: 'adminLogin', status: '200' }), 1, 'one log-in, 200')
  t.equal(await metricValue(calls, { endpoint: 'images', status: '200' }), 1, 'one images call, 200')
  t.equal(await metricValue(calls, { endpoint: 'imageLinks', status: '200' }), 1, 'one imageLinks call, 200')
  t.equal(await metricValue(calls, { endpoint: 'images', status: '401' }), 1, 'one images call, 401')
  t.equal(await metricValue(metrics.adminTokenRefreshes), 1, 'one admin log-in counted')
  t.equal(
    await metricValue(metrics.upstreamLatency, { endpoint: 'images' }, 'count'),
    2,
    'two images calls timed',
  )
  t.equal(
    await metricValue(metrics.upstreamLatency, { endpoint: 'adminLogin' }, 'count'),
    1,
    'the log-in timed',
  )
  const text = await metrics.registry.getSingleMetricAsString('gateway_upstream_calls_total')
  t.match(text, /gateway_upstream_calls_total\{endpoint="images",status="200"\} 1/, 'exposed for Prometheus')
})

void t.test('errors are counted by their code; an unnamed call is the probe', async (t) => {
  const metrics = new Metrics()
  const policy = upstreamPolicy(t, testConfig(`http://127.0.0.1:${await closedPort()}`, { RETRY_MAX: '0' }), {
    metrics,
  })
  await rejectionOf(policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(5000) }))
  t.equal(
    await metricValue(metrics.upstreamCalls, { endpoint: 'probe', status: 'UPSTREAM_UNAVAILABLE' }),
    1,
    'counted as probe / UPSTREAM_UNAVAILABLE',
  )
  t.equal(await metricValue(metrics.upstreamLatency, { endpoint: 'probe' }, 'count'), 1, 'and timed')
})

void t.test('calls refused before the network are counted but not timed', async (t) => {
  const metrics = new Metrics()
  const policy = upstreamPolicy(t, testConfig('http://127.0.0.1:9'), { metrics })
  await rejectionOf(
    policy.request({
      endpoint: 'images',
      method: 'GET',
      path: '/',
      headers: {},
      deadlineAt: Date.now() - 1,
    }),
  )
  t.equal(
    await metricValue(metrics.upstreamCalls, { endpoint: 'images', status: 'UPSTREAM_TIMEOUT' }),
    1,
    'a call past its deadline is counted',
  )
  t.equal(await metricValue(metrics.upstreamLatency, {}, 'count'), 0, 'but not timed')
})
