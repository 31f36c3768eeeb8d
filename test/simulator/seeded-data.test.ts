import jpeg from 'jpeg-js'
import t from 'tap'

import {
  base64Length,
  IMAGE_TYPES,
  INCODE_RESPONSE_CAP_BYTES,
  type ImageType,
} from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS, SEEDED_SESSIONS, type SimulatedAttempt } from '../../src/simulator/index.js'
import { drawPicture, PICTURE_SIZES, seededJpeg, type PictureKind } from '../../src/simulator/jpeg.js'
import { attemptsOf, lastAttempt, latestBytes, seeded, startSim } from './fixtures/helpers.js'

const KB = 1024
const MB = 1024 * KB

function sizeRange(type: ImageType): [number, number] {
  if (type.startsWith('fullFrame')) return [1.4 * MB, 4 * MB]
  if (type === 'document' || type === 'addressStatement') return [1 * MB, 2 * MB]
  if (type === 'selfie') return [200 * KB, 500 * KB]
  return [20 * KB, 160 * KB]
}

/** Walks the JPEG segments from SOI to SOS; returns the markers seen. */
function segments(bytes: Buffer): number[] {
  const markers: number[] = []
  let at = 2
  while (at + 4 <= bytes.length) {
    const marker = bytes[at + 1]
    if (bytes[at] !== 0xff || marker === undefined) throw new Error(`no marker at ${at}`)
    markers.push(marker)
    if (marker === 0xda) break
    at += 2 + bytes.readUInt16BE(at + 2)
  }
  return markers
}

void t.test('seeded sessions: stable IDs, fixed order, full first', (t) => {
  t.same(
    SEEDED_SESSIONS.map((s) => s.interviewId),
    [
      SEEDED_INTERVIEW_IDS.full,
      SEEDED_INTERVIEW_IDS.small,
      SEEDED_INTERVIEW_IDS.secondId,
      SEEDED_INTERVIEW_IDS.empty,
    ],
    'full, small, second ID, empty',
  )
  for (const s of SEEDED_SESSIONS) {
    t.match(s.interviewId, /^[0-9a-f]{24}$/, `${s.interviewId} is 24 hex chars`)
    t.ok(s.description.length > 10, `${s.interviewId} has a readable description`)
  }
  t.end()
})

void t.test('the simulator starts without generating images up front', async (t) => {
  const started = performance.now()
  const sim = await startSim(t)
  t.comment(`started in ${Math.round(performance.now() - started)} ms`)
  t.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'it listens on loopback')
})

void t.test('every seeded image is a valid JPEG of a realistic size', async (t) => {
  const sim = await startSim(t)
  for (const { interviewId } of SEEDED_SESSIONS) {
    const session = seeded(sim, interviewId)
    t.equal(session.interviewId, interviewId, `${interviewId}: session found`)
    const sets: Array<[string, Partial<Record<ImageType, SimulatedAttempt[]>>]> = [['images', session.images]]
    if (session.secondId) sets.push(['secondId', session.secondId])
    for (const [label, set] of sets) {
      for (const [type, attempts] of Object.entries(set) as Array<[ImageType, SimulatedAttempt[]]>) {
        const times = attempts.map((a) => a.capturedAt)
        t.same(
          times,
          [...times].sort((a, b) => a - b),
          `${interviewId} ${label} ${type}: attempts oldest first`,
        )
        for (const [i, { bytes }] of attempts.entries()) {
          const name = `${interviewId} ${label} ${type}#${i}`
          t.same([bytes[0], bytes[1]], [0xff, 0xd8], `${name}: SOI`)
          t.same([bytes.at(-2), bytes.at(-1)], [0xff, 0xd9], `${name}: EOI`)
          const [min, max] = sizeRange(type)
          t.ok(bytes.length >= min && bytes.length <= max, `${name}: ${bytes.length} B within ${min}..${max}`)
          const markers = segments(bytes)
          t.ok(markers.includes(0xef), `${name}: padded with APP15 segments`)
          t.equal(markers[0], 0xe0, `${name}: JFIF APP0 comes first`)
          const picture = jpeg.decode(bytes, { useTArray: true, maxMemoryUsageInMB: 1024 })
          t.ok(picture.width >= 64 && picture.width <= 160, `${name}: decodes, width ${picture.width}`)
          t.ok(picture.height >= 48 && picture.height <= 120, `${name}: height ${picture.height}`)
        }
      }
    }
  }
})

void t.test('the seeded sessions have the promised content', async (t) => {
  const sim = await startSim(t)
  const full = seeded(sim, SEEDED_INTERVIEW_IDS.full)
  t.same(Object.keys(full.images).sort(), [...IMAGE_TYPES].sort(), 'full: every type')
  for (const type of ['selfie', 'fullFrameFrontID', 'fullFrameBackID'] as const) {
    const n = attemptsOf(full.images, type).length
    t.ok(n >= 2 && n <= 3, `full: ${n} attempts of ${type}`)
  }
  const latestBase64 = (s: typeof full): number =>
    Object.values(s.images).reduce((n, a) => n + base64Length(lastAttempt(a).bytes.length), 0)
  t.ok(
    latestBase64(full) > INCODE_RESPONSE_CAP_BYTES,
    `full: latest base64 ${latestBase64(full)} B over the cap`,
  )

  const small = seeded(sim, SEEDED_INTERVIEW_IDS.small)
  t.same(
    Object.keys(small.images).sort(),
    ['croppedFace', 'fullFrameFrontID', 'selfie', 'signature'],
    'small: four types',
  )
  t.ok(latestBase64(small) < INCODE_RESPONSE_CAP_BYTES, 'small: under the cap')
  const front = lastAttempt(attemptsOf(small.images, 'fullFrameFrontID')).bytes.length
  t.ok(front > 1.4 * MB && front < 1.7 * MB, `small: front ID about 1.5 MB (${front})`)

  const second = seeded(sim, SEEDED_INTERVIEW_IDS.secondId)
  t.ok(second.secondId && Object.keys(second.secondId).length > 0, 'second ID session: has a second document')
  t.same(seeded(sim, SEEDED_INTERVIEW_IDS.empty).images, {}, 'empty: no images')
  t.equal(sim.session('000000000000000000000000'), undefined, 'unknown IDs have no session')
})

void t.test('image data is deterministic per seed', async (t) => {
  const a = await startSim(t, { seed: 5 })
  const b = await startSim(t, { seed: 5 })
  const c = await startSim(t, { seed: 6 })
  const id = SEEDED_INTERVIEW_IDS.small
  const bytes = (s: typeof a): Buffer => latestBytes(s, id, 'selfie')
  t.ok(bytes(a).equals(bytes(b)), 'the same seed gives the same bytes')
  t.notOk(bytes(a).equals(bytes(c)), 'another seed gives other bytes')
  t.same(
    attemptsOf(seeded(a, id).images, 'selfie').map((x) => x.capturedAt),
    attemptsOf(seeded(b, id).images, 'selfie').map((x) => x.capturedAt),
    'and the same capture times',
  )
})

void t.test('a seeded JPEG decodes back to its picture, padding and all', (t) => {
  for (const kind of Object.keys(PICTURE_SIZES) as PictureKind[]) {
    const picture = drawPicture(kind, 42, 1)
    const bytes = seededJpeg(kind, 42, 1, 200 * KB)
    t.equal(bytes.length, 200 * KB, `${kind}: padded to the target size`)
    const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 })
    t.same([decoded.width, decoded.height], [picture.width, picture.height], `${kind}: the size survives`)
    let error = 0
    for (let i = 0; i < picture.data.length; i++)
      if (i % 4 !== 3) error += Math.abs((decoded.data[i] ?? 0) - (picture.data[i] ?? 0))
    const mean = error / (picture.width * picture.height * 3)
    t.ok(mean < 6, `${kind}: mean absolute error ${mean.toFixed(2)} is small`)
  }
  t.end()
})
