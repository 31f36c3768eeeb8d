import t from 'tap'
import { IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { partnerHeaders } from '../helpers/build.js'
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

const { full } = SEEDED_INTERVIEW_IDS

/** Base64 length of a type's latest image in the full session. */
function base64Size(simulator: Parameters<typeof sessionOf>[0], type: ImageType): number {
  return Math.ceil((latestOf(sessionOf(simulator, full).images, type)?.bytes.length ?? 0) / 3) * 4
}

t.test(
  'a lower Incode cap: planned chunks are refused, bisected, and every image still arrives',
  async (t) => {
    // Every single image fits under 5 MB, but both chunks planned as the fewest calls (about 8.9
    // and 5.6 MB) do not.
    const cap = 5_000_000
    const { app, simulator } = await buildForRoutes(t, {
      simulator: { responseCapBytes: cap },
      env: { SPLIT_PLAN: 'fewest-calls' },
    })
    const largest = Math.max(...IMAGE_TYPES.map((type) => base64Size(simulator, type)))
    t.ok(largest + 64 < cap, `the largest image (${largest} B) fits under the cap alone`)

    const res = await post(app, `/v1/sessions/${full}/images`, { images: IMAGE_TYPES }, partnerHeaders())
    t.equal(res.statusCode, 200, '200')
    const body = res.json()
    t.same(body.errors, {}, 'no errors')
    t.same(body.missing, [], 'nothing missing')
    assertMergedImages(t, body, IMAGE_TYPES, sessionOf(simulator, full).images, 'bisected')

    const calls = simulator.callsTo('images')
    const refused = calls.filter((call) => call.status === 502)
    const served = calls.filter((call) => call.status === 200)
    t.ok(refused.length >= 1, `Incode refused ${refused.length} call(s) as too large`)
    t.ok(served.length >= 2, `then answered ${served.length} smaller calls`)
    t.equal(refused.length + served.length, calls.length, 'every call was either refused or served')
    const firstServed = calls.findIndex((call) => call.status === 200)
    const firstRefused = calls.findIndex((call) => call.status === 502)
    t.ok(firstRefused < firstServed, 'the log shows the refusals before the answers')
    const servedTypes = served.flatMap((call) => call.images ?? [])
    t.equal(new Set(servedTypes).size, servedTypes.length, 'no type was served twice')
    t.same([...servedTypes].sort(), [...IMAGE_TYPES].sort(), 'the served calls cover every requested type')
    t.ok(
      served.every((call) => call.responseBytes <= cap),
      'every served answer is under the lowered cap',
    )
  },
)

t.test('a type too large on its own: in errors as IMAGE_TOO_LARGE, the others served', async (t) => {
  // fullFrameFrontID (about 4.7 MB as base64) is the only image over 4.5 MB.
  const cap = 4_500_000
  const { app, simulator } = await buildForRoutes(t, { simulator: { responseCapBytes: cap } })
  const tooLarge = IMAGE_TYPES.filter((type) => base64Size(simulator, type) + 64 > cap)
  t.same(tooLarge, ['fullFrameFrontID'], 'exactly one image is larger than the cap')

  const res = await post(app, `/v1/sessions/${full}/images`, { images: IMAGE_TYPES }, partnerHeaders())
  t.equal(res.statusCode, 200, 'partial success is a 200')
  const body = res.json()
  t.same(Object.keys(body.errors), ['fullFrameFrontID'], 'the too-large type is in errors')
  t.match(
    body.errors.fullFrameFrontID,
    { status: 502, code: 'IMAGE_TOO_LARGE', message: String },
    'with status 502 and code IMAGE_TOO_LARGE',
  )
  t.equal(Object.keys(body.images).length, IMAGE_TYPES.length - 1, 'every other type is served')
  t.same(body.missing, [], 'nothing missing')
  assertMergedImages(t, body, IMAGE_TYPES, sessionOf(simulator, full).images, 'partial')

  const alone = simulator
    .callsTo('images')
    .filter((call) => call.images?.length === 1 && call.images[0] === 'fullFrameFrontID')
  t.equal(alone.length, 1, 'the too-large type was tried alone once, not retried forever')
  t.equal(alone[0]?.status, 502, 'and refused')
})

t.test('asking only for a type too large on its own: a 502 problem with IMAGE_TOO_LARGE', async (t) => {
  const { app, simulator } = await buildForRoutes(t, { simulator: { responseCapBytes: 4_500_000 } })
  const res = await post(
    app,
    `/v1/sessions/${full}/images`,
    { images: ['fullFrameFrontID'] },
    partnerHeaders(),
  )
  assertProblem(t, res, 502, 'IMAGE_TOO_LARGE', 'the only type is too large')
  t.equal(simulator.callsTo('images').length, 1, 'one upstream call, not retried')
})
