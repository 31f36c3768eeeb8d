import jpeg from 'jpeg-js'
import t from 'tap'

import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { assertIncodeError, call, lastAttempt, latestBytes, seeded, startSim } from './fixtures/helpers.js'

const { full, small, empty } = SEEDED_INTERVIEW_IDS

function grid(n: number): { columns: number; rows: number } {
  const columns = Math.ceil(Math.sqrt(n))
  return { columns, rows: Math.ceil(n / columns) }
}

void t.test('concatenated images: one decodable JPEG tiling every latest image', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.concatenatedImages
  const token = sim.sessionToken(small)
  const reply = await call(sim, path, { token, body: {} })
  t.equal(reply.status, 200, 'answers 200 with an empty body object')
  t.same(Object.keys(reply.json), ['image'], 'a single image key')
  const bytes = Buffer.from(reply.json.image, 'base64')
  t.same([bytes[0], bytes[1]], [0xff, 0xd8], 'starts with SOI')
  t.same([bytes.at(-2), bytes.at(-1)], [0xff, 0xd9], 'ends with EOI')
  const combined = jpeg.decode(bytes, { useTArray: true })
  const parts = Object.values(seeded(sim, small).images).map((a) =>
    jpeg.decode(lastAttempt(a).bytes, { useTArray: true }),
  )
  const { columns, rows } = grid(parts.length)
  const maxW = Math.max(...parts.map((p) => p.width))
  const maxH = Math.max(...parts.map((p) => p.height))
  t.ok(combined.width >= columns * maxW, `width ${combined.width} fits ${columns} columns of ${maxW}`)
  t.ok(combined.height >= rows * maxH, `height ${combined.height} fits ${rows} rows of ${maxH}`)
  t.ok(
    combined.width * combined.height >= parts.reduce((n, p) => n + p.width * p.height, 0),
    'holds every part',
  )

  const noBody = await call(sim, path, { token })
  t.equal(noBody.status, 200, 'answers 200 without a body')
  t.equal(noBody.json.image, reply.json.image, 'the default is every latest image')
})

void t.test('concatenated images: a chosen subset; the full session fits the cap', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.concatenatedImages
  const two = await call(sim, path, {
    token: sim.sessionToken(full),
    body: { images: ['selfie', 'signature'] },
  })
  t.equal(two.status, 200, 'two images: 200')
  const decoded = jpeg.decode(Buffer.from(two.json.image, 'base64'), { useTArray: true })
  const selfie = jpeg.decode(latestBytes(sim, full, 'selfie'), { useTArray: true })
  const signature = jpeg.decode(latestBytes(sim, full, 'signature'), { useTArray: true })
  t.ok(decoded.width >= selfie.width + signature.width, 'two images sit side by side')
  const all = await call(sim, path, { token: sim.sessionToken(full) })
  t.equal(all.status, 200, `all ${IMAGE_TYPES.length} types of the full session: 200`)
  const big = jpeg.decode(Buffer.from(all.json.image, 'base64'), { useTArray: true })
  const { columns, rows } = grid(IMAGE_TYPES.length)
  t.ok(big.width >= columns * 64 && big.height >= rows * 48, 'the grid holds every type')
  t.ok(all.bytes.length < 2_000_000, 'the combined image is small')
})

void t.test('concatenated images: 404 without images, 502 over the cap', async (t) => {
  const sim = await startSim(t, { responseCapBytes: 5_000 })
  const path = sim.paths.concatenatedImages
  assertIncodeError(
    t,
    await call(sim, path, { token: sim.sessionToken(empty) }),
    404,
    path,
    'session without images',
  )
  const none = await call(sim, path, { token: sim.sessionToken(small), body: { images: ['document'] } })
  assertIncodeError(t, none, 404, path, 'none of the requested images exist')
  const over = await call(sim, path, { token: sim.sessionToken(full) })
  assertIncodeError(t, over, 502, path, 'combined image over a 5 kB cap')
})
