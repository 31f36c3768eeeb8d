import t from 'tap'
import { scanFlatJsonObject } from '../../src/domain/flatJson.js'
import type { ScannedEntry } from '../../src/domain/flatJson.js'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { classifyChunk, MergedImagesWriter } from '../../src/domain/imagesMerge.js'
import type { ImageError } from '../../src/domain/imagesMerge.js'
import { Rng, SEEDS } from './helpers.js'

function classifyText(requested: ImageType[], text: string) {
  const body = Buffer.from(text)
  return { body, ...classifyChunk(requested, scanFlatJsonObject(body)) }
}

function imagesAsText(images: Array<{ type: ImageType; json: Buffer }>): Array<[ImageType, string]> {
  return images.map(({ type, json }) => [type, json.toString()])
}

/** A writer whose output is collected, keeping every write to inspect the calls. */
function collectingWriter() {
  const writes: Array<Buffer | string> = []
  const writer = new MergedImagesWriter((chunk) => writes.push(chunk))
  const output = () =>
    Buffer.concat(writes.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk)))
  return { writer, writes, output }
}

void t.test('classifyChunk: images and missing types', (t) => {
  const { images, missing } = classifyText(
    [
      'selfie',
      'croppedFace',
      'document',
      'signature',
      'fullFrameFrontID',
      'fullFrameBackID',
      'croppedFrontID',
    ],
    '{"selfie":"QUJD","croppedFace":null,"document":"","signature":42,"fullFrameFrontID":{"x":"y"},"croppedFrontID":["a"]}',
  )
  t.same(imagesAsText(images), [['selfie', '"QUJD"']], 'only the non-empty string is an image')
  t.same(
    missing,
    ['croppedFace', 'document', 'signature', 'fullFrameFrontID', 'fullFrameBackID', 'croppedFrontID'],
    'null, "", a number, an object, an absent key and an array are all missing, in request order',
  )
  t.end()
})

void t.test('classifyChunk: the json Buffer includes the quotes and is a view of the body', (t) => {
  const { body, images } = classifyText(['selfie'], '{"selfie":"QUJD"}')
  const [image] = images
  t.equal(image?.json.toString(), '"QUJD"', 'quoted JSON text')
  t.equal(image?.json.buffer, body.buffer, 'same memory as the upstream body')
  t.equal(image?.json.byteOffset, body.byteOffset + body.indexOf('"QUJD"'), 'pointing at the quoted value')
  t.end()
})

void t.test('classifyChunk: hand-built entries (not views of a body) still get their quotes', (t) => {
  const entries: ScannedEntry[] = [
    { key: 'selfie', kind: 'string', raw: Buffer.from('QUJD'), escaped: false },
    { key: 'signature', kind: 'string', raw: Buffer.from(new Uint8Array([0x78])), escaped: false },
  ]
  const { images } = classifyChunk(['selfie', 'signature'], entries)
  t.same(
    imagesAsText(images),
    [
      ['selfie', '"QUJD"'],
      ['signature', '"x"'],
    ],
    'quotes added by copying',
  )
  t.end()
})

void t.test('classifyChunk: escaped values are canonicalised', (t) => {
  const cases: Array<[string, string]> = [
    ['ab\\/cd', '"ab/cd"'],
    ['\\u0041', '"A"'],
    ['\\u00e9', '"é"'],
    ['a\\"b', '"a\\"b"'],
    ['\\\\', '"\\\\"'],
    ['\\u000a', '"\\n"'],
  ]
  for (const [raw, expected] of cases) {
    const { body, images } = classifyText(['selfie'], `{"selfie":"${raw}"}`)
    const json = images[0]?.json
    t.equal(json?.toString(), expected, `${raw} becomes ${expected}`)
    body.fill(0)
    t.equal(json?.toString(), expected, `${raw}: a copy, unaffected by later changes to the upstream body`)
  }
  t.end()
})

void t.test('classifyChunk: unrequested keys are ignored', (t) => {
  const { images, missing } = classifyText(
    ['selfie'],
    '{"croppedFace":"QUJD","selfie_prevAttempts":{"1":"x"},"unknownField":"Zm9v","SELFIE":"Zm9v","selfie ":"Zm9v"}',
  )
  t.same(images, [], 'no image under a type that was not asked for')
  t.same(missing, ['selfie'], 'the requested type is missing')
  t.end()
})

void t.test('classifyChunk: duplicates', (t) => {
  const last = classifyText(['selfie'], '{"selfie":"Zmlyc3Q=","selfie":"bGFzdA=="}')
  t.same(
    imagesAsText(last.images),
    [['selfie', '"bGFzdA=="']],
    'the last duplicate key wins, as with JSON.parse',
  )
  const nulled = classifyText(['selfie'], '{"selfie":"Zmlyc3Q=","selfie":null}')
  t.same(nulled.missing, ['selfie'], 'a later null makes it missing')
  const requestedTwice = classifyText(['selfie', 'selfie'], '{"selfie":"QUJD"}')
  t.equal(requestedTwice.images.length, 1, 'a type requested twice is returned once')
  const missingTwice = classifyText(['selfie', 'selfie'], '{}')
  t.same(missingTwice.missing, ['selfie'], 'and listed missing once')
  t.end()
})

void t.test('classifyChunk: empty request and empty answer', (t) => {
  t.same(classifyText([], '{"selfie":"QUJD"}').images, [], 'nothing requested, nothing returned')
  t.same(
    classifyText(['selfie', 'document'], '{}').missing,
    ['selfie', 'document'],
    'empty answer: all missing',
  )
  t.end()
})

void t.test('MergedImagesWriter: output for various contents', (t) => {
  const error502: ImageError = { status: 502, code: 'UPSTREAM_TOO_LARGE', message: 'Response over 10 MB' }
  const cases: Array<{
    name: string
    images: Array<[ImageType, string]>
    missing: ImageType[]
    errors: Partial<Record<ImageType, ImageError>>
  }> = [
    { name: 'nothing at all', images: [], missing: [], errors: {} },
    { name: 'one image', images: [['selfie', 'QUJD']], missing: [], errors: {} },
    {
      name: 'many images',
      images: [
        ['document', 'ZG9j'],
        ['selfie', 'c2VsZmll'],
        ['signature', ''],
      ],
      missing: [],
      errors: {},
    },
    { name: 'only missing', images: [], missing: ['selfie', 'croppedFace'], errors: {} },
    { name: 'only errors', images: [], missing: [], errors: { document: error502 } },
    {
      name: 'images, missing and errors',
      images: [
        ['selfie', 'QUJD'],
        ['croppedFace', 'RUZH'],
      ],
      missing: ['signature'],
      errors: {
        fullFrameFrontID: error502,
        fullFrameBackID: { status: 504, code: 'TIMEOUT', message: 'é "q"' },
      },
    },
  ]
  for (const { name, images, missing, errors } of cases) {
    const { writer, output } = collectingWriter()
    for (const [type, base64] of images) writer.addImage(type, Buffer.from(JSON.stringify(base64)))
    writer.finish({ missing, errors })
    const parsed = JSON.parse(output().toString()) as unknown
    t.same(
      parsed,
      { images: Object.fromEntries(images), missing, errors },
      `${name}: JSON.parse-equal to the expectation`,
    )
    t.same(
      Object.keys((parsed as { images: object }).images),
      images.map(([type]) => type),
      `${name}: images in the order added`,
    )
  }
  t.end()
})

void t.test('MergedImagesWriter: writes incrementally, key and image separately', (t) => {
  const { writer, writes } = collectingWriter()
  t.equal(writes.length, 0, 'nothing written before the first call')
  const selfie = Buffer.from('"QUJD"')
  writer.addImage('selfie', selfie)
  t.same(writes, ['{"images":{', '"selfie":', selfie], 'opening, key, then the image itself')
  t.equal(writes[2], selfie, 'the image Buffer is written as is, not copied')
  const face = Buffer.from('"RUZH"')
  writer.addImage('croppedFace', face)
  t.same(writes.slice(3), [',"croppedFace":', face], 'a comma before later keys')
  t.equal(writes[4], face, 'second image Buffer written as is')
  writer.finish({ missing: [], errors: {} })
  t.equal(writes.length, 6, 'finish writes the rest in one go')
  t.equal(writes[5], '},"missing":[],"errors":{}}', 'closing text')
  t.end()
})

void t.test('MergedImagesWriter: finish alone writes the opening too', (t) => {
  const { writer, writes } = collectingWriter()
  writer.finish({ missing: ['selfie'], errors: {} })
  t.same(writes, ['{"images":{', '},"missing":["selfie"],"errors":{}}'], 'opening then the rest')
  t.end()
})

void t.test('MergedImagesWriter: missing and errors are deterministic', (t) => {
  const { writer, output } = collectingWriter()
  const failure = { status: 502, code: 'X', message: 'm' }
  writer.finish({
    missing: ['croppedAuthenticationSelfie', 'signature', 'selfie', 'signature'],
    errors: {
      addressStatement: { ...failure, extra: 'not leaked' } as ImageError,
      document: failure,
      // A plain-JavaScript caller's explicit undefined, which the types rule out.
      croppedFace: undefined as unknown as ImageError,
    },
  })
  t.equal(
    output().toString(),
    '{"images":{},"missing":["selfie","signature","croppedAuthenticationSelfie"],' +
      '"errors":{"document":{"status":502,"code":"X","message":"m"},' +
      '"addressStatement":{"status":502,"code":"X","message":"m"}}}',
    'IMAGE_TYPES order, duplicates folded, undefined errors and extra fields dropped',
  )
  t.end()
})

void t.test('MergedImagesWriter: misuse throws before writing', (t) => {
  const { writer, writes, output } = collectingWriter()
  writer.addImage('selfie', Buffer.from('"QUJD"'))
  const before = writes.length
  t.throws(() => writer.addImage('selfie', Buffer.from('"QUJD"')), /added twice/, 'same type twice')
  t.throws(
    () => writer.finish({ missing: ['selfie'], errors: {} }),
    /delivered but is also listed/,
    'a delivered type listed missing',
  )
  t.throws(
    () => writer.finish({ missing: [], errors: { selfie: { status: 502, code: 'X', message: 'm' } } }),
    /delivered but is also listed/,
    'a delivered type listed failed',
  )
  t.throws(
    () =>
      writer.finish({
        missing: ['document'],
        errors: { document: { status: 502, code: 'X', message: 'm' } },
      }),
    /both as missing and as failed/,
    'a type both missing and failed',
  )
  t.equal(writes.length, before, 'nothing was written by the refused calls')
  writer.finish({ missing: [], errors: {} })
  t.same(
    JSON.parse(output().toString()),
    { images: { selfie: 'QUJD' }, missing: [], errors: {} },
    'the answer is still whole and valid after the refused calls',
  )
  t.throws(() => writer.finish({ missing: [], errors: {} }), /finish called twice/, 'finish twice')
  t.throws(() => writer.addImage('document', Buffer.from('"QUJD"')), /after finish/, 'addImage after finish')
  t.end()
})

void t.test('MergedImagesWriter: random contents parse back', (t) => {
  for (const seed of SEEDS) {
    const rng = new Rng(seed)
    const failures: string[] = []
    for (let round = 0; round < 100; round++) {
      const types = rng.shuffle(IMAGE_TYPES)
      const images: Array<[ImageType, string]> = []
      const missing: ImageType[] = []
      const errors: Partial<Record<ImageType, ImageError>> = {}
      for (const type of types) {
        const fate = rng.int(0, 3)
        if (fate === 0) images.push([type, rng.bytes(rng.int(1, 64)).toString('base64')])
        else if (fate === 1) missing.push(type)
        else if (fate === 2)
          errors[type] = { status: rng.int(400, 599), code: `C${rng.int(0, 9)}`, message: 'm' }
      }
      const { writer, output } = collectingWriter()
      for (const [type, base64] of images) writer.addImage(type, Buffer.from(JSON.stringify(base64)))
      writer.finish({ missing, errors })
      const parsed = JSON.parse(output().toString()) as { missing: ImageType[]; errors: object }
      const expected = {
        images: Object.fromEntries(images),
        missing: IMAGE_TYPES.filter((type) => missing.includes(type)),
        errors,
      }
      if (JSON.stringify(parsed.missing) !== JSON.stringify(expected.missing)) {
        failures.push(`round ${round}: missing not in IMAGE_TYPES order`)
      }
      const errorKeys = Object.keys(parsed.errors)
      if (JSON.stringify(errorKeys) !== JSON.stringify(IMAGE_TYPES.filter((type) => type in errors))) {
        failures.push(`round ${round}: errors not in IMAGE_TYPES order`)
      }
      t.same(parsed, expected, `seed ${seed} round ${round}: parsed output matches`)
    }
    t.same(failures, [], `seed ${seed}: deterministic order in 100 random merges`)
  }
  t.end()
})

void t.test('scan, classify and merge: an 8 MB image keeps its bytes', (t) => {
  const rng = new Rng(99)
  const big = rng.bytes(6 * 1024 * 1024).toString('base64')
  const small = rng.bytes(3000).toString('base64')
  const chunks = [
    { requested: ['fullFrameFrontID'] as ImageType[], body: Buffer.from(`{"fullFrameFrontID":"${big}"}`) },
    {
      requested: ['selfie', 'signature', 'croppedFace'] as ImageType[],
      body: Buffer.from(`{"selfie":"${small}","signature":null,"croppedFace_prevAttempts":{"1":"u"}}`),
    },
  ]
  const { writer, writes, output } = collectingWriter()
  const missing: ImageType[] = []
  for (const { requested, body } of chunks) {
    const classified = classifyChunk(requested, scanFlatJsonObject(body))
    for (const image of classified.images) writer.addImage(image.type, image.json)
    missing.push(...classified.missing)
  }
  writer.finish({ missing, errors: { document: { status: 502, code: 'UPSTREAM', message: 'too big' } } })

  const bigWrite = writes.find((chunk) => typeof chunk !== 'string' && chunk.length > 1_000_000)
  t.ok(bigWrite && typeof bigWrite !== 'string', 'the big image was written as one Buffer')
  if (bigWrite && typeof bigWrite !== 'string') {
    t.equal(bigWrite.buffer, chunks[0]?.body.buffer, 'a view of the upstream body, not a copy')
    t.ok(bigWrite.equals(Buffer.from(`"${big}"`)), 'byte-identical to the quoted base64')
  }
  const parsed = JSON.parse(output().toString()) as { images: Record<string, string> }
  t.equal(parsed.images.fullFrameFrontID, big, 'the big image parses back to the same base64')
  t.same(
    parsed,
    {
      images: { fullFrameFrontID: big, selfie: small },
      missing: ['croppedFace', 'signature'],
      errors: { document: { status: 502, code: 'UPSTREAM', message: 'too big' } },
    },
    'the whole merged answer',
  )
  t.end()
})
