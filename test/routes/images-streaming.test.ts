import t, { type Test } from 'tap'
import { scanFlatJsonObject } from '../../src/domain/flatJson.js'
import { IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { classifyChunk } from '../../src/domain/imagesMerge.js'
import { foldTypes } from '../../src/domain/requestedTypes.js'
import { SEEDED_INTERVIEW_IDS, type Simulator } from '../../src/simulator/index.js'
import { build, partnerHeaders, simulatorAdminHeaders, type Harness } from '../helpers/build.js'
import { HARDENING_ENV, parseJson, sessionOf, wrongImages } from '../hardening/helpers.js'
import { warmSeededSessions } from './fixtures/helpers.js'

/**
 * /v1 base64 answers are written while Incode's parts arrive (services/liveMerge.ts). Over real
 * loopback sockets: the answer holds, image by image, exactly the bytes the whole-answer path
 * gives; a part that breaks off once its images are on the wire cuts the answer, never a 200
 * that reads as whole; images never change type or session.
 */

warmSeededSessions()

const TYPES = foldTypes(IMAGE_TYPES)
/** Parts of about 1 MB: the full set takes many calls, each streamed. */
const SPLIT_ENV = { ...HARDENING_ENV, CHUNK_BUDGET_BYTES: '1000000', SPLIT_PLAN: 'fewest-calls' }

/** What the whole-answer path writes for `type`: Incode's answer to it alone, classified. */
async function bufferedImage(simulator: Simulator, interviewId: string, type: ImageType) {
  const res = await fetch(`${simulator.url}${simulator.paths.images}?id=${interviewId}`, {
    method: 'POST',
    headers: simulatorAdminHeaders(simulator),
    body: JSON.stringify({ images: [type] }),
  })
  const entries = scanFlatJsonObject(Buffer.from(await res.arrayBuffer()))
  return classifyChunk([type], entries).images[0]?.json.toString('latin1')
}

/** The answer's images as written: type → the value's JSON bytes (quotes included). */
function writtenImages(body: Buffer): Map<string, string> {
  const top = scanFlatJsonObject(body)
  const images = top.find((entry) => entry.key === 'images')
  if (images?.kind !== 'other') return new Map()
  return new Map(
    scanFlatJsonObject(images.raw).map((entry) => [
      entry.key,
      entry.kind === 'string' ? `"${entry.raw.toString('latin1')}"` : entry.kind,
    ]),
  )
}

async function fullSet(h: Harness, interviewId: string) {
  const res = await fetch(`${h.url}/v1/sessions/${interviewId}/images`, {
    method: 'POST',
    headers: partnerHeaders(),
    body: JSON.stringify({ images: TYPES }),
  })
  try {
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
  } catch (err) {
    // The answer was cut: the socket closed before its end.
    return { status: res.status, cut: err instanceof Error ? err.message : String(err) }
  }
}

async function streamingApp(t: Test) {
  return build(t, { listen: true, env: SPLIT_ENV })
}

t.test(
  'every session, all at once: each image byte for byte as the whole-answer path writes it',
  async (t) => {
    const h = await streamingApp(t)
    const sessions = Object.values(SEEDED_INTERVIEW_IDS)
    // Twice over: the second round plans with learnt sizes (other parts, other interleavings).
    for (const round of [1, 2]) {
      const answers = await Promise.all(sessions.map((id) => fullSet(h, id)))
      for (const [i, interviewId] of sessions.entries()) {
        const answer = answers[i]
        const what = `round ${round}, session ${interviewId}`
        t.equal(answer?.status, 200, `${what}: 200`)
        if (!answer?.body) {
          t.fail(`${what}: the answer was cut (${String(answer?.cut)})`)
          continue
        }
        const parsed = parseJson(answer.body.toString())
        const written = writtenImages(answer.body)
        const expected = new Map<string, string>()
        for (const type of TYPES) {
          const json = await bufferedImage(h.simulator, interviewId, type)
          if (json !== undefined) expected.set(type, json)
        }
        t.same([...written.keys()].sort(), [...expected.keys()].sort(), `${what}: the same types have images`)
        const differing = [...expected]
          .filter(([type, json]) => written.get(type) !== json)
          .map(([type]) => type)
        t.same(differing, [], `${what}: every image is byte-identical to the whole-answer path's`)
        t.same(
          wrongImages(parsed?.images ?? {}, sessionOf(h.simulator, interviewId).images),
          [],
          `${what}: every image is its own session's and type's`,
        )
        t.same(
          [...(parsed?.missing ?? [])].sort(),
          TYPES.filter((type) => !expected.has(type)).sort(),
          `${what}: the others are missing`,
        )
        t.same(parsed?.errors, {}, `${what}: no errors`)
      }
    }
    const calls = h.simulator.callsTo('images').length
    t.ok(calls > 2 * sessions.length, `the sets were fetched in many parts (${calls} calls)`)
  },
)

t.test('parts broken off mid-body: an answer is whole and right, or cut, never a short 200', async (t) => {
  const h = await streamingApp(t)
  const { full } = SEEDED_INTERVIEW_IDS
  const expected = sessionOf(h.simulator, full).images
  // Warm-up: learnt sizes, so that the plan is the same every time.
  const warm = await fullSet(h, full)
  t.equal(warm.status, 200, 'warm-up: 200')
  h.simulator.setFaults({ truncateRate: 0.3, endpoints: ['images'] })
  const outcomes = { whole: 0, cut: 0, refused: 0, partial: 0 }
  for (let i = 0; i < 12; i++) {
    const answer = await fullSet(h, full)
    const what = `request ${i}`
    if (answer.cut !== undefined) {
      t.equal(answer.status, 200, `${what}: cut after its status line`)
      outcomes.cut++
      continue
    }
    if (answer.status !== 200) {
      // Every part broke off before any was whole: the request's own error.
      t.equal(answer.status, 502, `${what}: refused with 502`)
      outcomes.refused++
      continue
    }
    const parsed = parseJson(answer.body.toString())
    const images = parsed?.images ?? {}
    const errors = parsed?.errors ?? {}
    t.same(wrongImages(images, expected), [], `${what}: every image it holds is whole and right`)
    const listed = [...Object.keys(images), ...(parsed?.missing ?? []), ...Object.keys(errors)].sort()
    t.same(listed, [...TYPES].sort(), `${what}: every type in exactly one of images, missing, errors`)
    const listedErrors: Array<{ code?: string }> = Object.values(errors)
    for (const error of listedErrors) {
      t.equal(error.code, 'UPSTREAM_BAD_RESPONSE', `${what}: a broken part is listed as such`)
    }
    if (Object.keys(errors).length > 0) outcomes.partial++
    else outcomes.whole++
  }
  h.simulator.setFaults(undefined)
  const truncated = h.simulator.calls.length
  t.ok(truncated > 0, 'Incode was called')
  t.ok(outcomes.cut > 0, `some answers were cut on the wire (${JSON.stringify(outcomes)})`)
  const after = await fullSet(h, full)
  t.equal(after.status, 200, 'the next answer is served')
  t.same(
    wrongImages(parseJson(after.body?.toString() ?? '')?.images ?? {}, expected),
    [],
    'whole and right again',
  )
})
