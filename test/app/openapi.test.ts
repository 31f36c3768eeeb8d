import { readFile } from 'node:fs/promises'
import t from 'tap'
import { generateOpenApi, generateTypes, OPENAPI_FILE, TYPES_FILE } from '../../scripts/openapi.js'

t.test('the committed OpenAPI document matches the routes', async (t) => {
  const generated = await generateOpenApi()
  const committed = await readFile(OPENAPI_FILE, 'utf8')
  t.equal(committed, generated, 'openapi/openapi.json is current (run `npm run openapi` to refresh it)')
  t.equal(
    await readFile(TYPES_FILE, 'utf8'),
    await generateTypes(generated),
    'openapi/schema.d.ts, the client types, is current (run `npm run openapi` to refresh it)',
  )
  const doc = JSON.parse(generated)
  for (const path of [
    '/v1/sessions/{interviewId}/images',
    '/v1/session/images',
    '/v1/sessions/{interviewId}/image-links',
    '/v1/session/image-links',
    '/v1/sessions/{interviewId}/second-id/images',
    '/v1/sessions/{interviewId}/images/concatenated',
    '/omni/get/images',
    '/0/omni/get/images',
    '/omni/get/images/v2',
  ]) {
    t.ok(doc.paths[path], `${path} is documented`)
  }
  t.ok(doc.components.schemas.Problem, 'Problem schema named once')
  t.ok(doc.components.schemas.ImageType, 'ImageType schema named once')
})
