import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { tokenHash } from '../../src/auth/tokenVerdicts.js'
import type { AccessEvent } from '../../src/domain/accessEvent.js'
import { sha256Hex } from '../../src/auth/apiKeys.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders, PARTNER_KEY, TEST_API_KEYS, type Harness } from '../helpers/build.js'

const { small, secondId, full } = SEEDED_INTERVIEW_IDS
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const TRACEPARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`

/** Waits (bounded by tap's own timeout) until the trail holds an event for `requestId`. */
async function eventFor(harness: Harness, requestId: string): Promise<AccessEvent> {
  for (;;) {
    const found = harness.trail().find((e) => e.requestId === requestId)
    if (found) return found
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function requestIdOf(res: LightMyRequestResponse): string {
  return String(res.headers['x-request-id'])
}

const tokenCaller = (token: string) => `token:${tokenHash(token).slice(0, 16)}`

interface Case {
  method: 'POST' | 'DELETE' | 'GET'
  url: string
  route: string
  headers: Record<string, string>
  body?: unknown
  expect: Record<string, unknown>
}

function cases(harness: Harness): Case[] {
  const { simulator } = harness
  const smallToken = simulator.sessionToken(small)
  const secondToken = simulator.sessionToken(secondId)
  const tokenHeaders = { 'content-type': 'application/json', 'x-incode-session-token': smallToken }
  const dropIn = (token: string) => ({
    'content-type': 'application/json',
    'api-version': '1.0',
    'x-incode-hardware-id': token,
  })
  const partner = 'partner:test-partner'
  const asked = { images: ['signature', 'selfie', 'document', 'selfie'] }
  // In the one type order, duplicates folded.
  const imagesSeen = {
    asked: ['selfie', 'document', 'signature'],
    served: ['selfie', 'signature'],
    missing: ['document'],
  } as const
  const linksSeen = {
    asked: ['selfie', 'croppedFace'],
    served: ['selfie'],
    missing: ['croppedFace'],
  } as const
  const ok = { status: 200, outcome: 'served', failed: [] } as const
  const list: Case[] = [
    {
      method: 'POST',
      url: `/v1/sessions/${small}/images`,
      route: 'POST /v1/sessions/:interviewId/images',
      headers: partnerHeaders(),
      body: asked,
      expect: { ...ok, ...imagesSeen, caller: partner, interviewId: small },
    },
    {
      method: 'POST',
      url: '/v1/session/images',
      route: 'POST /v1/session/images',
      headers: tokenHeaders,
      body: asked,
      expect: { ...ok, ...imagesSeen, caller: tokenCaller(smallToken), interviewId: small },
    },
    {
      method: 'POST',
      url: `/v1/sessions/${secondId}/second-id/images`,
      route: 'POST /v1/sessions/:interviewId/second-id/images',
      headers: partnerHeaders(),
      body: { images: ['selfie', 'fullFrameFrontID'] },
      expect: {
        ...ok,
        caller: partner,
        interviewId: secondId,
        served: ['fullFrameFrontID'],
        missing: ['selfie'],
      },
    },
    {
      method: 'POST',
      url: `/v1/sessions/${small}/images/concatenated`,
      route: 'POST /v1/sessions/:interviewId/images/concatenated',
      headers: partnerHeaders(),
      body: {},
      expect: { ...ok, caller: partner, interviewId: small, served: [], missing: [] },
    },
    {
      method: 'POST',
      url: `/v1/sessions/${small}/image-links`,
      route: 'POST /v1/sessions/:interviewId/image-links',
      headers: partnerHeaders(),
      body: { images: ['croppedFace', 'selfie'] },
      expect: { ...ok, ...linksSeen, caller: partner, interviewId: small, cache: 'MISS' },
    },
    {
      method: 'POST',
      url: `/v1/sessions/${small}/image-links`,
      route: 'POST /v1/sessions/:interviewId/image-links',
      headers: partnerHeaders(),
      body: { images: ['croppedFace', 'selfie'] },
      expect: { ...ok, ...linksSeen, caller: partner, interviewId: small, cache: 'HIT' },
    },
    {
      method: 'POST',
      url: '/v1/session/image-links',
      route: 'POST /v1/session/image-links',
      headers: tokenHeaders,
      body: { images: ['croppedFace', 'selfie'] },
      expect: { ...ok, ...linksSeen, caller: tokenCaller(smallToken), interviewId: small, cache: 'MISS' },
    },
    {
      method: 'GET',
      url: `/v1/sessions/${small}/images/selfie`,
      route: 'GET /v1/sessions/:interviewId/images/:type',
      headers: { 'x-api-key': PARTNER_KEY },
      expect: {
        ...ok,
        caller: partner,
        interviewId: small,
        asked: ['selfie'],
        served: ['selfie'],
        missing: [],
      },
    },
    {
      method: 'GET',
      url: '/v1/session/images/selfie',
      route: 'GET /v1/session/images/:type',
      headers: { 'x-incode-session-token': smallToken },
      expect: {
        ...ok,
        caller: tokenCaller(smallToken),
        interviewId: small,
        asked: ['selfie'],
        served: ['selfie'],
        missing: [],
      },
    },
    {
      method: 'DELETE',
      url: `/v1/sessions/${small}/image-links`,
      route: 'DELETE /v1/sessions/:interviewId/image-links',
      headers: { 'x-api-key': PARTNER_KEY },
      expect: { ...ok, caller: partner, interviewId: small, cache: 'INVALIDATED', dropped: Number },
    },
  ]
  for (const zero of ['', '/0']) {
    // The /0 forms name no interview: the token's own claim is the one recorded.
    const id = zero === '' ? `?id=${small}` : ''
    const secondIdQuery = zero === '' ? `?id=${secondId}` : ''
    list.push(
      {
        method: 'POST',
        url: `${zero}/omni/get/images${id}`,
        route: `POST ${zero}/omni/get/images`,
        headers: dropIn(smallToken),
        body: asked,
        expect: { ...ok, ...imagesSeen, caller: tokenCaller(smallToken), interviewId: small },
      },
      {
        method: 'POST',
        url: `${zero}/omni/get/images/v2${id}`,
        route: `POST ${zero}/omni/get/images/v2`,
        headers: dropIn(smallToken),
        body: { images: ['croppedFace', 'selfie'] },
        expect: { ...ok, ...linksSeen, caller: tokenCaller(smallToken), interviewId: small },
      },
      {
        method: 'POST',
        url: `${zero}/omni/get/second-id/images${secondIdQuery}`,
        route: `POST ${zero}/omni/get/second-id/images`,
        headers: dropIn(secondToken),
        body: { images: ['selfie', 'fullFrameFrontID'] },
        expect: {
          ...ok,
          caller: tokenCaller(secondToken),
          interviewId: secondId,
          served: ['fullFrameFrontID'],
          missing: ['selfie'],
        },
      },
      {
        method: 'POST',
        url: `${zero}/omni/get/concatenated-images${id}`,
        route: `POST ${zero}/omni/get/concatenated-images`,
        headers: dropIn(smallToken),
        expect: { ...ok, caller: tokenCaller(smallToken), interviewId: small },
      },
    )
  }
  return list
}

void t.test('every image and link route writes one event with the right fields', async (t) => {
  const harness = await build(t)
  const { app, simulator } = harness
  const answers: string[] = []
  const seenRoutes = new Set<string>()
  for (const c of cases(harness)) {
    const res = await app.inject({
      method: c.method,
      url: c.url,
      headers: { ...c.headers, traceparent: TRACEPARENT },
      ...(c.body === undefined ? {} : { payload: JSON.stringify(c.body) }),
    })
    t.equal(res.statusCode, 200, `${c.url} answers 200`)
    answers.push(res.body)
    const event = await eventFor(harness, requestIdOf(res))
    seenRoutes.add(event.route)
    t.equal(event.route, c.route, `${c.url}: the route pattern, never the URL`)
    t.match(event, c.expect, `${c.url}: caller, interview, types, status, outcome, cache`)
    t.equal(event.traceId, TRACE_ID, `${c.url}: the trace ID of the caller's traceparent`)
    t.ok(Number.isFinite(Date.parse(event.time)), `${c.url}: an ISO time`)
    if (res.headers['content-length'] !== undefined)
      t.equal(event.bytes, Number(res.headers['content-length']), `${c.url}: the bytes sent`)
    if (!('asked' in c.expect) && (c.body as { images?: unknown } | undefined)?.images === undefined)
      t.notOk('asked' in event, `${c.url}: nothing asked, nothing listed`)
  }
  t.equal(seenRoutes.size, 17, 'the 9 /v1 routes and the 8 drop-in paths each have their event')
  t.equal(harness.trail().length, cases(harness).length, 'one event per request, no more')

  const probe = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(probe.statusCode, 200, 'the probe answers')
  t.notOk(
    harness.trail().some((e) => e.requestId === requestIdOf(probe)),
    'a request touching no image has no event',
  )

  // What the answers carried must be nowhere in the trail: links, base64, tokens, query strings.
  const lines = harness.trail().map((e) => JSON.stringify(e))
  const text = lines.join('\n')
  const links = answers.flatMap((body) => body.match(/https?:\/\/[^"]+/g) ?? [])
  t.ok(links.length > 0, 'the link answers held links')
  t.notOk(
    links.some((link) => text.includes(link) || text.includes(new URL(link).pathname)),
    'no link',
  )
  const base64 = answers
    .flatMap((body) => body.match(/[A-Za-z0-9+/]{200,}/g) ?? [])
    .map((b) => b.slice(0, 40))
  t.ok(base64.length > 0, 'the image answers held base64')
  t.notOk(
    base64.some((run) => text.includes(run)),
    'no image data',
  )
  for (const secret of [PARTNER_KEY, simulator.sessionToken(small), simulator.sessionToken(secondId)])
    t.notOk(text.includes(secret), 'no credential')
  t.notOk(/\?|id=/.test(text), 'no query string')
})

void t.test('the single-image routes: the type asked, and missing or failed when not served', async (t) => {
  // fullFrameFrontID of the full session (~4.7 MB as base64) alone exceeds this cap.
  const harness = await build(t, { simulator: { responseCapBytes: 4_500_000 } })
  const get = (url: string) =>
    harness.app.inject({ method: 'GET', url, headers: { 'x-api-key': PARTNER_KEY } })
  const lacking = await get(`/v1/sessions/${small}/images/fullFrameBackID`)
  t.equal(lacking.statusCode, 404, 'a type the session lacks: 404')
  t.match(
    await eventFor(harness, requestIdOf(lacking)),
    {
      status: 404,
      code: 'IMAGE_NOT_FOUND',
      outcome: 'refused',
      asked: ['fullFrameBackID'],
      served: [],
      missing: ['fullFrameBackID'],
      failed: [],
    },
    'a type the session lacks is recorded as asked and missing',
  )
  const tooLarge = await get(`/v1/sessions/${full}/images/fullFrameFrontID`)
  t.equal(tooLarge.statusCode, 502, 'a type too large alone: 502')
  t.match(
    await eventFor(harness, requestIdOf(tooLarge)),
    {
      status: 502,
      code: 'IMAGE_TOO_LARGE',
      outcome: 'failed',
      asked: ['fullFrameFrontID'],
      served: [],
      missing: [],
      failed: ['fullFrameFrontID'],
    },
    'a type too large alone is recorded as asked and failed',
  )
})

void t.test('refused calls are recorded: 401, 403, and the rate limiter’s 429', async (t) => {
  const LINKS_ONLY_KEY = 'links-only-key-0123456789'
  const keys = JSON.parse(TEST_API_KEYS) as unknown[]
  keys.push({ name: 'links-only', scopes: ['links:read'], sha256: sha256Hex(LINKS_ONLY_KEY) })
  const harness = await build(t, { env: { API_KEYS: JSON.stringify(keys), RATE_LIMIT_MAX: '2' } })
  const call = (headers: Record<string, string>) =>
    harness.app.inject({
      method: 'POST',
      url: `/v1/sessions/${small}/images`,
      headers: { 'content-type': 'application/json', ...headers },
      payload: JSON.stringify({ images: ['selfie'] }),
    })

  const seen = async (res: LightMyRequestResponse) =>
    [res.statusCode, await eventFor(harness, requestIdOf(res))] as const
  const [noKeyStatus, noKey] = await seen(await call({}))
  t.equal(noKeyStatus, 401, 'no key: 401')
  t.match(
    noKey,
    { status: 401, code: 'API_KEY_MISSING', outcome: 'refused', caller: 'none', ip: '127.0.0.1' },
    'who tried: an address',
  )
  t.match(noKey, { interviewId: small, served: [] }, 'the interview it named, nothing served')
  t.notOk('asked' in noKey, 'the body of a refused call is never read')

  const [badKeyStatus, badKey] = await seen(await call({ 'x-api-key': 'not-a-valid-key-987654321' }))
  t.equal(badKeyStatus, 401, 'a wrong key: 401')
  t.match(
    badKey,
    { status: 401, code: 'API_KEY_INVALID', outcome: 'refused', caller: 'none' },
    'recorded, key not named',
  )

  const [scopeStatus, scope] = await seen(await call({ 'x-api-key': LINKS_ONLY_KEY }))
  t.equal(scopeStatus, 403, 'a key without images:read: 403')
  t.match(
    scope,
    { status: 403, code: 'SCOPE_MISSING', outcome: 'refused', caller: 'partner:links-only' },
    'the partner that tried',
  )

  // The address has used its 2 requests in this window: the limiter refuses the next one.
  const [limitedStatus, limited] = await seen(await call({}))
  t.equal(limitedStatus, 429, 'the rate limiter refuses: 429')
  t.match(limited, { status: 429, code: 'RATE_LIMITED', outcome: 'refused' }, 'the 429 is recorded')
})

/** Blocks this thread for `ms` without using the CPU: the event loop stalls (as in shedding.test.ts). */
function stallEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

void t.test('a request shed by load shedding (503) is recorded as refused', async (t) => {
  const harness = await build(t, { env: { SHED_EVENT_LOOP_DELAY_MS: '200' } })
  stallEventLoop(2_500)
  // Every timer due during the stall runs first: the sampler has seen it.
  await new Promise((resolve) => setTimeout(resolve, 1))
  const res = await harness.app.inject({
    method: 'POST',
    url: `/v1/sessions/${small}/image-links`,
    headers: partnerHeaders(),
    payload: JSON.stringify({ images: ['selfie'] }),
  })
  t.equal(res.statusCode, 503, 'shed')
  t.match(
    await eventFor(harness, requestIdOf(res)),
    { status: 503, code: 'OVERLOADED', outcome: 'refused' },
    'recorded as refused',
  )
})

async function abortAfter(t: Test, harness: Harness, whenToAbort: 'headers' | 'before-headers') {
  const controller = new AbortController()
  const res = fetch(`${harness.url}/v1/sessions/${full}/images`, {
    method: 'POST',
    headers: { ...partnerHeaders(), 'x-request-id': `abort-${whenToAbort}` },
    body: JSON.stringify({ images: ['selfie', 'fullFrameFrontID', 'fullFrameBackID', 'document'] }),
    signal: controller.signal,
  })
  if (whenToAbort === 'headers') {
    const answer = await res
    t.equal(answer.status, 200, 'the status line came')
    // Read one piece of the body, then leave.
    const reader = answer.body?.getReader()
    await reader?.read()
    controller.abort()
  } else {
    // The upstream answers after a long latency: leave once the upstream calls are under way.
    while (harness.app.incode.callCount === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    controller.abort()
    await res.catch(() => undefined)
  }
  return eventFor(harness, `abort-${whenToAbort}`)
}

void t.test('a caller leaving half-way still gets its event: cut, or disconnected', async (t) => {
  const cutHarness = await build(t, { listen: true })
  const cut = await abortAfter(t, cutHarness, 'headers')
  t.match(
    cut,
    { status: 200, outcome: 'cut', caller: 'partner:test-partner', interviewId: full },
    'cut after the status line',
  )
  t.ok((cut.bytes ?? 0) > 0, `the bytes that went out are counted (${String(cut.bytes)})`)

  const slowHarness = await build(t, {
    listen: true,
    simulator: { latency: { fixedMs: 60_000, perMiBMs: 0 } },
  })
  await slowHarness.app.adminTokens?.get({ deadlineAt: Date.now() + 30_000 })
  const gone = await abortAfter(t, slowHarness, 'before-headers')
  t.match(gone, { status: 499, outcome: 'disconnected', served: [] }, 'left before the status line: 499')
})

void t.test('an answer that completes on a real socket counts its bytes, headers included', async (t) => {
  const harness = await build(t, { listen: true })
  const res = await fetch(`${harness.url}/v1/sessions/${small}/images`, {
    method: 'POST',
    headers: { ...partnerHeaders(), 'x-request-id': 'bytes-check' },
    body: JSON.stringify({ images: ['selfie'] }),
  })
  const body = Buffer.from(await res.arrayBuffer())
  const event = await eventFor(harness, 'bytes-check')
  t.equal(event.outcome, 'served', 'served')
  t.ok((event.bytes ?? 0) > body.length, `more than the body's ${body.length} bytes (${String(event.bytes)})`)
  t.ok((event.bytes ?? 0) < body.length + 2_000, 'and no more than the body and its headers')
})
