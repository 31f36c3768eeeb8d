import t from 'tap'

import { SEEDED_INTERVIEW_IDS, SEEDED_SESSIONS } from '../../src/simulator/index.js'
import { call, fetchImages, startSim } from './fixtures/helpers.js'

const { small } = SEEDED_INTERVIEW_IDS

void t.test('GET and DELETE /__sim/calls', async (t) => {
  const sim = await startSim(t)
  await fetchImages(sim, small, ['signature'])
  await fetchImages(sim, small, ['selfie'])
  const calls = await call(sim, '/__sim/calls', { method: 'GET', apiKey: null })
  t.equal(calls.status, 200, 'GET /__sim/calls answers 200')
  t.equal(calls.json.length, 2, 'with the two calls made before it')
  t.same(calls.json[1].images, ['selfie'], 'in order, with their images')
  const filtered = await call(sim, '/__sim/calls?endpoint=control', { method: 'GET', apiKey: null })
  t.equal(filtered.json.length, 1, 'the control call itself is logged (endpoint filter)')
  t.equal(sim.callsTo('control').length, 2, 'control calls are recorded as control')
  const cleared = await call(sim, '/__sim/calls', { method: 'DELETE', apiKey: null })
  t.equal(cleared.status, 200, 'DELETE answers 200')
  t.equal(cleared.json.cleared, 4, 'it says how many calls it cleared')
  t.equal(sim.calls.length, 0, 'the log is empty after DELETE')
})

void t.test('PUT /__sim/faults and /__sim/latency', async (t) => {
  const sim = await startSim(t)
  const put = await call(sim, '/__sim/faults', {
    method: 'PUT',
    apiKey: null,
    body: { errorRate: 1, errorStatus: 503 },
  })
  t.equal(put.status, 200, 'PUT faults answers 200')
  t.same(put.json, { errorRate: 1, errorStatus: 503 }, 'and echoes the faults')
  t.equal((await fetchImages(sim, small, ['signature'])).status, 503, 'the faults take effect')
  const get = await call(sim, '/__sim/faults', { method: 'GET', apiKey: null })
  t.same(get.json, { errorRate: 1, errorStatus: 503 }, 'GET faults shows them')
  const bad = await call(sim, '/__sim/faults', { method: 'PUT', apiKey: null, body: { errorRate: 2 } })
  t.equal(bad.status, 400, 'a rate above 1 is refused')
  const typo = await call(sim, '/__sim/faults', { method: 'PUT', apiKey: null, body: { errorRat: 1 } })
  t.equal(typo.status, 400, 'an unknown setting is refused')
  t.match(typo.json.message, /errorRat/, 'and named')
  const badEndpoint = await call(sim, '/__sim/faults', {
    method: 'PUT',
    apiKey: null,
    body: { endpoints: ['files'] },
  })
  t.equal(badEndpoint.status, 400, 'an unknown endpoint is refused')
  const clear = await call(sim, '/__sim/faults', { method: 'PUT', apiKey: null, body: {} })
  t.equal(clear.status, 200, 'PUT {} answers 200')
  t.equal((await fetchImages(sim, small, ['signature'])).status, 200, 'and clears the faults')

  const latency = await call(sim, '/__sim/latency', {
    method: 'PUT',
    apiKey: null,
    body: { fixedMs: 200, perMiBMs: 0 },
  })
  t.same(latency.json, { fixedMs: 200, perMiBMs: 0 }, 'PUT latency echoes the model')
  const started = performance.now()
  await fetchImages(sim, small, ['signature'])
  t.ok(performance.now() - started >= 160, 'the latency takes effect')
  const badLatency = await call(sim, '/__sim/latency', { method: 'PUT', apiKey: null, body: { fixedMs: -1 } })
  t.equal(badLatency.status, 400, 'a negative latency is refused')
  await call(sim, '/__sim/latency', { method: 'PUT', apiKey: null, body: { fixedMs: 0, perMiBMs: 0 } })
})

void t.test(
  'GET /__sim/sessions lists seeded sessions with working tokens; unknown control paths 404',
  async (t) => {
    const sim = await startSim(t)
    const list = await call(sim, '/__sim/sessions', { method: 'GET', apiKey: null })
    t.same(
      list.json.map((s: { interviewId: string }) => s.interviewId),
      SEEDED_SESSIONS.map((s) => s.interviewId),
      'every seeded session, in order',
    )
    const token = list.json[1].sessionToken
    const reply = await call(sim, sim.paths.images, { token, body: { images: ['signature'] } })
    t.equal(reply.status, 200, 'the listed token works')
    t.equal(
      (await call(sim, '/__sim/nothing', { method: 'GET', apiKey: null })).status,
      404,
      'unknown control path: 404',
    )
    t.equal(
      (await call(sim, '/__sim/calls', { method: 'POST', apiKey: null })).status,
      405,
      'wrong method: 405',
    )
    t.equal(
      (await call(sim, '/__sim/faults', { method: 'PUT', apiKey: null, rawBody: '{' })).status,
      400,
      'bad JSON: 400',
    )
  },
)
