import type { FastifyError } from 'fastify'
import t from 'tap'
import { LISTED_PROBLEMS_MAX, validationAnswer } from '../../src/plugins/app/errors.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, PARTNER_KEY } from '../helpers/build.js'
import { HARDENING_ENV, parseJson } from './helpers.js'

/**
 * A 400 stays small whatever the body: a caller without credentials must not turn a 64 KB body into
 * megabytes of answer (or the work of checking every bad item).
 */

/** "A few KB". */
const ANSWER_MAX_BYTES = 4096

/** JSON text of `open` + as many `item`s (comma-separated) as fit in `limit` bytes + `close`. */
function fill(open: string, item: string, close: string, limit: number): string {
  const room = limit - Buffer.byteLength(open) - Buffer.byteLength(close)
  const count = Math.max(1, Math.floor((room + 1) / (Buffer.byteLength(item) + 1)))
  return `${open}${Array<string>(count).fill(item).join(',')}${close}`
}

/** Bodies of at most `limit` bytes, each invalid in a way that once grew the answer. */
function hostileBodies(limit: number): Record<string, string> {
  const nameUnit = '"\\\u0001é<'
  // Its JSON form: each unit is escaped to 13 bytes.
  const name = nameUnit.repeat(
    Math.floor((limit - 40) / Buffer.byteLength(JSON.stringify(nameUnit).slice(1, -1))),
  )
  let unknown = '{"images":["selfie"]'
  for (let i = 0; unknown.length + 16 < limit; i++) unknown += `,"p${i}":0`
  const depth = Math.floor((limit - 20) / 2)
  return {
    'thousands of unknown image types': fill('{"images":[', '"x"', ']}', limit),
    'thousands of numbers as types': fill('{"images":[', '0', ']}', limit),
    'thousands of objects as types': fill('{"images":[', '{}', ']}', limit),
    'one huge unknown property name of quotes, controls and non-ASCII': JSON.stringify({
      images: ['selfie'],
      [name]: 1,
    }),
    'thousands of unknown properties': `${unknown}}`,
    'one type of 60 KB': JSON.stringify({ images: ['a'.repeat(limit - 20)] }),
    'deeply nested arrays': `{"images":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    'a JSON string as the body': JSON.stringify('s'.repeat(limit - 10)),
    'broken JSON': `{"images":["${'x'.repeat(limit - 20)}`,
  }
}

t.test('every route with a body answers a hostile body under the limit with a small 400', async (t) => {
  const { app, config } = await build(t, { env: HARDENING_ENV })
  const spec = app.swagger() as { paths: Record<string, Record<string, { requestBody?: unknown }>> }
  const routes: Array<{ method: string; url: string }> = []
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (operation.requestBody === undefined) continue
      routes.push({
        method: method.toUpperCase(),
        url: path.replace('{interviewId}', SEEDED_INTERVIEW_IDS.small),
      })
    }
  }
  t.ok(routes.length >= 14, `the routes with a body are found in the OpenAPI document (${routes.length})`)
  t.ok(
    routes.some((r) => r.url.startsWith('/v1/')) && routes.some((r) => r.url.startsWith('/0/')),
    'v1 and drop-in routes are among them',
  )

  const bodies = hostileBodies(config.BODY_LIMIT_BYTES)
  let largest = { bytes: 0, what: '' }
  for (const [name, body] of Object.entries(bodies)) {
    t.ok(Buffer.byteLength(body) <= config.BODY_LIMIT_BYTES, `${name}: within BODY_LIMIT_BYTES`)
    for (const route of routes) {
      const res = await app.inject({
        method: route.method as 'POST',
        url: route.url,
        headers: {
          'content-type': 'application/json',
          'x-api-key': PARTNER_KEY,
          'x-incode-session-token': 'unused-token',
          'x-incode-hardware-id': 'unused-token',
        },
        payload: body,
      })
      const what = `${route.method} ${route.url}, ${name}`
      const bytes = res.rawPayload.length
      if (res.statusCode === 400 && bytes > largest.bytes) largest = { bytes, what }
      // Drop-in paths take unknown properties, as Incode does: such a body is refused upstream.
      t.ok(res.statusCode >= 400 && res.statusCode < 500, `${what}: refused (${res.statusCode})`)
      t.ok(bytes <= ANSWER_MAX_BYTES, `${what}: the answer is ${bytes} bytes (at most ${ANSWER_MAX_BYTES})`)
      t.type(parseJson(res.body), 'object', `${what}: a JSON error body`)
    }
  }
  t.comment(`largest 400 for a body under the limit: ${largest.bytes} bytes (${largest.what})`)
})

t.test('however many problems a validator reports, a few are listed and the rest counted', async (t) => {
  const problems = Array.from({ length: 10_000 }, (_, i) => ({
    keyword: 'enum',
    instancePath: `/images/${i}/${'"\\'.repeat(1000)}`,
    schemaPath: '#/properties/images/items/enum',
    params: { allowedValues: ['selfie', 'x'.repeat(5000)] },
    message: 'must be equal to one of the allowed values',
  })) as unknown as NonNullable<FastifyError['validation']>
  const answer = validationAnswer(problems, 'body')
  t.equal(answer.status, 400, 'a 400')
  t.equal(answer.code, 'VALIDATION_FAILED', 'VALIDATION_FAILED')
  const listed = answer.errors?.length ?? 0
  t.ok(
    listed >= 1 && listed <= LISTED_PROBLEMS_MAX,
    `1 to ${LISTED_PROBLEMS_MAX} problems listed (${listed})`,
  )
  t.match(answer.detail, `and ${10_000 - listed} more problems`, 'the detail counts the others')
  t.match(answer.errors?.[0]?.path ?? '', /^body\/images\/0\//, 'the first problem is the first listed')
  const bytes = Buffer.byteLength(JSON.stringify(answer))
  t.ok(bytes <= ANSWER_MAX_BYTES - 512, `the answer's fields take ${bytes} bytes`)
})
