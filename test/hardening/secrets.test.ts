import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { SEEDED_INTERVIEW_IDS, type Simulator } from '../../src/simulator/index.js'
import { build, PARTNER_KEY } from '../helpers/build.js'
import {
  apiKeys,
  HARDENING_ENV,
  keyEntry,
  latestBytes,
  LogCapture,
  parseJson,
  sessionOf,
  type Json,
} from './helpers.js'
import { recordingProxy } from './proxy.js'

/**
 * Everything the service logs (at trace level) over a run of mixed traffic — good and bad requests
 * on every route, upstream faults, admin log-ins, refused credentials, drop-in calls with tokens —
 * holds no credential, token, image data or link signature; every line is JSON, and request lines
 * carry the request id.
 */

const { full, small, secondId } = SEEDED_INTERVIEW_IDS
const WRONG_KEY = 'secrets-wrong-partner-key-0123456789abcdef'
const LINKS_ONLY_KEY = 'secrets-links-only-partner-key-0123456789'
const CLIENT_INCODE_KEY = 'secrets-client-own-incode-key-0123456789'
/** Every token the simulator signs (session and admin) is a JWT starting with this header. */
const JWT_PREFIX = 'eyJhbGciOi'

function json(
  headers: Record<string, string>,
  body: unknown,
  url: string,
  method: 'POST' | 'DELETE' = 'POST',
): InjectOptions {
  return {
    method,
    url,
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  }
}

/** X-Amz-Signature values of every link in a links answer (v1 or Incode shape). */
function signaturesIn(body: unknown): string[] {
  const found = new Set<string>()
  for (const match of JSON.stringify(body ?? null).matchAll(/X-Amz-Signature=([0-9a-fA-F]+)/g)) {
    if (match[1]) found.add(match[1])
  }
  return [...found]
}

/** A 64-character slice from the middle of a base64 string. */
function sliceOf(base64: string): string {
  const at = Math.floor(base64.length / 2)
  return base64.slice(at, at + 64)
}

t.test('logs hold no secret, and every request line carries its id', async (t) => {
  const capture = new LogCapture()
  const proxy = await recordingProxy(t)
  const env = {
    ...HARDENING_ENV,
    LOG_LEVEL: 'trace',
    // The faults below must not leave the breaker open for the requests after them.
    BREAKER_FAILURE_THRESHOLD: '100000',
    API_KEYS: apiKeys(keyEntry('links-only', LINKS_ONLY_KEY, ['links:read'])),
  }
  const open = await build(t, { env: { ...env, INCODE_BASE_URL: proxy.url }, logStream: capture })
  proxy.target = open.simulator.url
  const strict = await build(t, { env: { ...env, DROPIN_KEY_REQUIRED: 'true' }, logStream: capture })

  const tokens = new Set<string>()
  const signatures = new Set<string>()
  const base64Slices = new Set<string>()
  const tokenOf = (simulator: Simulator, id: string) => {
    const token = simulator.sessionToken(id)
    tokens.add(token)
    return token
  }
  const partner = { 'x-api-key': PARTNER_KEY }

  /** Sends a request, keeping any links' signatures and images' data the answer holds. */
  const send = async (app: FastifyInstance, options: InjectOptions) => {
    const res = await app.inject(options)
    const body: Json = parseJson(res.body)
    for (const signature of signaturesIn(body)) signatures.add(signature)
    const images = body?.images && typeof body.images === 'object' ? body.images : body
    for (const value of Object.values((images ?? {}) as Record<string, unknown>)) {
      if (typeof value === 'string' && value.length > 1_000) base64Slices.add(sliceOf(value))
    }
    if (typeof body?.image === 'string') base64Slices.add(sliceOf(body.image))
    return res
  }

  for (const { app, simulator } of [open, strict]) {
    const smallToken = tokenOf(simulator, small)
    const fullToken = tokenOf(simulator, full)
    const secondToken = tokenOf(simulator, secondId)
    const dropKey = app === strict.app ? { 'x-api-key': PARTNER_KEY } : { 'x-api-key': CLIENT_INCODE_KEY }

    // Good traffic on every route (the first partner call logs in as admin).
    await send(app, json(partner, { images: ['selfie', 'signature'] }, `/v1/sessions/${small}/images`))
    await send(app, json(partner, { images: ['selfie', 'fullFrameFrontID'] }, `/v1/sessions/${full}/images`))
    await send(
      app,
      json(partner, { images: ['croppedSecondIDFace'] }, `/v1/sessions/${secondId}/second-id/images`),
    )
    await send(app, json(partner, {}, `/v1/sessions/${small}/images/concatenated`))
    await send(
      app,
      json(partner, { images: ['selfie', 'fullFrameFrontID'] }, `/v1/sessions/${full}/image-links`),
    )
    await send(
      app,
      json(partner, { images: ['selfie', 'fullFrameFrontID'] }, `/v1/sessions/${full}/image-links`),
    )
    await send(
      app,
      json({ 'x-api-key': LINKS_ONLY_KEY }, { images: ['selfie'] }, `/v1/sessions/${small}/image-links`),
    )
    await send(app, json(partner, '', `/v1/sessions/${full}/image-links`, 'DELETE'))
    await send(
      app,
      json({ 'x-incode-session-token': smallToken }, { images: ['selfie'] }, '/v1/session/images'),
    )
    await send(
      app,
      json({ 'x-incode-session-token': fullToken }, { images: ['selfie'] }, '/v1/session/image-links'),
    )
    for (const path of [
      '/omni/get/images',
      '/0/omni/get/images',
      '/omni/get/images/v2',
      '/0/omni/get/images/v2',
      '/omni/get/concatenated-images',
    ]) {
      await send(
        app,
        json({ ...dropKey, 'x-incode-hardware-id': fullToken }, { images: ['selfie', 'signature'] }, path),
      )
    }
    await send(
      app,
      json(
        { ...dropKey, 'x-incode-hardware-id': secondToken },
        { images: ['fullFrameFrontID'] },
        '/omni/get/second-id/images',
      ),
    )
    await send(
      app,
      json(
        { ...dropKey, 'x-incode-hardware-id': smallToken },
        { images: ['signature'] },
        `/omni/get/images?id=${small}`,
      ),
    )

    // Refused credentials and bad requests.
    await send(app, json({ 'x-api-key': WRONG_KEY }, { images: ['selfie'] }, `/v1/sessions/${small}/images`))
    await send(app, json({}, { images: ['selfie'] }, `/v1/sessions/${small}/images`))
    await send(
      app,
      json({ 'x-api-key': LINKS_ONLY_KEY }, { images: ['selfie'] }, `/v1/sessions/${small}/images`),
    )
    await send(
      app,
      json(
        { authorization: `Bearer ${PARTNER_KEY}`, cookie: `token=${smallToken}` },
        { images: ['selfie'] },
        `/v1/sessions/${small}/images`,
      ),
    )
    await send(
      app,
      json({ 'x-incode-session-token': `${smallToken}x` }, { images: ['selfie'] }, '/v1/session/images'),
    )
    await send(
      app,
      json(
        { 'x-incode-hardware-id': `${fullToken.slice(0, -4)}AAAA`, ...dropKey },
        { images: ['selfie'] },
        '/omni/get/images',
      ),
    )
    await send(
      app,
      json(
        { 'x-incode-hardware-id': smallToken, 'x-api-key': WRONG_KEY },
        { images: ['selfie'] },
        '/omni/get/images',
      ),
    )
    await send(
      app,
      json(
        partner,
        { images: ['selfie'], 'x-api-key': PARTNER_KEY, 'X-Incode-Hardware-Id': smallToken },
        `/v1/sessions/${small}/images`,
      ),
    )
    await send(
      app,
      json(
        { 'x-incode-hardware-id': smallToken },
        `{"images":["selfie"],"token":"${smallToken}"`,
        '/omni/get/images',
      ),
    )
    await send(
      app,
      json(
        partner,
        { images: ['selfie'], pad: `${smallToken}${'x'.repeat(70_000)}` },
        `/v1/sessions/${small}/images`,
      ),
    )
    await send(
      app,
      json(
        { ...partner, 'x-incode-session-token': smallToken },
        { images: [smallToken] },
        '/v1/session/images',
      ),
    )
    await send(app, { method: 'GET', url: '/metrics', headers: partner })
    await send(app, { method: 'GET', url: '/docs/json', headers: partner })
    await send(app, { method: 'GET', url: '/readyz' })

    // Upstream faults, with tokens and keys in flight.
    for (const faults of [
      { errorRate: 1, errorStatus: 500 },
      { errorRate: 1, errorStatus: 401 },
      { resetRate: 1 },
      { truncateRate: 1 },
      { malformedRate: 1 },
    ]) {
      simulator.setFaults(faults)
      await send(
        app,
        json(partner, { images: ['selfie', 'fullFrameFrontID'] }, `/v1/sessions/${full}/images`),
      )
      await send(app, json(partner, { images: ['signature'] }, `/v1/sessions/${small}/image-links`))
      await send(
        app,
        json({ 'x-incode-session-token': smallToken }, { images: ['selfie'] }, '/v1/session/images'),
      )
      await send(
        app,
        json({ ...dropKey, 'x-incode-hardware-id': fullToken }, { images: ['selfie'] }, '/omni/get/images'),
      )
      await send(
        app,
        json({ ...dropKey, 'x-incode-hardware-id': fullToken }, {}, '/omni/get/concatenated-images'),
      )
    }
    // A failing admin log-in (a fresh log-in is forced by a new app below too).
    simulator.setFaults({ loginFailure: true })
    app.linkCache.clear()
    await send(app, json(partner, { images: ['signature'] }, `/v1/sessions/${small}/image-links`))
    await send(app, { method: 'GET', url: '/readyz' })
    simulator.setFaults(undefined)
  }

  // A log-in that fails, then one that works, in a fresh app.
  const fresh = await build(t, { env: { ...env }, logStream: capture })
  fresh.simulator.setFaults({ loginFailure: true })
  await send(fresh.app, json(partner, { images: ['signature'] }, `/v1/sessions/${small}/images`))
  fresh.simulator.setFaults(undefined)
  await send(fresh.app, json(partner, { images: ['signature'] }, `/v1/sessions/${small}/images`))

  // A caller-chosen request id is used, returned and passed to Incode.
  const requestId = 'secrets-test-request-0001'
  const openToken = tokenOf(open.simulator, small)
  const splitTodo = {}
  for (const [what, options, todo] of [
    ['v1 images', json(partner, { images: ['signature'] }, `/v1/sessions/${small}/images`), splitTodo],
    ['v1 links', json(partner, { images: ['addressStatement'] }, `/v1/sessions/${full}/image-links`), {}],
    ['v1 concatenated', json(partner, {}, `/v1/sessions/${small}/images/concatenated`), {}],
    [
      'drop-in images',
      json({ 'x-incode-hardware-id': openToken }, { images: ['signature'] }, '/omni/get/images'),
      splitTodo,
    ],
    [
      'drop-in links',
      json({ 'x-incode-hardware-id': openToken }, { images: ['signature'] }, '/omni/get/images/v2'),
      {},
    ],
  ] as const) {
    const before = proxy.seen.length
    const traced = await send(open.app, {
      ...options,
      headers: { ...(options.headers as Record<string, string>), 'x-request-id': requestId },
    })
    t.equal(traced.statusCode, 200, `${what} with a caller-chosen request id is served`)
    t.equal(traced.headers['x-request-id'], requestId, `${what}: the request id is returned in the answer`)
    const upstream = proxy.seen.slice(before)
    t.ok(upstream.length > 0, `${what}: Incode was called`)
    t.ok(
      upstream.length > 0 && upstream.every((seen) => seen.headers['x-request-id'] === requestId),
      `${what}: the request id is passed to Incode`,
      todo,
    )
  }

  await new Promise((resolve) => setImmediate(resolve))
  const text = capture.text
  const lines = capture.lines

  // Base64 of images known from the simulator too, in case an answer above was refused.
  for (const [id, types] of [
    [small, ['selfie', 'signature', 'fullFrameFrontID']],
    [full, ['selfie', 'fullFrameFrontID', 'fullFrameBackID']],
  ] as const) {
    for (const type of types) {
      const bytes = latestBytes(sessionOf(open.simulator, id).images, type)
      if (bytes) base64Slices.add(sliceOf(bytes.toString('base64')))
    }
  }

  t.ok(lines.length > 200, `a substantial log was captured (${lines.length} lines)`)
  t.ok(tokens.size >= 3, 'session tokens were used')
  t.ok(signatures.size >= 4, `link signatures were served (${signatures.size})`)
  t.ok(base64Slices.size >= 5, `image data was served (${base64Slices.size} samples)`)

  const secrets: Array<[string, string]> = [
    ['the partner key', PARTNER_KEY],
    ['a links-only partner key', LINKS_ONLY_KEY],
    ['a wrong partner key', WRONG_KEY],
    ["a client's own Incode key", CLIENT_INCODE_KEY],
    ['the Incode API key', open.simulator.apiKey],
    ['the admin password', open.simulator.adminPassword],
    ['a JWT (admin or session token)', JWT_PREFIX],
    ...[...tokens].map((token, i): [string, string] => [`session token ${i + 1}`, token.slice(-43)]),
    ...[...base64Slices].map((slice, i): [string, string] => [`image data sample ${i + 1}`, slice]),
    ...[...signatures].map((signature, i): [string, string] => [`link signature ${i + 1}`, signature]),
  ]
  for (const [what, secret] of secrets) {
    const at = text.indexOf(secret)
    t.equal(
      at,
      -1,
      `no log line holds ${what}${at === -1 ? '' : `: …${text.slice(Math.max(0, at - 120), at + 40)}…`}`,
    )
  }
  t.notMatch(text, /X-Amz-Signature=/, 'no log line holds a signed link')

  // Every line is JSON; every line about a request carries its id.
  interface LogLine {
    reqId?: unknown
    msg?: unknown
    req?: unknown
    res?: unknown
    responseTime?: unknown
    err?: unknown
  }
  const parsed = lines.map((line): LogLine | undefined => {
    const value: unknown = parseJson(line)
    return typeof value === 'object' && value !== null ? value : undefined
  })
  t.same(
    lines.filter((_, i) => parsed[i] === undefined),
    [],
    'every log line is a JSON object',
  )
  const requestLines = parsed.filter((p) => p && (p.req || p.res || p.responseTime !== undefined || p.err))
  t.ok(requestLines.length > 100, `request lines were logged (${requestLines.length})`)
  t.same(
    requestLines.filter((p) => typeof p?.reqId !== 'string' || p.reqId === '').map((p) => p?.msg),
    [],
    'every request line carries a reqId',
  )
  const withoutId = parsed.filter((p) => p && typeof p.reqId !== 'string')
  t.same(
    withoutId.map((p) => p?.msg),
    [],
    'no line is logged outside a request (nothing at start-up or shutdown with inject)',
  )
  t.ok(
    parsed.some((p) => p?.reqId === requestId),
    'the caller-chosen request id appears as reqId',
  )
})

t.test('a token sent as the id query parameter is not logged', async (t) => {
  const capture = new LogCapture()
  const { app, simulator } = await build(t, {
    env: { ...HARDENING_ENV, LOG_LEVEL: 'info' },
    logStream: capture,
  })
  const token = simulator.sessionToken(small)
  // A broken client from the reference page: the token as `id`, with and without the header.
  for (const headers of [{ 'x-incode-hardware-id': token }, {}] as Array<Record<string, string>>) {
    const res = await app.inject(json(headers, { images: ['selfie'] }, `/omni/get/images?id=${token}`))
    t.equal(res.statusCode, 400, 'the call is refused')
  }
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(capture.lines.length > 0, 'the requests were logged')
  t.equal(capture.text.indexOf(token.slice(-43)), -1, "the token's signature is not in the log")
  t.equal(capture.text.indexOf(JWT_PREFIX), -1, 'no JWT is in the log')
})
