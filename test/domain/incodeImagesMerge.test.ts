import t from 'tap'
import { scanFlatJsonObject } from '../../src/domain/flatJson.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { incodeImagesJson } from '../../src/domain/incodeImagesMerge.js'

function part(requested: ImageType[], text: string) {
  return { requested, entries: scanFlatJsonObject(Buffer.from(text)) }
}

void t.test('parts merge into one flat object, in the parts’ order and their own', (t) => {
  const merged = incodeImagesJson([
    part(['signature', 'selfie'], '{"signature":"c2ln","selfie":"c2Vs"}'),
    part(['document'], '{"document":null}'),
  ])
  t.equal(merged.toString(), '{"signature":"c2ln","selfie":"c2Vs","document":null}', 'one object')
  t.same(
    JSON.parse(merged.toString()),
    { signature: 'c2ln', selfie: 'c2Vs', document: null },
    'valid JSON with every requested entry',
  )
  t.end()
})

void t.test('values are passed on as Incode sent them: escapes and other values kept', (t) => {
  const merged = incodeImagesJson([part(['selfie', 'signature'], '{"selfie":"a\\/b","signature":{"x":[1]}}')])
  t.equal(merged.toString(), '{"selfie":"a\\/b","signature":{"x":[1]}}', 'escapes and objects unchanged')
  t.end()
})

void t.test('entries a part did not ask for are left out', (t) => {
  const merged = incodeImagesJson([
    part(['selfie'], '{"selfie":"c2Vs","signature":"b3RoZXI=","selfie_prevAttempts":{"1":"x"},"ok":true}'),
    part(['signature'], '{"signature":"c2ln"}'),
  ])
  t.same(
    JSON.parse(merged.toString()),
    { selfie: 'c2Vs', signature: 'c2ln' },
    "no type answers for another part's, no extra fields",
  )
  t.end()
})

void t.test('no entries: an empty object', (t) => {
  t.equal(incodeImagesJson([]).toString(), '{}', 'no parts')
  t.equal(incodeImagesJson([part(['selfie'], '{}')]).toString(), '{}', 'parts with nothing asked for')
  t.end()
})
