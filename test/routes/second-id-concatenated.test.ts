import jpeg from 'jpeg-js'
import t from 'tap'
import { SECOND_ID_IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS, type Simulator } from '../../src/simulator/index.js'
import { partnerHeaders, simulatorAdminHeaders } from '../helpers/build.js'
import {
  buildForRoutes,
  assertMergedImages,
  assertProblem,
  latestOf,
  post,
  sessionOf,
  warmSeededSessions,
} from './fixtures/helpers.js'

warmSeededSessions()

const { small, secondId, empty } = SEEDED_INTERVIEW_IDS

/** What the simulator itself answers on the concatenated endpoint, with an admin token. */
async function directConcatenated(simulator: Simulator, interviewId: string, body?: unknown) {
  const res = await fetch(`${simulator.url}${simulator.paths.concatenatedImages}?id=${interviewId}`, {
    method: 'POST',
    headers: simulatorAdminHeaders(simulator),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, json: (await res.json()) as { image?: string } }
}

t.test('second-ID images: the second document’s bytes, whole', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const session = sessionOf(simulator, secondId)
  const requested: ImageType[] = [...SECOND_ID_IMAGE_TYPES, 'selfie']
  const res = await post(
    app,
    `/v1/sessions/${secondId}/second-id/images`,
    { images: requested },
    partnerHeaders(),
  )
  t.equal(res.statusCode, 200, '200')
  t.equal(res.headers['cache-control'], 'no-store, private', 'no-store')
  const body = res.json()
  t.same(Object.keys(body.images).sort(), [...SECOND_ID_IMAGE_TYPES].sort(), 'every second-ID type served')
  t.same(body.missing, ['selfie'], 'a type the second document lacks is missing')
  t.same(body.errors, {}, 'no errors')
  assertMergedImages(t, body, requested, session.secondId, 'second ID')
  for (const type of ['fullFrameFrontID', 'fullFrameBackID'] as const) {
    const first = latestOf(session.images, type)
    t.notOk(
      first && Buffer.from(body.images[type], 'base64').equals(first.bytes),
      `${type} is the second document’s, not the first’s`,
    )
  }
  const calls = simulator.callsTo('secondIdImages')
  t.ok(calls.length >= 1, 'the second-ID endpoint was called')
  t.equal(simulator.callsTo('images').length, 0, 'not the first document’s endpoint')
})

t.test('second-ID images of a session without a second ID: all missing', async (t) => {
  const { app } = await buildForRoutes(t)
  const res = await post(
    app,
    `/v1/sessions/${small}/second-id/images`,
    { images: [...SECOND_ID_IMAGE_TYPES] },
    partnerHeaders(),
  )
  t.equal(res.statusCode, 200, '200')
  t.same(
    res.json(),
    { images: {}, missing: [...SECOND_ID_IMAGE_TYPES].sort(byOrder), errors: {} },
    'every type missing',
  )
})

const order: readonly string[] = [
  'selfie',
  'croppedFace',
  'croppedIDFace',
  'croppedSecondIDFace',
  'document',
  'signature',
  'fullFrameFrontID',
  'fullFrameBackID',
  'croppedFrontID',
  'croppedBackID',
]
function byOrder(a: string, b: string): number {
  return order.indexOf(a) - order.indexOf(b)
}

t.test('concatenated images: one decodable JPEG, as Incode made it', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const direct = await directConcatenated(simulator, small, {})
  t.equal(direct.status, 200, 'the simulator answers the small session')

  const res = await post(app, `/v1/sessions/${small}/images/concatenated`, {}, partnerHeaders())
  t.equal(res.statusCode, 200, '200 with an empty body object')
  t.equal(res.headers['cache-control'], 'no-store, private', 'no-store')
  const body = res.json()
  t.same(Object.keys(body), ['image'], 'one field: image')
  const bytes = Buffer.from(body.image, 'base64')
  t.equal(bytes.subarray(0, 2).toString('hex'), 'ffd8', 'a JPEG start-of-image marker')
  const decoded = jpeg.decode(bytes, { useTArray: true })
  t.ok(decoded.width > 0 && decoded.height > 0, `decodes to ${decoded.width}x${decoded.height}`)
  t.ok(body.image === direct.json.image, 'the same image Incode answers directly')
  const call = simulator.callsTo('concatenatedImages')[1]
  t.equal(call?.status, 200, 'Incode was called through the gateway')
  t.equal(call?.images, undefined, 'without an images list')
})

t.test('concatenated images of chosen types', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const types = ['selfie', 'signature', 'selfie']
  const direct = await directConcatenated(simulator, small, { images: ['selfie', 'signature'] })
  const res = await post(
    app,
    `/v1/sessions/${small}/images/concatenated`,
    { images: types },
    partnerHeaders(),
  )
  t.equal(res.statusCode, 200, '200')
  const body = res.json()
  const decoded = jpeg.decode(Buffer.from(body.image, 'base64'), { useTArray: true })
  t.ok(decoded.width > 0, 'decodable')
  t.ok(body.image === direct.json.image, 'the image of exactly those types')
  t.same(simulator.callsTo('concatenatedImages')[1]?.images, ['selfie', 'signature'], 'duplicates folded')
})

t.test('concatenated images: the body is optional', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const direct = await directConcatenated(simulator, small)
  const { 'content-type': _json, ...withoutBody } = partnerHeaders()
  const res = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${small}/images/concatenated`,
    headers: withoutBody,
  })
  t.equal(res.statusCode, 200, '200 without any body')
  t.ok(res.json().image === direct.json.image, 'every latest image combined')
  const emptyJson = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${small}/images/concatenated`,
    headers: partnerHeaders(),
    payload: '',
  })
  t.equal(emptyJson.statusCode, 200, '200 with a JSON content type and an empty body')
  t.ok(emptyJson.json().image === direct.json.image, 'the same image')
  const notJson = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${small}/images/concatenated`,
    headers: partnerHeaders(),
    payload: '{"images":',
  })
  assertProblem(t, notJson, 400, /.+/, 'a body that is not JSON is still refused')
  const invalid = await post(
    app,
    `/v1/sessions/${small}/images/concatenated`,
    { images: ['nope'] },
    partnerHeaders(),
  )
  assertProblem(t, invalid, 400, 'VALIDATION_FAILED', 'an unknown type is still refused')
  const emptyList = await post(
    app,
    `/v1/sessions/${small}/images/concatenated`,
    { images: [] },
    partnerHeaders(),
  )
  assertProblem(t, emptyList, 400, 'VALIDATION_FAILED', 'an empty list is refused')
})

t.test('concatenated images of a session with no captures → 404 problem', async (t) => {
  const { app } = await buildForRoutes(t)
  const res = await post(app, `/v1/sessions/${empty}/images/concatenated`, {}, partnerHeaders())
  assertProblem(t, res, 404, /.+/, 'nothing to combine')
})
