import t, { type Test } from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS, type Simulator } from '../../src/simulator/index.js'
import type { Harness } from '../helpers/build.js'
import {
  buildForRoutes,
  fakeClock,
  latestOf,
  sessionOf,
  type Json,
  warmSeededSessions,
} from './fixtures/helpers.js'

warmSeededSessions()

const { full, small, secondId } = SEEDED_INTERVIEW_IDS

interface Exchange {
  /** Path and query, e.g. `/omni/get/images?id=…` or `/0/omni/get/images`. */
  path: string
  token?: string
  /** The client's own x-api-key (not sent on /0 paths). */
  apiKey?: string
  /** JSON-encoded; undefined sends no body at all. */
  body?: unknown
}

interface Answer {
  status: number
  text: string
  json: Json
  headers: Record<string, string | string[] | number | undefined>
}

function headersOf(exchange: Exchange): Record<string, string> {
  const headers: Record<string, string> = { 'api-version': '1.0' }
  if (exchange.body !== undefined) headers['content-type'] = 'application/json'
  if (exchange.token !== undefined) headers['x-incode-hardware-id'] = exchange.token
  if (exchange.apiKey !== undefined) headers['x-api-key'] = exchange.apiKey
  return headers
}

function parse(text: string): Json {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The request sent straight to the simulator, as an existing Incode client does. */
async function direct(simulator: Simulator, exchange: Exchange): Promise<Answer> {
  const res = await fetch(`${simulator.url}${exchange.path}`, {
    method: 'POST',
    headers: headersOf(exchange),
    ...(exchange.body === undefined ? {} : { body: JSON.stringify(exchange.body) }),
  })
  const text = await res.text()
  return { status: res.status, text, json: parse(text), headers: Object.fromEntries(res.headers) }
}

/** The same request through the gateway. */
async function viaGateway(app: Harness['app'], exchange: Exchange): Promise<Answer> {
  const res = await app.inject({
    method: 'POST',
    url: exchange.path,
    headers: headersOf(exchange),
    ...(exchange.body === undefined ? {} : { payload: JSON.stringify(exchange.body) }),
  })
  return { status: res.statusCode, text: res.body, json: parse(res.body), headers: res.headers }
}

/** Both answers: same status, same JSON. */
async function assertSameAnswer(t: Test, harness: Harness, exchange: Exchange, what: string) {
  const expected = await direct(harness.simulator, exchange)
  const actual = await viaGateway(harness.app, exchange)
  t.equal(actual.status, expected.status, `${what}: status ${expected.status} as Incode`)
  t.ok(expected.json !== undefined, `${what}: Incode answered JSON`)
  if (actual.status < 400) {
    t.ok(
      JSON.stringify(sortKeys(actual.json)) === JSON.stringify(sortKeys(expected.json)),
      `${what}: the same JSON as Incode`,
    )
  } else {
    const { timestamp: _a, ...actualRest } = actual.json ?? {}
    const { timestamp: _e, ...expectedRest } = expected.json ?? {}
    t.same(actualRest, expectedRest, `${what}: the same error body as Incode, timestamp aside`)
    t.type(actual.json?.timestamp, 'number', `${what}: with a timestamp`)
  }
  return { expected, actual }
}

/** A JSON value with object keys sorted, so answers compare whatever their key order. */
function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.keys(value as object)
      .sort()
      .map((key) => [key, sortKeys(value[key])]),
  )
}

/** A simulator clock frozen on a whole second, so two calls sign identical links. */
async function frozen(t: Test): Promise<Harness> {
  const clock = fakeClock(Math.floor(Date.now() / 1000) * 1000)
  return buildForRoutes(t, { simulator: { now: clock.now } })
}

t.test('drop-in base64 paths answer exactly as Incode does', async (t) => {
  const harness = await frozen(t)
  const { simulator } = harness
  const token = simulator.sessionToken(small)
  const apiKey = simulator.apiKey
  // In image-type order, so the one upstream call asks exactly what the client asked.
  const body = { images: ['selfie', 'croppedFace', 'document', 'signature'] }

  const withId = await assertSameAnswer(
    t,
    harness,
    { path: `/omni/get/images?id=${small}`, token, apiKey, body },
    '/omni/get/images?id=',
  )
  t.ok(withId.actual.text === withId.expected.text, 'one upstream call: Incode’s bytes passed on untouched')
  t.equal(withId.actual.json.document, null, 'a type the session lacks is null, as Incode answers')
  t.equal(withId.actual.headers['cache-control'], 'no-store, private', 'no-store')

  await assertSameAnswer(
    t,
    harness,
    { path: '/omni/get/images', token, apiKey, body: { images: ['signature', 'document', 'selfie'] } },
    'without id, in another order',
  )
  await assertSameAnswer(t, harness, { path: '/0/omni/get/images', token, body }, '/0 with the token alone')
  await assertSameAnswer(
    t,
    harness,
    { path: `/0/omni/get/images?id=${small}`, token, body: { images: ['selfie', 'selfie'] } },
    '/0 with id and a duplicate',
  )
  await assertSameAnswer(
    t,
    harness,
    {
      path: `/omni/get/second-id/images?id=${secondId}`,
      token: simulator.sessionToken(secondId),
      apiKey,
      body: { images: ['fullFrameFrontID', 'croppedSecondIDFace', 'selfie'] },
    },
    '/omni/get/second-id/images',
  )
  await assertSameAnswer(
    t,
    harness,
    {
      path: `/omni/get/images?id=${small}`,
      token: simulator.adminToken(),
      apiKey,
      body: { images: ['selfie'] },
    },
    'with an admin token',
  )
  const gatewayCalls = simulator.callsTo('images').length + simulator.callsTo('secondIdImages').length
  t.equal(gatewayCalls, 12, 'one gateway call per direct call for these small lists')
})

t.test('drop-in links (/omni/get/images/v2) answer exactly as Incode does', async (t) => {
  const harness = await frozen(t)
  const { simulator } = harness
  const token = simulator.sessionToken(full)
  const body = { images: ['selfie', 'fullFrameFrontID', 'croppedFace', 'signature'] }
  const { actual } = await assertSameAnswer(
    t,
    harness,
    { path: `/omni/get/images/v2?id=${full}`, token, apiKey: simulator.apiKey, body },
    '/omni/get/images/v2',
  )
  t.ok(Object.keys(actual.json.selfie_prevAttempts).length >= 2, 'with every previous attempt')
  t.notOk('croppedFace' in actual.json, 'cropped types left out, as Incode does')
  await assertSameAnswer(
    t,
    harness,
    { path: '/0/omni/get/images/v2', token: simulator.sessionToken(small), body },
    '/0/omni/get/images/v2',
  )
})

t.test('drop-in concatenated images answer exactly as Incode does', async (t) => {
  const harness = await frozen(t)
  const { simulator } = harness
  const token = simulator.sessionToken(small)
  const apiKey = simulator.apiKey
  await assertSameAnswer(
    t,
    harness,
    { path: '/omni/get/concatenated-images', token, apiKey, body: {} },
    'with {}',
  )
  await assertSameAnswer(
    t,
    harness,
    { path: '/omni/get/concatenated-images', token, apiKey, body: { images: ['selfie', 'signature'] } },
    'with a list',
  )
  await assertSameAnswer(t, harness, { path: '/omni/get/concatenated-images', token, apiKey }, 'with no body')
  await assertSameAnswer(
    t,
    harness,
    { path: '/0/omni/get/concatenated-images', token: simulator.sessionToken(SEEDED_INTERVIEW_IDS.empty) },
    '/0, a session without images (404)',
  )
})

t.test('drop-in errors answer as Incode does', async (t) => {
  const harness = await frozen(t)
  const { simulator } = harness
  const apiKey = simulator.apiKey
  const body = { images: ['selfie'] }
  for (const path of [
    '/omni/get/images',
    '/0/omni/get/images',
    '/omni/get/images/v2',
    '/omni/get/second-id/images',
    '/omni/get/concatenated-images',
  ]) {
    const exchange = path.startsWith('/0')
      ? { path, token: 'bad-token', body }
      : { path, token: 'bad-token', apiKey, body }
    const { actual } = await assertSameAnswer(t, harness, exchange, `${path} with a bad token`)
    t.equal(actual.status, 401, `${path}: 401`)
  }
  const smallToken = simulator.sessionToken(small)
  await assertSameAnswer(
    t,
    harness,
    { path: `/omni/get/images?id=${full}`, token: smallToken, apiKey, body },
    'a session token for another interview (403)',
  )
  await assertSameAnswer(
    t,
    harness,
    { path: '/omni/get/images?id=ffffffffffffffffffffffff', token: simulator.adminToken(), apiKey, body },
    'an unknown interview (404)',
  )
  await assertSameAnswer(
    t,
    harness,
    { path: '/omni/get/images', token: simulator.adminToken(), apiKey, body },
    'an admin token without id (400)',
  )

  for (const path of ['/omni/get/images', '/omni/get/images/v2', '/0/omni/get/images']) {
    const exchange = { path, token: smallToken, apiKey, body: { images: ['selfie', 'passportPhoto'] } }
    const expected = await direct(simulator, exchange)
    const actual = await viaGateway(harness.app, exchange)
    t.equal(actual.status, 400, `${path}, unknown type: 400`)
    t.equal(expected.status, 400, `${path}, unknown type: Incode also answers 400`)
    t.match(actual.headers['content-type'], /^application\/json/, `${path}: JSON, not problem+json`)
    t.same(
      Object.keys(actual.json).sort(),
      ['error', 'message', 'path', 'status', 'timestamp'],
      `${path}: Incode's error shape`,
    )
    t.match(
      actual.json,
      { status: 400, error: 'Bad Request', path: path, message: /selfie/ },
      `${path}: status, error, path, and a message naming the allowed types`,
    )
  }
  const missing = await viaGateway(harness.app, { path: '/omni/get/images', apiKey, body })
  t.equal(missing.status, 401, 'no token: 401')
  t.same(
    Object.keys(missing.json).sort(),
    ['error', 'message', 'path', 'status', 'timestamp'],
    "no token: Incode's error shape",
  )
})

t.test('the full session (> 10 MB) through /omni/get/images comes back whole', async (t) => {
  const harness = await buildForRoutes(t)
  const { simulator, app } = harness
  const exchange = {
    path: `/omni/get/images?id=${full}`,
    token: simulator.sessionToken(full),
    apiKey: simulator.apiKey,
    body: { images: IMAGE_TYPES },
  }
  const expected = await direct(simulator, exchange)
  t.equal(expected.status, 502, 'Incode refuses the whole list (502)')
  simulator.resetCalls()
  const actual = await viaGateway(app, exchange)
  t.equal(actual.status, 200, 'the gateway answers 200')
  t.same(Object.keys(actual.json).sort(), [...IMAGE_TYPES].sort(), 'a flat object with every type')
  const session = sessionOf(simulator, full)
  for (const type of IMAGE_TYPES) {
    const latest = latestOf(session.images, type)
    t.ok(
      latest && Buffer.from(actual.json[type], 'base64').equals(latest.bytes),
      `${type} is byte-identical to the latest capture`,
    )
  }
  const calls = simulator.callsTo('images')
  t.ok(calls.length >= 2, `split over ${calls.length} upstream calls`)
  t.ok(
    calls.every((call) => call.status === 200 && call.tokenKind === 'session'),
    'each answered, with the caller’s session token',
  )
})

t.test('links through the drop-in path are cached', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const exchange = {
    path: `/omni/get/images/v2?id=${full}`,
    token: simulator.sessionToken(full),
    apiKey: simulator.apiKey,
    body: { images: ['selfie', 'document'] },
  }
  const first = await viaGateway(app, exchange)
  t.equal(first.status, 200, '200')
  t.equal(first.headers['x-cache'], 'MISS', 'first: MISS')
  const second = await viaGateway(app, exchange)
  t.equal(second.headers['x-cache'], 'HIT', 'second: HIT')
  t.same(second.json, first.json, 'the same answer')
  t.equal(simulator.callsTo('imageLinks').length, 1, 'no upstream call for the HIT')
  const zero = await viaGateway(app, { ...exchange, path: `/0/omni/get/images/v2?id=${full}` })
  t.equal(zero.status, 200, 'the /0 form: 200')
  t.equal(zero.headers['x-cache'], 'HIT', 'the /0 form with the same token shares the entry')
  const other = await viaGateway(app, { ...exchange, token: simulator.sessionToken(full) + 'x' })
  t.equal(other.status, 401, 'a different (bad) token is not served from the cache')
})
