import t from 'tap'

import { SEEDED_SESSIONS } from '../../src/simulator/index.js'
import { assertIncodeError, call, startSim } from './fixtures/helpers.js'

const full = SEEDED_SESSIONS[0]?.interviewId ?? ''

void t.test('start with an existing interview returns a token for it', async (t) => {
  const sim = await startSim(t)
  const reply = await call(sim, sim.paths.start, { body: { interviewId: full } })
  t.equal(reply.status, 200, 'start answers 200')
  t.equal(reply.json.interviewId, full, 'the same interview ID comes back')
  t.match(reply.json.token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the token is JWT-shaped')
  const images = await call(sim, sim.paths.images, { token: reply.json.token, body: { images: ['selfie'] } })
  t.equal(images.status, 200, 'the token opens that interview')
  t.ok(images.json.selfie, 'and fetches its selfie')
})

void t.test('start without an interview creates a new empty session', async (t) => {
  const sim = await startSim(t)
  for (const body of [{}, { countryCode: 'ALL' }]) {
    const reply = await call(sim, sim.paths.start, { body })
    t.equal(reply.status, 200, `start with ${JSON.stringify(body)} answers 200`)
    t.match(reply.json.interviewId, /^[0-9a-f]{24}$/, 'the new interview ID is 24 hex chars')
    t.notOk(
      SEEDED_SESSIONS.some((s) => s.interviewId === reply.json.interviewId),
      'the new interview is not a seeded one',
    )
    t.same(sim.session(reply.json.interviewId)?.images, {}, 'the new session has no images')
    const images = await call(sim, sim.paths.images, {
      token: reply.json.token,
      body: { images: ['selfie'] },
    })
    t.equal(images.status, 200, 'its token works on the image endpoint')
    t.same(images.json, { selfie: null }, 'and every requested type is missing')
    const again = await call(sim, sim.paths.start, { body: { interviewId: reply.json.interviewId } })
    t.equal(again.status, 200, 'the created session can be re-opened by ID')
  }
})

void t.test('start refuses unknown interviews, bad bodies and missing API keys', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.start
  assertIncodeError(
    t,
    await call(sim, path, { body: { interviewId: 'ffffffffffffffffffffffff' } }),
    404,
    path,
    'unknown interview',
  )
  assertIncodeError(
    t,
    await call(sim, path, { body: { interviewId: 42 } }),
    400,
    path,
    'non-string interviewId',
  )
  assertIncodeError(t, await call(sim, path, { rawBody: '{"interviewId":' }), 400, path, 'invalid JSON')
  assertIncodeError(t, await call(sim, path, { apiKey: null, body: {} }), 403, path, 'no API key')
  assertIncodeError(t, await call(sim, path, { apiKey: 'wrong', body: {} }), 403, path, 'wrong API key')
  assertIncodeError(t, await call(sim, `/0${path}`, { body: {} }), 404, `/0${path}`, 'start is not under /0')
})
