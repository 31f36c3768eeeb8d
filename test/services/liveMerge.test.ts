import fc from 'fast-check'
import t from 'tap'
import { scanFlatJsonObject } from '../../src/domain/flatJson.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { classifyChunk, MergedImagesWriter } from '../../src/domain/imagesMerge.js'
import { LiveMerge } from '../../src/services/liveMerge.js'

/**
 * LiveMerge against the whole-answer path (classifyChunk + MergedImagesWriter.addImage): the same
 * bytes per image whatever the pieces, escapes included; parts interleaved never mix; nothing is
 * written before a part is whole; a part given up keeps only what is whole in the answer.
 */

/** A merge writing into a string, and the images it holds once finished. */
function harness() {
  const out: Buffer[] = []
  const writer = new MergedImagesWriter((chunk) => out.push(Buffer.from(chunk)))
  const merge = new LiveMerge(writer)
  return {
    merge,
    writer,
    written: () => Buffer.concat(out).toString('latin1'),
    images(): Map<string, string> {
      writer.finish({ missing: [], errors: {} })
      const top = scanFlatJsonObject(Buffer.concat(out))
      const images = top.find((entry) => entry.key === 'images')
      if (images?.kind !== 'other') return new Map()
      return new Map(
        scanFlatJsonObject(images.raw).map((e) => [
          e.key,
          e.kind === 'string' ? `"${e.raw.toString('latin1')}"` : e.kind,
        ]),
      )
    },
  }
}

/** What the whole-answer path writes for each requested type of `body`. */
function buffered(requested: readonly ImageType[], body: Buffer): Map<string, string> {
  const { images } = classifyChunk(requested, scanFlatJsonObject(body))
  return new Map(images.map((image) => [image.type, image.json.toString('latin1')]))
}

/** `body` cut at `cuts` (modulo its length + 1), in order. */
function pieces(body: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let from = 0
  for (const to of [...points, body.length]) {
    out.push(body.subarray(from, to))
    from = to
  }
  return out
}

const REQUESTED: ImageType[] = ['selfie', 'document', 'signature']

// Base64-like text with the escapes a JSON encoder may use: \/ \u0041, a surrogate pair, \n.
const valueText = fc
  .array(
    fc.constantFrom('QUJD', 'ZGVm', '+/==', '\\/', '\\u0041', '\\ud83d\\ude00', '\\n', 'é', '\\"', '\\\\'),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(''))

t.test('each image is byte for byte what the whole-answer path writes, whatever the pieces', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom<string>(...REQUESTED, 'other', '_prevAttempts'), valueText), {
        maxLength: 5,
      }),
      fc.array(fc.nat(400), { maxLength: 8 }),
      async (entries, cuts) => {
        // One entry per key: a requested type sent twice is refused (tested below).
        const unique = [...new Map(entries).entries()]
        const body = Buffer.from(`{${unique.map(([k, v]) => `"${k}":"${v}"`).join(',')}}`)
        const h = harness()
        const part = h.merge.part(REQUESTED)
        for (const piece of pieces(body, cuts)) part.write(piece)
        part.end()
        await part.handedOn()
        const got = h.images()
        const want = buffered(REQUESTED, body)
        if ([...got].sort().join('\n') !== [...want].sort().join('\n')) {
          throw new Error(
            `differs for ${body.toString()}: ${JSON.stringify([...got])} vs ${JSON.stringify([...want])}`,
          )
        }
        t.same(
          [...part.missing].sort(),
          REQUESTED.filter((type) => !want.has(type)).sort(),
          'the others are missing',
        )
      },
    ),
    { numRuns: 200 },
  )
})

t.test(
  'two parts interleaved: nothing before one is whole, then one image at a time, none mixed',
  async (t) => {
    const h = harness()
    const a = h.merge.part(['selfie', 'document'])
    const b = h.merge.part(['signature'])
    const bodyA = Buffer.from('{"selfie":"AAAA","document":"BBBB"}')
    const bodyB = Buffer.from('{"signature":"CCCCCCCC"}')
    a.write(bodyA.subarray(0, 14))
    b.write(bodyB.subarray(0, 17))
    t.equal(h.written(), '', 'nothing is written while no part is whole')
    b.write(bodyB.subarray(17))
    b.end()
    t.equal(
      h.written(),
      '{"images":{"signature":"CCCCCCCC","selfie":"AAA',
      'the whole part goes first, then the other goes live with what it has',
    )
    a.write(bodyA.subarray(14, 30))
    a.write(bodyA.subarray(30))
    a.end()
    await Promise.all([a.handedOn(), b.handedOn()])
    t.same(
      Object.fromEntries(h.images()),
      { signature: '"CCCCCCCC"', selfie: '"AAAA"', document: '"BBBB"' },
      'every image under its own type',
    )
  },
)

t.test('a part given up: its whole images stay, one cut on the wire is reported broken', async (t) => {
  const h = harness()
  const first = h.merge.part(['selfie'])
  first.write(Buffer.from('{"selfie":"AAAA"}'))
  first.end()
  const between = h.merge.part(['document', 'signature'])
  between.write(Buffer.from('{"document":"BBBB","signa'))
  t.same(
    { ...between.abandon(), delivered: [...between.abandon().delivered] },
    { delivered: ['document'], broken: false },
    'cut between images: the whole one is delivered, nothing is broken',
  )
  const inside = h.merge.part(['croppedFace'])
  inside.write(Buffer.from('{"croppedFace":"CC'))
  const cut = inside.abandon()
  t.same(
    { ...cut, delivered: [...cut.delivered] },
    { delivered: [], broken: true },
    'cut inside an image on the wire: broken',
  )
})

t.test('a requested type given twice refuses the answer', async (t) => {
  const h = harness()
  const part = h.merge.part(['selfie'])
  t.throws(
    () => part.write(Buffer.from('{"selfie":"AAAA","selfie":"BBBB"}')),
    { code: 'UPSTREAM_BAD_RESPONSE' },
    'refused as a bad answer',
  )
})
