import t from 'tap'
import { IMAGE_TYPES, INCODE_RESPONSE_CAP_BYTES } from '../../src/domain/imageTypes.js'
import { planSplit } from '../../src/domain/planChunks.js'
import { SizeEstimator } from '../../src/domain/sizeEstimator.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { partnerHeaders, simulatorAdminHeaders } from '../helpers/build.js'
import {
  buildForRoutes,
  assertMergedImages,
  latestOf,
  post,
  sessionOf,
  warmSeededSessions,
} from './fixtures/helpers.js'

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS

t.test('the full session (> 10 MB as base64) comes back whole, split over parallel calls', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const session = sessionOf(simulator, full)

  const base64Total = IMAGE_TYPES.reduce(
    (sum, type) => sum + Math.ceil((latestOf(session.images, type)?.bytes.length ?? 0) / 3) * 4,
    0,
  )
  t.ok(base64Total > INCODE_RESPONSE_CAP_BYTES, `the session's latest images are ${base64Total} B as base64`)
  const direct = await fetch(`${simulator.url}${simulator.paths.images}?id=${full}`, {
    method: 'POST',
    headers: simulatorAdminHeaders(simulator),
    body: JSON.stringify({ images: IMAGE_TYPES }),
  })
  await direct.arrayBuffer()
  t.equal(direct.status, 502, 'one direct call for every type is refused by Incode (502)')
  simulator.resetCalls()

  const res = await post(app, `/v1/sessions/${full}/images`, { images: IMAGE_TYPES }, partnerHeaders())
  t.equal(res.statusCode, 200, 'the gateway answers 200')
  t.equal(res.headers['cache-control'], 'no-store, private', 'never stored by a shared cache')
  t.match(res.headers['content-type'], /^application\/json/, 'JSON')
  const body = res.json()
  t.same(body.missing, [], 'nothing missing')
  t.same(body.errors, {}, 'no errors')
  t.equal(Object.keys(body.images).length, IMAGE_TYPES.length, 'every type is served')
  assertMergedImages(t, body, IMAGE_TYPES, session.images, 'full session')

  const calls = simulator.callsTo('images')
  const estimator = new SizeEstimator()
  const planned = planSplit(IMAGE_TYPES, (type) => estimator.estimate(type), {
    budgetBytes: app.config.CHUNK_BUDGET_BYTES,
    slots: app.config.FANOUT_CONCURRENCY,
    plan: app.config.SPLIT_PLAN,
  })
  t.ok(planned.length >= 2, `the plan has ${planned.length} chunks`)
  t.equal(calls.length, planned.length, 'one upstream call per planned chunk')
  t.ok(
    calls.every((call) => call.status === 200),
    'no call answered 502 with the default estimates',
  )
  t.ok(
    calls.every((call) => call.interviewId === full && call.tokenKind === 'admin'),
    'every call is about the interview, with the admin token',
  )
  const asked = calls.flatMap((call) => call.images ?? [])
  t.equal(new Set(asked).size, asked.length, 'the calls ask for disjoint lists')
  t.same([...asked].sort(), [...IMAGE_TYPES].sort(), 'together they ask for exactly the requested types')
  t.ok(
    calls.every((call) => call.responseBytes <= INCODE_RESPONSE_CAP_BYTES),
    'every upstream answer stays under the cap',
  )
})

t.test('duplicates are folded: one upstream request per type', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const res = await post(
    app,
    `/v1/sessions/${small}/images`,
    { images: ['selfie', 'signature', 'selfie', 'signature', 'selfie'] },
    partnerHeaders(),
  )
  t.equal(res.statusCode, 200, '200')
  const body = res.json()
  t.same(Object.keys(body.images).sort(), ['selfie', 'signature'], 'each type once in the answer')
  assertMergedImages(t, body, ['selfie', 'signature'], sessionOf(simulator, small).images, 'folded')
  const calls = simulator.callsTo('images')
  t.equal(calls.length, 1, 'one upstream call')
  t.same([...(calls[0]?.images ?? [])].sort(), ['selfie', 'signature'], 'asking for each type once')
})

t.test('a small session: types it lacks are listed in missing', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const session = sessionOf(simulator, small)
  const res = await post(app, `/v1/sessions/${small}/images`, { images: IMAGE_TYPES }, partnerHeaders())
  t.equal(res.statusCode, 200, '200')
  t.equal(res.headers['cache-control'], 'no-store, private', 'no-store')
  const body = res.json()
  const present = IMAGE_TYPES.filter((type) => latestOf(session.images, type))
  const absent = IMAGE_TYPES.filter((type) => !latestOf(session.images, type))
  t.ok(absent.length > 0, 'the small session lacks some types')
  t.same(Object.keys(body.images).sort(), [...present].sort(), 'the present types are served')
  t.same(body.missing, absent, 'the others are missing, in the image-type order')
  t.same(body.errors, {}, 'no errors')
  assertMergedImages(t, body, IMAGE_TYPES, session.images, 'small session')
})

t.test('an empty session: every type missing, still a 200 with no-store', async (t) => {
  const { app } = await buildForRoutes(t)
  const res = await post(
    app,
    `/v1/sessions/${SEEDED_INTERVIEW_IDS.empty}/images`,
    { images: ['selfie', 'document'] },
    partnerHeaders(),
  )
  t.equal(res.statusCode, 200, '200')
  t.equal(res.headers['cache-control'], 'no-store, private', 'no-store')
  t.same(res.json(), { images: {}, missing: ['selfie', 'document'], errors: {} }, 'all missing')
})

t.test('a small answer-memory budget: parts take turns, the answer still arrives whole', async (t) => {
  // 2 MB is less than any two large parts together (and less than the largest image alone).
  const { app, simulator } = await buildForRoutes(t, { env: { ANSWER_MEMORY_BYTES: '2000000' } })
  const session = sessionOf(simulator, full)
  const before = app.answerMemory.available()
  const [v1, v1Again] = await Promise.all([
    post(app, `/v1/sessions/${full}/images`, { images: IMAGE_TYPES }, partnerHeaders()),
    post(app, `/v1/sessions/${full}/images`, { images: IMAGE_TYPES }, partnerHeaders()),
  ])
  for (const res of [v1, v1Again]) {
    t.equal(res.statusCode, 200, '/v1: 200')
    const body = res.json()
    t.same(body.errors, {}, 'no errors')
    assertMergedImages(t, body, IMAGE_TYPES, session.images, 'with a 2 MB budget')
  }
  const token = simulator.sessionToken(full)
  const dropIn = await app.inject({
    method: 'POST',
    url: `/omni/get/images?id=${full}`,
    headers: {
      'content-type': 'application/json',
      'x-incode-hardware-id': token,
      'api-version': '1.0',
      'x-api-key': 'any',
    },
    payload: { images: IMAGE_TYPES },
  })
  t.equal(dropIn.statusCode, 200, 'drop-in: 200 (it reserves the whole answer at once)')
  t.same(Object.keys(dropIn.json()).sort(), [...IMAGE_TYPES].sort(), 'drop-in: every type')
  t.equal(app.answerMemory.available(), before, 'every reservation was given back')
})
