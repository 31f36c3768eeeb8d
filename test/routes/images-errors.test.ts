import t from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { partnerHeaders } from '../helpers/build.js'
import {
  buildForRoutes,
  assertMergedImages,
  assertProblem,
  post,
  sessionOf,
  warmSeededSessions,
} from './fixtures/helpers.js'

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS
const UNKNOWN_INTERVIEW = 'ffffffffffffffffffffffff'

t.test('an unknown interview → 404 problem+json', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const res = await post(
    app,
    `/v1/sessions/${UNKNOWN_INTERVIEW}/images`,
    { images: ['selfie', 'fullFrameFrontID'] },
    partnerHeaders(),
  )
  assertProblem(t, res, 404, /^UPSTREAM_404$|NOT_FOUND/, 'unknown interview')
  t.ok(simulator.callsTo('images').length >= 1, 'Incode was asked')
})

t.test('session-token route: a valid token → that session’s images', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const token = simulator.sessionToken(small)
  const requested = ['selfie', 'signature', 'document'] as const
  const res = await post(
    app,
    '/v1/session/images',
    { images: requested },
    { 'content-type': 'application/json', 'x-incode-session-token': token },
  )
  t.equal(res.statusCode, 200, '200')
  t.equal(res.headers['cache-control'], 'no-store, private', 'no-store')
  const body = res.json()
  t.same(Object.keys(body.images).sort(), ['selfie', 'signature'], 'the present types are served')
  t.same(body.missing, ['document'], 'document is missing from the small session')
  assertMergedImages(t, body, requested, sessionOf(simulator, small).images, 'session token')
  const calls = simulator.callsTo('images')
  t.equal(calls[0]?.tokenKind, 'session', 'Incode was called with the session token')
  t.equal(calls[0]?.interviewId, small, 'for the token’s own interview')
  t.equal(simulator.callsTo('adminLogin').length, 0, 'no admin log-in for a session-token route')
})

t.test('session-token route: missing or bad token → 401', async (t) => {
  const { app } = await buildForRoutes(t)
  const missing = await post(app, '/v1/session/images', { images: ['selfie'] })
  assertProblem(t, missing, 401, 'TOKEN_MISSING', 'no token header')
  const blank = await post(
    app,
    '/v1/session/images',
    { images: ['selfie'] },
    { 'content-type': 'application/json', 'x-incode-session-token': '   ' },
  )
  assertProblem(t, blank, 401, 'TOKEN_MISSING', 'a blank token header')
  const bad = await post(
    app,
    '/v1/session/images',
    { images: ['selfie'] },
    { 'content-type': 'application/json', 'x-incode-session-token': 'not-a-token' },
  )
  assertProblem(t, bad, 401, /.+/, 'a bad token')
})

t.test('request validation on the /v1 images route', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const url = `/v1/sessions/${small}/images`

  const unknown = await post(app, url, { images: ['selfie', 'passportPhoto'] }, partnerHeaders())
  const unknownBody = assertProblem(t, unknown, 400, 'VALIDATION_FAILED', 'an unknown type')
  for (const type of IMAGE_TYPES) {
    t.match(unknownBody.detail, type, `the detail names the allowed value ${type}`)
  }
  t.ok(Array.isArray(unknownBody.errors), 'field errors are listed')

  const empty = await post(app, url, { images: [] }, partnerHeaders())
  assertProblem(t, empty, 400, 'VALIDATION_FAILED', 'an empty list')

  const absent = await post(app, url, {}, partnerHeaders())
  assertProblem(t, absent, 400, 'VALIDATION_FAILED', 'no images field')

  const extra = await post(app, url, { images: ['selfie'], headers: { x: 1 } }, partnerHeaders())
  const extraBody = assertProblem(t, extra, 400, 'VALIDATION_FAILED', 'an unknown property')
  t.match(extraBody.detail, 'headers', 'the detail names the unknown property')

  const max = app.config.MAX_IMAGES_PER_REQUEST
  const tooMany = Array.from({ length: max + 1 }, (_, i) => IMAGE_TYPES[i % IMAGE_TYPES.length])
  const long = await post(app, url, { images: tooMany }, partnerHeaders())
  assertProblem(t, long, 400, 'VALIDATION_FAILED', `a list of ${max + 1} (over MAX_IMAGES_PER_REQUEST)`)

  const notJson = await app.inject({ method: 'POST', url, headers: partnerHeaders(), payload: '{"images":' })
  assertProblem(t, notJson, 400, /.+/, 'a body that is not JSON')

  const notObject = await post(app, url, ['selfie'], partnerHeaders())
  assertProblem(t, notObject, 400, 'VALIDATION_FAILED', 'a JSON array as the body')

  for (const type of ['application/xml', 'application/x-www-form-urlencoded']) {
    const wrong = await app.inject({
      method: 'POST',
      url,
      headers: { ...partnerHeaders(), 'content-type': type },
      payload: '{"images":["selfie"]}',
    })
    assertProblem(t, wrong, 415, /.+/, `content type ${type}`)
  }

  const badId = await post(app, '/v1/sessions/not%20an%20id/images', { images: ['selfie'] }, partnerHeaders())
  assertProblem(t, badId, 400, 'VALIDATION_FAILED', 'an interview ID with forbidden characters')

  t.equal(simulator.callsTo('images').length, 0, 'no invalid request reached Incode')

  const atMax = await post(app, url, { images: tooMany.slice(0, max) }, partnerHeaders())
  t.equal(atMax.statusCode, 200, `a list of exactly ${max} (duplicates included) is accepted`)
})

t.test('an upstream failure on every part → 502 problem', async (t) => {
  const { app, simulator } = await buildForRoutes(t, {
    simulator: { faults: { errorRate: 1, errorStatus: 500, endpoints: ['images'] } },
  })
  const res = await post(app, `/v1/sessions/${full}/images`, { images: IMAGE_TYPES }, partnerHeaders())
  assertProblem(t, res, 502, /.+/, 'Incode answering 500 on every part')
  const calls = simulator.callsTo('images')
  t.ok(calls.length >= 2, 'every planned part was tried')
  t.ok(
    calls.every((call) => call.status === 500),
    'and each was answered 500',
  )
})

t.test('an upstream failure on some parts only → 200 with exactly those types in errors', async (t) => {
  // The simulator's fault draws are seeded: at this rate one of the two planned parts fails.
  const { app, simulator } = await buildForRoutes(t, {
    simulator: { faults: { errorRate: 0.7, errorStatus: 500, endpoints: ['images'] } },
  })
  const res = await post(app, `/v1/sessions/${full}/images`, { images: IMAGE_TYPES }, partnerHeaders())
  // A type counts as served when some call asking for it was answered (retries included).
  const calls = simulator.callsTo('images')
  const served = [
    ...new Set(calls.filter((call) => call.status === 200).flatMap((call) => call.images ?? [])),
  ]
  const failed = IMAGE_TYPES.filter((type) => !served.includes(type))
  t.ok(failed.length > 0 && served.length > 0, 'some parts failed upstream and some were served')
  t.equal(res.statusCode, 200, 'partial success is a 200')
  const body = res.json()
  t.same(Object.keys(body.errors).sort(), [...failed].sort(), 'the failed parts’ types are in errors')
  t.same(Object.keys(body.images).sort(), [...served].sort(), 'the served parts’ types are in images')
  for (const type of failed) {
    t.match(body.errors[type], { status: 502, code: String }, `${type} carries a 502 and a code`)
  }
  assertMergedImages(t, body, IMAGE_TYPES, sessionOf(simulator, full).images, 'partial')
})

t.test('a truncated or malformed upstream answer → 502 UPSTREAM_BAD_RESPONSE', async (t) => {
  const { app, simulator } = await buildForRoutes(t, {
    simulator: { faults: { truncateRate: 1, endpoints: ['images'] } },
  })
  const truncated = await post(
    app,
    `/v1/sessions/${small}/images`,
    { images: ['selfie', 'signature'] },
    partnerHeaders(),
  )
  assertProblem(t, truncated, 502, 'UPSTREAM_BAD_RESPONSE', 'a truncated answer')

  simulator.setFaults({ malformedRate: 1, endpoints: ['images'] })
  const malformed = await post(
    app,
    `/v1/sessions/${small}/images`,
    { images: ['selfie', 'signature'] },
    partnerHeaders(),
  )
  assertProblem(t, malformed, 502, 'UPSTREAM_BAD_RESPONSE', 'an answer that is not JSON')

  simulator.setFaults(undefined)
  const healthy = await post(app, `/v1/sessions/${small}/images`, { images: ['selfie'] }, partnerHeaders())
  t.equal(healthy.statusCode, 200, 'the next healthy answer is served')
})

t.test('no answer ever leaks the API key, the admin token or the admin password', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const secrets = [simulator.apiKey, simulator.adminPassword]
  const answers: string[] = []
  const collect = async (promise: ReturnType<typeof post>) => {
    const res = await promise
    answers.push(JSON.stringify(res.headers), res.body)
  }
  await collect(post(app, `/v1/sessions/${small}/images`, { images: ['signature'] }, partnerHeaders()))
  await collect(
    post(app, `/v1/sessions/${UNKNOWN_INTERVIEW}/images`, { images: ['signature'] }, partnerHeaders()),
  )
  await collect(post(app, `/v1/sessions/${small}/images`, { images: ['nope'] }, partnerHeaders()))
  await collect(
    post(
      app,
      '/v1/session/images',
      { images: ['selfie'] },
      { 'content-type': 'application/json', 'x-incode-session-token': 'bad' },
    ),
  )
  simulator.setFaults({ errorRate: 1, errorStatus: 500 })
  await collect(post(app, `/v1/sessions/${small}/images`, { images: ['signature'] }, partnerHeaders()))
  await collect(post(app, `/v1/sessions/${small}/image-links`, { images: ['selfie'] }, partnerHeaders()))
  simulator.setFaults({ errorRate: 1, errorStatus: 403 })
  await collect(post(app, `/v1/sessions/${small}/images`, { images: ['signature'] }, partnerHeaders()))
  simulator.setFaults({ malformedRate: 1 })
  await collect(post(app, `/v1/sessions/${small}/images`, { images: ['signature'] }, partnerHeaders()))
  simulator.setFaults(undefined)

  const adminToken = app.adminTokens ? await app.adminTokens.get({ deadlineAt: Date.now() + 5_000 }) : ''
  t.ok(adminToken.length > 0, 'the app holds an admin token')
  t.equal(answers.length, 16, 'eight answers collected')
  for (const secret of [...secrets, adminToken]) {
    t.ok(
      answers.every((text) => !text.includes(secret)),
      `no answer contains the secret ${secret.slice(0, 4)}…`,
    )
  }
})
