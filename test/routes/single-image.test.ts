import { createHash } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { sha256Hex } from '../../src/auth/apiKeys.js'
import { SEEDED_INTERVIEW_IDS, type Simulator } from '../../src/simulator/index.js'
import { PARTNER_KEY, TEST_API_KEYS, type Harness } from '../helpers/build.js'
import { assertProblem, buildForRoutes, latestOf, sessionOf, warmSeededSessions } from './fixtures/helpers.js'

/**
 * GET /v1/sessions/{interviewId}/images/{type} and its session-token twin GET
 * /v1/session/images/{type}: one image as JPEG bytes, with a strong ETag.
 */

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS
const partner = { 'x-api-key': PARTNER_KEY }

function get(h: Harness, url: string, headers: Record<string, string> = partner) {
  return h.app.inject({ method: 'GET', url, headers })
}

function latest(simulator: Simulator, interviewId: string, type: 'selfie' | 'fullFrameFrontID'): Buffer {
  const bytes = latestOf(sessionOf(simulator, interviewId).images, type)?.bytes
  if (!bytes) throw new Error(`the seeded session ${interviewId} has no ${type}`)
  return bytes
}

function assertJpegAnswer(t: Test, res: LightMyRequestResponse, expected: Buffer, what: string): void {
  t.equal(res.statusCode, 200, `${what}: 200`)
  t.equal(res.headers['content-type'], 'image/jpeg', `${what}: image/jpeg`)
  t.equal(res.headers['cache-control'], 'no-store, private', `${what}: never stored by shared caches`)
  t.equal(res.headers['content-length'], String(expected.length), `${what}: its length`)
  t.ok(res.rawPayload.equals(expected), `${what}: the bytes are the latest capture, decoded`)
}

t.test('partner: the bytes of the latest capture, a strong and stable ETag, 304 on a match', async (t) => {
  const h = await buildForRoutes(t)
  const url = `/v1/sessions/${small}/images/selfie`
  const expected = latest(h.simulator, small, 'selfie')
  const first = await get(h, url)
  assertJpegAnswer(t, first, expected, 'first')
  const etag = String(first.headers.etag)
  t.equal(
    etag,
    `"${createHash('sha256').update(expected).digest('base64url')}"`,
    'the ETag is the SHA-256 of the bytes, quoted, strong (no W/)',
  )
  const second = await get(h, url)
  assertJpegAnswer(t, second, expected, 'second')
  t.equal(second.headers.etag, etag, 'the same bytes give the same ETag')

  for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const res = await get(h, url, { ...partner, 'if-none-match': ifNoneMatch })
    t.equal(res.statusCode, 304, `If-None-Match: ${ifNoneMatch} → 304`)
    t.equal(res.rawPayload.length, 0, `If-None-Match: ${ifNoneMatch}: no body`)
    t.equal(res.headers.etag, etag, `If-None-Match: ${ifNoneMatch}: the ETag is sent again`)
    t.equal(res.headers['cache-control'], 'no-store, private', `If-None-Match: ${ifNoneMatch}: no-store`)
  }
  const other = await get(h, url, { ...partner, 'if-none-match': '"something-else"' })
  assertJpegAnswer(t, other, expected, 'a stale If-None-Match')

  const fullSelfie = await get(h, `/v1/sessions/${full}/images/selfie`)
  assertJpegAnswer(t, fullSelfie, latest(h.simulator, full, 'selfie'), 'another session')
  t.not(fullSelfie.headers.etag, etag, 'other bytes, another ETag')
  t.equal(h.app.answerMemory.available(), h.config.ANSWER_MEMORY_BYTES, 'all answer memory given back')
})

t.test('a type the session lacks is 404 IMAGE_NOT_FOUND; an unknown type is 400', async (t) => {
  const h = await buildForRoutes(t)
  assertProblem(
    t,
    await get(h, `/v1/sessions/${small}/images/fullFrameBackID`),
    404,
    'IMAGE_NOT_FOUND',
    'missing type',
  )
  const empty = SEEDED_INTERVIEW_IDS.empty
  assertProblem(t, await get(h, `/v1/sessions/${empty}/images/selfie`), 404, 'IMAGE_NOT_FOUND', 'no captures')
  const unknown = assertProblem(
    t,
    await get(h, `/v1/sessions/${small}/images/selfy`),
    400,
    'VALIDATION_FAILED',
    'unknown type',
  )
  t.match(unknown.detail, /params\/type must be one of: selfie/, 'the detail names the allowed types')
  t.equal(h.simulator.callsTo('images').length, 2, 'the unknown type never reached Incode')
})

t.test("a type that alone exceeds Incode's cap: 502 IMAGE_TOO_LARGE, tried once", async (t) => {
  // fullFrameFrontID of the full session is about 4.7 MB as base64.
  const h = await buildForRoutes(t, { simulator: { responseCapBytes: 4_500_000 } })
  const res = await get(h, `/v1/sessions/${full}/images/fullFrameFrontID`)
  assertProblem(t, res, 502, 'IMAGE_TOO_LARGE', 'too large alone')
  t.equal(h.simulator.callsTo('images').length, 1, 'one upstream call, not retried')
  assertJpegAnswer(
    t,
    await get(h, `/v1/sessions/${full}/images/selfie`),
    latest(h.simulator, full, 'selfie'),
    'a smaller type of the same session',
  )
})

t.test('bytes that are not a JPEG are 502 UPSTREAM_NOT_JPEG, never served', async (t) => {
  const h = await buildForRoutes(t)
  // A session of this simulator's own, whose selfie is a PNG.
  const started = await fetch(`${h.simulator.url}${h.simulator.paths.start}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': h.simulator.apiKey, 'api-version': '1.0' },
    body: '{}',
  })
  const { interviewId } = (await started.json()) as { interviewId: string }
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex')
  sessionOf(h.simulator, interviewId).images.selfie = [{ capturedAt: Date.now(), bytes: png }]
  const res = await get(h, `/v1/sessions/${interviewId}/images/selfie`)
  assertProblem(t, res, 502, 'UPSTREAM_NOT_JPEG', 'a PNG')
  t.notOk(res.rawPayload.includes(png), 'none of the bytes are sent')
})

t.test('session-token twin: its own session only, a token required', async (t) => {
  const h = await buildForRoutes(t)
  const url = '/v1/session/images/selfie'
  const smallSelfie = latest(h.simulator, small, 'selfie')
  const fullSelfie = latest(h.simulator, full, 'selfie')
  t.notOk(smallSelfie.equals(fullSelfie), 'the two sessions have different selfies')
  const own = await get(h, url, { 'x-incode-session-token': h.simulator.sessionToken(small) })
  assertJpegAnswer(t, own, smallSelfie, "small's token")
  const other = await get(h, url, { 'x-incode-session-token': h.simulator.sessionToken(full) })
  assertJpegAnswer(t, other, fullSelfie, "full's token")
  const named = await get(h, `${url}?interviewId=${full}&id=${full}`, {
    'x-incode-session-token': h.simulator.sessionToken(small),
  })
  assertJpegAnswer(t, named, smallSelfie, "small's token naming another interview in the query")
  const calls = h.simulator.callsTo('images')
  t.same(
    calls.map((call) => [call.tokenKind, call.interviewId]),
    [
      ['session', small],
      ['session', full],
      ['session', small],
    ],
    "each call went to Incode with the caller's own session token",
  )
  assertProblem(t, await get(h, url, {}), 401, 'TOKEN_MISSING', 'no token')
  assertProblem(
    t,
    await get(h, url, { 'x-incode-session-token': 'not-a-token' }),
    401,
    /^UPSTREAM_401|TOKEN_INVALID$/,
    'a token Incode refuses',
  )
  assertProblem(
    t,
    await get(h, `/v1/sessions/${small}/images/selfie`, {
      'x-incode-session-token': h.simulator.sessionToken(small),
    }),
    401,
    'API_KEY_MISSING',
    'a session token on the partner route',
  )
})

t.test('a partner key without images:read is refused', async (t) => {
  const linksOnly = 'links-only-partner-key-0123456789'
  const keys = [
    ...(JSON.parse(TEST_API_KEYS) as unknown[]),
    { name: 'links-only', scopes: ['links:read'], sha256: sha256Hex(linksOnly) },
  ]
  const h = await buildForRoutes(t, { env: { API_KEYS: JSON.stringify(keys) } })
  const url = `/v1/sessions/${small}/images/selfie`
  assertProblem(t, await get(h, url, { 'x-api-key': linksOnly }), 403, 'SCOPE_MISSING', 'links:read only')
  assertProblem(t, await get(h, url, { 'x-api-key': 'wrong-key' }), 401, 'API_KEY_INVALID', 'a wrong key')
  assertProblem(t, await get(h, url, {}), 401, 'API_KEY_MISSING', 'no key')
  t.equal(h.simulator.callsTo('images').length, 0, 'Incode was never called')
})

t.test('a frontend on another origin may send If-None-Match and read the ETag', async (t) => {
  const origin = 'https://app.example.test'
  const h = await buildForRoutes(t, { env: { CORS_ORIGINS: origin } })
  const preflight = await h.app.inject({
    method: 'OPTIONS',
    url: '/v1/session/images/selfie',
    headers: {
      origin,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'x-incode-session-token, if-none-match',
    },
  })
  t.match(String(preflight.headers['access-control-allow-headers']), /if-none-match/, 'If-None-Match allowed')
  const res = await get(h, '/v1/session/images/selfie', {
    origin,
    'x-incode-session-token': h.simulator.sessionToken(small),
  })
  t.equal(res.statusCode, 200, '200')
  t.match(String(res.headers['access-control-expose-headers']), /\betag\b/, 'ETag exposed to the page')
})
