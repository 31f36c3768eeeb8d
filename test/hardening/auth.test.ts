import t from 'tap'
import type { Scope } from '../../src/auth/apiKeys.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, PARTNER_KEY } from '../helpers/build.js'
import {
  apiKeys,
  assertIncodeError,
  assertProblem,
  HARDENING_ENV,
  keyEntry,
  parseJson,
  sessionOf,
  wrongImages,
} from './helpers.js'
import { recordingProxy } from './proxy.js'

const { small, secondId } = SEEDED_INTERVIEW_IDS

/** One key per scope, so that each route can be called with exactly its scope, or with another. */
const SCOPED_KEYS: Record<Scope, string> = {
  'images:read': 'hardening-images-only-key-000000000001',
  'links:read': 'hardening-links-only-key-0000000000002',
  'cache:write': 'hardening-cache-only-key-0000000000003',
  'metrics:read': 'hardening-metrics-only-key-00000000004',
  'docs:read': 'hardening-docs-only-key-000000000000005',
  'incode:proxy': 'hardening-proxy-only-key-0000000000006',
}
const API_KEYS = apiKeys(
  ...Object.entries(SCOPED_KEYS).map(([scope, key]) =>
    keyEntry(`only-${scope.replace(':', '-')}`, key, [scope as Scope]),
  ),
)
const WRONG_KEY = 'hardening-wrong-key-not-configured-anywhere'
const ALLOWED_ORIGIN = 'https://app.example.com'

interface PartnerRoute {
  name: string
  method: 'POST' | 'DELETE'
  url: string
  body?: unknown
  scope: Scope
}

const PARTNER_ROUTES: PartnerRoute[] = [
  {
    name: 'base64 images',
    method: 'POST',
    url: `/v1/sessions/${small}/images`,
    body: { images: ['signature'] },
    scope: 'images:read',
  },
  {
    name: 'second-ID images',
    method: 'POST',
    url: `/v1/sessions/${secondId}/second-id/images`,
    body: { images: ['croppedSecondIDFace'] },
    scope: 'images:read',
  },
  {
    name: 'concatenated images',
    method: 'POST',
    url: `/v1/sessions/${small}/images/concatenated`,
    body: { images: ['signature'] },
    scope: 'images:read',
  },
  {
    name: 'image links',
    method: 'POST',
    url: `/v1/sessions/${small}/image-links`,
    body: { images: ['signature'] },
    scope: 'links:read',
  },
  {
    name: 'drop cached links',
    method: 'DELETE',
    url: `/v1/sessions/${small}/image-links`,
    scope: 'cache:write',
  },
]

function call(route: PartnerRoute, key: string | undefined) {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (key !== undefined) headers['x-api-key'] = key
  return {
    method: route.method,
    url: route.url,
    headers,
    ...(route.body === undefined ? {} : { payload: JSON.stringify(route.body) }),
  }
}

t.test('partner routes: no key 401, wrong key 401, key without the scope 403, right key 200', async (t) => {
  const { app, simulator } = await build(t, { env: { ...HARDENING_ENV, API_KEYS } })

  for (const route of PARTNER_ROUTES) {
    const before = simulator.calls.length

    assertProblem(
      t,
      await app.inject(call(route, undefined)),
      401,
      'API_KEY_MISSING',
      `${route.name}, no key`,
    )
    assertProblem(t, await app.inject(call(route, '')), 401, 'API_KEY_MISSING', `${route.name}, empty key`)
    const wrong = await app.inject(call(route, WRONG_KEY))
    assertProblem(t, wrong, 401, 'API_KEY_INVALID', `${route.name}, wrong key`)
    t.notOk(wrong.body.includes(WRONG_KEY), `${route.name}: the presented key is not echoed`)
    // A configured key's hash presented as the key is not the key.
    assertProblem(
      t,
      await app.inject(call(route, keyEntry('x', PARTNER_KEY, ['images:read']).sha256)),
      401,
      'API_KEY_INVALID',
      `${route.name}, the key's hash instead of the key`,
    )
    for (const [scope, key] of Object.entries(SCOPED_KEYS)) {
      if (scope === route.scope) continue
      assertProblem(
        t,
        await app.inject(call(route, key)),
        403,
        'SCOPE_MISSING',
        `${route.name}, a key with only ${scope}`,
      )
    }
    t.equal(simulator.calls.length, before, `${route.name}: refused callers cause no upstream call`)

    const minimal = await app.inject(call(route, SCOPED_KEYS[route.scope]))
    t.equal(minimal.statusCode, 200, `${route.name}: a key with only ${route.scope} is served`)
    const full = await app.inject(call(route, PARTNER_KEY))
    t.equal(full.statusCode, 200, `${route.name}: a key with every scope is served`)
    t.type(parseJson(full.body), 'object', `${route.name}: the answer is JSON`)
  }

  // The served bytes are the right ones (the key check does not get in the way of the answer).
  const images = parseJson(
    (await app.inject(call(PARTNER_ROUTES[0] as PartnerRoute, SCOPED_KEYS['images:read']))).body,
  )
  t.same(
    wrongImages(images.images, sessionOf(simulator, small).images),
    [],
    'images served with a minimal key are the right bytes',
  )
})

t.test('session-token routes need no partner key', async (t) => {
  const { app, simulator } = await build(t, { env: { ...HARDENING_ENV, API_KEYS } })
  const token = simulator.sessionToken(small)
  for (const url of ['/v1/session/images', '/v1/session/image-links']) {
    const res = await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', 'x-incode-session-token': token },
      payload: JSON.stringify({ images: ['selfie', 'signature'] }),
    })
    t.equal(res.statusCode, 200, `${url}: a session token alone is enough`)
    const body = parseJson(res.body)
    t.ok(body?.images?.selfie, `${url}: the selfie is served`)
    if (url.endsWith('/images')) {
      t.same(wrongImages(body.images, sessionOf(simulator, small).images), [], `${url}: the right bytes`)
    }

    assertProblem(
      t,
      await app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ images: ['selfie'] }),
      }),
      401,
      'TOKEN_MISSING',
      `${url} without a session token`,
    )
    // A partner key is no substitute for the session token.
    assertProblem(
      t,
      await app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
        payload: JSON.stringify({ images: ['selfie'] }),
      }),
      401,
      'TOKEN_MISSING',
      `${url} with a partner key but no session token`,
    )
  }
})

t.test('drop-in paths with DROPIN_KEY_REQUIRED: the caller key is checked, then replaced', async (t) => {
  const proxy = await recordingProxy(t)
  const { app, simulator } = await build(t, {
    env: { ...HARDENING_ENV, API_KEYS, DROPIN_KEY_REQUIRED: 'true', INCODE_BASE_URL: proxy.url },
  })
  proxy.target = simulator.url
  const token = simulator.sessionToken(small)
  const expected = sessionOf(simulator, small).images

  for (const zero of [false, true]) {
    const path = `${zero ? '/0' : ''}/omni/get/images`
    const send = (key: string | undefined) =>
      app.inject({
        method: 'POST',
        url: path,
        headers: {
          'content-type': 'application/json',
          'x-incode-hardware-id': token,
          ...(key === undefined ? {} : { 'x-api-key': key }),
        },
        payload: JSON.stringify({ images: ['selfie', 'signature'] }),
      })

    const seenBefore = proxy.seen.length
    assertIncodeError(t, await send(undefined), 401, path, `${path} without a key`)
    const wrong = await send(WRONG_KEY)
    assertIncodeError(t, wrong, 401, path, `${path} with a wrong key`)
    t.notOk(wrong.body.includes(WRONG_KEY), `${path}: the wrong key is not echoed`)
    assertIncodeError(
      t,
      await send(SCOPED_KEYS['links:read']),
      403,
      path,
      `${path} with a key lacking incode:proxy`,
    )
    t.equal(proxy.seen.length, seenBefore, `${path}: refused callers cause no upstream call`)

    for (const key of [PARTNER_KEY, SCOPED_KEYS['incode:proxy']]) {
      const before = proxy.seen.length
      const ok = await send(key)
      t.equal(ok.statusCode, 200, `${path} with a key holding incode:proxy is served`)
      const body = parseJson(ok.body)
      t.same(wrongImages(body ?? {}, expected), [], `${path}: the right bytes`)
      t.same(Object.keys(body ?? {}).sort(), ['selfie', 'signature'], `${path}: both requested types`)
      const upstream = proxy.seen.slice(before)
      t.ok(upstream.length > 0, `${path}: the call reached the simulator`)
      for (const seen of upstream) {
        t.equal(
          seen.headers['x-api-key'],
          zero ? undefined : simulator.apiKey,
          `${path}: upstream ${zero ? 'gets no x-api-key (/0 form)' : 'gets the real Incode key'}`,
        )
        t.notOk(
          JSON.stringify(seen.headers).includes(key),
          `${path}: the caller's key never reaches upstream, in any header`,
        )
        t.equal(seen.headers['x-incode-hardware-id'], token, `${path}: the caller's token is forwarded`)
      }
    }
  }
})

t.test('drop-in paths without DROPIN_KEY_REQUIRED: open, and a client key is still replaced', async (t) => {
  const proxy = await recordingProxy(t)
  const { app, simulator } = await build(t, {
    env: { ...HARDENING_ENV, API_KEYS, INCODE_BASE_URL: proxy.url },
  })
  proxy.target = simulator.url
  const token = simulator.sessionToken(small)
  const clientKey = 'an-existing-client-incode-key-0001'
  for (const key of [undefined, clientKey]) {
    const before = proxy.seen.length
    const res = await app.inject({
      method: 'POST',
      // Base64 (not links, which the second time would come from the cache).
      url: '/omni/get/images',
      headers: {
        'content-type': 'application/json',
        'x-incode-hardware-id': token,
        ...(key === undefined ? {} : { 'x-api-key': key }),
      },
      payload: JSON.stringify({ images: ['selfie'] }),
    })
    t.equal(res.statusCode, 200, `drop-in images ${key ? 'with a client key' : 'without a key'} is served`)
    const upstream = proxy.seen.slice(before)
    t.equal(upstream.length, 1, 'one upstream call')
    t.equal(upstream[0]?.headers['x-api-key'], simulator.apiKey, 'upstream gets the real Incode key')
    if (key) t.notOk(JSON.stringify(upstream[0]?.headers).includes(key), "the client's key is not forwarded")
  }
})

t.test('docs, metrics and probes', async (t) => {
  const open = await build(t, { env: { ...HARDENING_ENV, API_KEYS } })
  const closed = await build(t, {
    env: {
      ...HARDENING_ENV,
      API_KEYS,
      DOCS_PUBLIC: 'false',
      METRICS_PUBLIC: 'true',
      DROPIN_KEY_REQUIRED: 'true',
    },
  })
  const get = (app: typeof open.app, url: string, key?: string) =>
    app.inject({ method: 'GET', url, headers: key === undefined ? {} : { 'x-api-key': key } })

  // /docs: public by default, closed with DOCS_PUBLIC=false.
  const docs = await get(open.app, '/docs/json')
  t.equal(docs.statusCode, 200, '/docs/json is public by default')
  t.ok(parseJson(docs.body)?.openapi, '/docs/json is the OpenAPI document')
  for (const url of ['/docs', '/docs/json', '/docs/static/index.html', '/docs/swagger-ui-bundle.js']) {
    assertProblem(t, await get(closed.app, url), 401, 'API_KEY_MISSING', `${url} closed, no key`)
    assertProblem(
      t,
      await get(closed.app, url, WRONG_KEY),
      401,
      'API_KEY_INVALID',
      `${url} closed, wrong key`,
    )
    assertProblem(
      t,
      await get(closed.app, url, SCOPED_KEYS['metrics:read']),
      403,
      'SCOPE_MISSING',
      `${url} closed, key without docs:read`,
    )
  }
  const docsWithKey = await get(closed.app, '/docs/json', SCOPED_KEYS['docs:read'])
  t.equal(docsWithKey.statusCode, 200, '/docs/json closed, a docs:read key is served')

  // /metrics: closed by default, open with METRICS_PUBLIC=true.
  assertProblem(t, await get(open.app, '/metrics'), 401, 'API_KEY_MISSING', '/metrics by default, no key')
  assertProblem(t, await get(open.app, '/metrics', WRONG_KEY), 401, 'API_KEY_INVALID', '/metrics, wrong key')
  assertProblem(
    t,
    await get(open.app, '/metrics', SCOPED_KEYS['links:read']),
    403,
    'SCOPE_MISSING',
    '/metrics, key without metrics:read',
  )
  const metrics = await get(open.app, '/metrics', SCOPED_KEYS['metrics:read'])
  t.equal(metrics.statusCode, 200, '/metrics with a metrics:read key')
  t.match(metrics.body, /gateway_/, '/metrics serves the gateway metrics')
  const publicMetrics = await get(closed.app, '/metrics')
  t.equal(publicMetrics.statusCode, 200, '/metrics with METRICS_PUBLIC=true needs no key')
  t.match(publicMetrics.body, /gateway_/, 'public /metrics serves the gateway metrics')

  // Probes are always open, whatever else is closed.
  for (const { app } of [open, closed]) {
    for (const url of ['/healthz', '/readyz']) {
      const res = await get(app, url)
      t.equal(res.statusCode, 200, `${url} answers 200 without a key`)
      const wrong = await get(app, url, WRONG_KEY)
      t.equal(wrong.statusCode, 200, `${url} answers 200 even with a wrong key`)
    }
  }
})

t.test('CORS allows only CORS_ORIGINS; helmet headers', async (t) => {
  const withCors = await build(t, { env: { ...HARDENING_ENV, API_KEYS, CORS_ORIGINS: ALLOWED_ORIGIN } })
  const noCors = await build(t, { env: { ...HARDENING_ENV, API_KEYS } })
  const url = `/v1/sessions/${small}/image-links`

  const allowed = await withCors.app.inject({
    method: 'GET',
    url: '/healthz',
    headers: { origin: ALLOWED_ORIGIN },
  })
  t.equal(allowed.headers['access-control-allow-origin'], ALLOWED_ORIGIN, 'an allowed origin is allowed')
  const other = await withCors.app.inject({
    method: 'GET',
    url: '/healthz',
    headers: { origin: 'https://evil.example.com' },
  })
  t.equal(other.headers['access-control-allow-origin'], undefined, 'another origin gets no allow-origin')
  const lookalike = await withCors.app.inject({
    method: 'GET',
    url: '/healthz',
    headers: { origin: `${ALLOWED_ORIGIN}.evil.example` },
  })
  t.equal(lookalike.headers['access-control-allow-origin'], undefined, 'a look-alike origin is not allowed')

  const preflight = (app: typeof withCors.app, origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url,
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-incode-session-token',
      },
    })
  const okPreflight = await preflight(withCors.app, ALLOWED_ORIGIN)
  t.ok(okPreflight.statusCode < 300, 'a preflight from the allowed origin succeeds')
  t.equal(okPreflight.headers['access-control-allow-origin'], ALLOWED_ORIGIN, 'preflight allows the origin')
  t.match(String(okPreflight.headers['access-control-allow-methods']), /POST/, 'preflight allows POST')
  const badPreflight = await preflight(withCors.app, 'https://evil.example.com')
  t.equal(
    badPreflight.headers['access-control-allow-origin'],
    undefined,
    'a preflight from another origin is not allowed',
  )
  const none = await noCors.app.inject({
    method: 'GET',
    url: '/healthz',
    headers: { origin: ALLOWED_ORIGIN },
  })
  t.equal(none.headers['access-control-allow-origin'], undefined, 'no CORS_ORIGINS allows no origin')

  const token = withCors.simulator.sessionToken(small)
  const answers: Array<[string, Awaited<ReturnType<typeof withCors.app.inject>>]> = [
    ['/healthz 200', allowed],
    [
      'session links 200',
      await withCors.app.inject({
        method: 'POST',
        url: '/v1/session/image-links',
        headers: { 'content-type': 'application/json', 'x-incode-session-token': token },
        payload: JSON.stringify({ images: ['selfie'] }),
      }),
    ],
    [
      'validation 400',
      await withCors.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
        payload: '{}',
      }),
    ],
    [
      'refused key 401',
      await withCors.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        payload: '{}',
      }),
    ],
  ]
  for (const [what, res] of answers) {
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: x-content-type-options`)
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', `${what}: x-frame-options`)
    t.ok(res.headers['strict-transport-security'], `${what}: strict-transport-security`)
    t.ok(res.headers['content-security-policy'], `${what}: content-security-policy`)
    t.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: referrer-policy`)
    t.equal(res.headers['x-powered-by'], undefined, `${what}: no x-powered-by`)
  }
})

t.test('refused keys count against the rate limit of their address', async (t) => {
  const max = 5
  const { app, simulator } = await build(t, {
    env: { ...HARDENING_ENV, API_KEYS, RATE_LIMIT_MAX: String(max) },
  })
  const guess = (i: number, remoteAddress?: string) =>
    app.inject({
      method: 'POST',
      url: `/v1/sessions/${small}/image-links`,
      headers: { 'content-type': 'application/json', 'x-api-key': `${WRONG_KEY}-${i}` },
      payload: JSON.stringify({ images: ['selfie'] }),
      ...(remoteAddress === undefined ? {} : { remoteAddress }),
    })
  const before = simulator.calls.length
  const statuses: number[] = []
  let limited: Awaited<ReturnType<typeof guess>> | undefined
  for (let i = 0; i < max + 5; i++) {
    const res = await guess(i)
    statuses.push(res.statusCode)
    if (res.statusCode === 429) limited ??= res
    else assertProblem(t, res, 401, 'API_KEY_INVALID', `guess ${i}`)
  }
  t.same(
    statuses,
    [...Array<number>(max).fill(401), ...Array<number>(5).fill(429)],
    `guessed keys: ${max} refused, then rate limited (${statuses.join(',')})`,
  )
  t.equal(simulator.calls.length, before, 'guessed keys cause no upstream call')
  if (limited) {
    assertProblem(t, limited, 429, 'RATE_LIMITED', 'key guessing past the limit')
    t.ok(Number(limited.headers['retry-after']) >= 1, 'the 429 carries Retry-After')
    t.equal(limited.headers['x-content-type-options'], 'nosniff', 'the 429 carries the security headers')
  }
  // Missing keys and keys without the route's scope count too; another address has its own bucket.
  const missing = await app.inject({ method: 'DELETE', url: `/v1/sessions/${small}/image-links` })
  t.equal(missing.statusCode, 429, 'a request without a key from that address is limited too')
  t.equal((await guess(0, '192.0.2.7')).statusCode, 401, 'another address is not limited by it')
  // Probes stay open and unlimited.
  for (const url of ['/healthz', '/readyz']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `${url} from the limited address`)
  }
  // A frontend on the same address whose token Incode has accepted counts against its token, not
  // the address (a token not accepted yet counts against both: token-flood.test.ts).
  const sessionToken = simulator.sessionToken(small)
  const sessionLinks = (remoteAddress?: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/session/image-links',
      headers: { 'content-type': 'application/json', 'x-incode-session-token': sessionToken },
      payload: JSON.stringify({ images: ['selfie'] }),
      ...(remoteAddress === undefined ? {} : { remoteAddress }),
    })
  t.equal((await sessionLinks('192.0.2.8')).statusCode, 200, 'a session token is accepted elsewhere')
  t.equal(
    (await sessionLinks()).statusCode,
    200,
    'an accepted session token from the limited address is served',
  )

  // A valid partner is limited by its name, not by the address whose guesses are limited; its
  // calls without the route's scope count against its name too.
  const partnerStatuses: number[] = []
  for (let i = 0; i < max + 2; i++) {
    const res = await app.inject({
      method: 'DELETE',
      url: `/v1/sessions/${small}/image-links`,
      headers: { 'x-api-key': PARTNER_KEY },
    })
    partnerStatuses.push(res.statusCode)
  }
  t.equal(
    partnerStatuses.filter((s) => s === 429).length,
    2,
    `a partner past RATE_LIMIT_MAX gets 429 (${partnerStatuses.join(',')})`,
  )
  const scoped: number[] = []
  for (let i = 0; i < max + 1; i++) {
    const res = await app.inject({
      method: 'DELETE',
      url: `/v1/sessions/${small}/image-links`,
      headers: { 'x-api-key': SCOPED_KEYS['links:read'] },
      remoteAddress: '198.51.100.1',
    })
    scoped.push(res.statusCode)
  }
  t.same(
    scoped,
    [...Array<number>(max).fill(403), 429],
    `a key without the scope counts against its partner (${scoped.join(',')})`,
  )
})

t.test('body limit and strict schemas', async (t) => {
  const { app, config, simulator } = await build(t, { env: { ...HARDENING_ENV, API_KEYS } })
  const token = simulator.sessionToken(small)
  const oversize = JSON.stringify({ images: ['selfie'], pad: 'x'.repeat(config.BODY_LIMIT_BYTES) })
  const url = `/v1/sessions/${small}/image-links`

  assertProblem(
    t,
    await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
      payload: oversize,
    }),
    413,
    'BODY_TOO_LARGE',
    'a body over BODY_LIMIT_BYTES on /v1',
  )
  assertProblem(
    t,
    await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      payload: oversize,
    }),
    401,
    'API_KEY_MISSING',
    'an oversize body without a key is refused for the key',
  )
  assertIncodeError(
    t,
    await app.inject({
      method: 'POST',
      url: '/omni/get/images',
      headers: { 'content-type': 'application/json', 'x-incode-hardware-id': token },
      payload: oversize,
    }),
    413,
    '/omni/get/images',
    'a body over BODY_LIMIT_BYTES on a drop-in path',
  )
  const exactly = JSON.stringify({ images: ['selfie'] }).padEnd(config.BODY_LIMIT_BYTES, ' ')
  const atLimit = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
    payload: exactly,
  })
  t.equal(atLimit.statusCode, 200, 'a body of exactly BODY_LIMIT_BYTES is accepted')

  const unknown = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
    payload: JSON.stringify({ images: ['selfie'], extra: true }),
  })
  assertProblem(t, unknown, 400, 'VALIDATION_FAILED', 'an unknown property')
  t.match(parseJson(unknown.body)?.errors, [{ message: /extra/ }], 'the problem names the unknown property')
  const sessionUnknown = await app.inject({
    method: 'POST',
    url: '/v1/session/images',
    headers: { 'content-type': 'application/json', 'x-incode-session-token': token },
    payload: JSON.stringify({ images: ['selfie'], 'x-api-key': PARTNER_KEY }),
  })
  assertProblem(t, sessionUnknown, 400, 'VALIDATION_FAILED', 'an unknown property on a session route')
})
