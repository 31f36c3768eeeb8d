/**
 * Cached links must not outlive what allowed them (issue 12): a token's expiry bounds its
 * entries, DELETE reaches what frontends cached, "no such image" answers are cached briefly, the
 * `/0` form is checked before the cache, drop-in `?id=` values are validated, and no route picks
 * a cache scope. One test per finding; each failed on the code before the fix.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders } from '../helpers/build.js'
import { HARDENING_ENV, incodeFlaw, parseJson, type Json } from './helpers.js'

const { full, small } = SEEDED_INTERVIEW_IDS
const SECOND = 1_000
const MINUTE = 60 * SECOND

/** A clock moved by hand, on a whole second (JWT times are in seconds). */
function fakeClock() {
  let at = Math.floor(Date.now() / SECOND) * SECOND
  return { now: () => at, advance: (ms: number) => (at += ms) }
}

function post(
  app: FastifyInstance,
  url: string,
  images: readonly ImageType[],
  headers: Record<string, string>,
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify({ images }),
  })
}

const sessionLinks = (app: FastifyInstance, token: string, images: readonly ImageType[]) =>
  post(app, '/v1/session/image-links', images, { 'x-incode-session-token': token })
const dropInLinks = (app: FastifyInstance, path: string, token: string, images: readonly ImageType[]) =>
  post(app, path, images, { 'x-incode-hardware-id': token })
const partnerLinks = (app: FastifyInstance, interviewId: string, images: readonly ImageType[]) =>
  post(app, `/v1/sessions/${interviewId}/image-links`, images, partnerHeaders())
const dropLinks = (app: FastifyInstance, interviewId: string) =>
  app.inject({ method: 'DELETE', url: `/v1/sessions/${interviewId}/image-links`, headers: partnerHeaders() })

t.test('an expired session token gets no cached links, on any route', async (t) => {
  const clock = fakeClock()
  const { app, simulator } = await build(t, {
    env: HARDENING_ENV,
    now: clock.now,
    simulator: { now: clock.now, sessionTokenTtlMs: 20 * MINUTE },
  })
  const token = simulator.sessionToken(small)
  const types: ImageType[] = ['selfie', 'signature']
  const routes = [
    { name: '/v1/session/image-links', send: () => sessionLinks(app, token, types) },
    { name: '/omni/get/images/v2', send: () => dropInLinks(app, '/omni/get/images/v2', token, types) },
    { name: '/0/omni/get/images/v2', send: () => dropInLinks(app, '/0/omni/get/images/v2', token, types) },
  ]
  for (const route of routes) {
    const first = await route.send()
    t.equal(first.statusCode, 200, `${route.name}: 200 while the token lives`)
  }
  // The links live an hour (55 minutes servable); the token 20 minutes.
  clock.advance(20 * MINUTE - SECOND)
  for (const route of routes) {
    const hit = await route.send()
    t.equal(hit.headers['x-cache'], 'HIT', `${route.name}: a HIT one second before the token expires`)
  }

  clock.advance(SECOND)
  const images = await post(app, '/v1/session/images', ['selfie'], { 'x-incode-session-token': token })
  t.equal(images.statusCode, 401, 'the base64 route refuses the expired token')
  for (const route of routes) {
    const res = await route.send()
    t.not(res.headers['x-cache'], 'HIT', `${route.name}: no HIT for the expired token`)
    t.equal(res.statusCode, 401, `${route.name}: Incode's 401, as for the base64 route`)
  }
  // lru-cache drops an entry once its TTL is exceeded, 1 ms after it stops being served.
  clock.advance(1)
  t.equal(app.linkCache.stats().entries, 0, 'nothing fetched with the expired token is kept')
})

t.test("DELETE reaches the frontends' entries; another token still cannot read them", async (t) => {
  const clock = fakeClock()
  const { app, simulator } = await build(t, {
    env: HARDENING_ENV,
    now: clock.now,
    simulator: { now: clock.now },
  })
  const tokenA = simulator.sessionToken(full)
  const admin = simulator.adminToken()
  const cached = [
    {
      name: 'session route, interview from the token',
      send: () => sessionLinks(app, tokenA, ['selfie']),
    },
    {
      name: 'drop-in /0 without ?id=, interview from the token',
      send: () => dropInLinks(app, '/0/omni/get/images/v2', tokenA, ['document']),
    },
    {
      name: 'drop-in with ?id= and a session token',
      send: () => dropInLinks(app, `/omni/get/images/v2?id=${full}`, tokenA, ['signature']),
    },
    {
      name: 'drop-in with ?id= and an executive token (no interview in its claims)',
      send: () => dropInLinks(app, `/omni/get/images/v2?id=${full}`, admin, ['fullFrameFrontID']),
    },
  ]
  for (const entry of cached) {
    const first = await entry.send()
    t.equal(first.statusCode, 200, `${entry.name}: 200`)
    t.equal(first.headers['x-cache'], 'MISS', `${entry.name}: cached by the first request`)
    t.equal((await entry.send()).headers['x-cache'], 'HIT', `${entry.name}: a HIT before the DELETE`)
  }

  // Another token for the same interview: its label is the same, its scope is not.
  clock.advance(SECOND)
  const tokenB = simulator.sessionToken(full)
  t.not(tokenB, tokenA, 'a second, different token for the same interview')
  const callsBefore = simulator.callsTo('imageLinks').length
  const other = await sessionLinks(app, tokenB, ['selfie'])
  t.equal(other.headers['x-cache'], 'MISS', "another token does not read the first token's entry")
  t.equal(simulator.callsTo('imageLinks').length, callsBefore + 1, 'it asks Incode with its own token')

  const dropped = await dropLinks(app, full)
  t.equal(dropped.statusCode, 200, 'DELETE: 200')
  t.same(dropped.json(), { dropped: cached.length + 1 }, 'every entry of the interview, in every scope')
  for (const entry of cached) {
    t.equal((await entry.send()).headers['x-cache'], 'MISS', `${entry.name}: fresh links after the DELETE`)
  }
  t.equal((await sessionLinks(app, tokenB, ['selfie'])).headers['x-cache'], 'MISS', 'and for the other token')
})

t.test(
  'a type the session lacks is cached as missing: HIT while the breaker is open, refetched after the TTL',
  async (t) => {
    const clock = fakeClock()
    const { app, simulator, config } = await build(t, {
      env: {
        ...HARDENING_ENV,
        BREAKER_FAILURE_THRESHOLD: '2',
        BREAKER_RESET_MS: '600000',
        RETRY_MAX: '0',
      },
      now: clock.now,
      simulator: { now: clock.now },
    })
    const missingTtl = config.LINK_CACHE_MISSING_TTL_MS
    t.equal(missingTtl, 60_000, 'LINK_CACHE_MISSING_TTL_MS defaults to 60 s')
    const token = simulator.sessionToken(small)
    const types: ImageType[] = ['selfie', 'document']

    const first = await partnerLinks(app, small, types)
    t.same(first.json().missing, ['document'], 'the small session has no document')
    t.equal((await sessionLinks(app, token, types)).headers['x-cache'], 'MISS', 'the frontend caches it too')
    clock.advance(missingTtl - SECOND)
    const calls = simulator.callsTo('imageLinks').length
    const again = await partnerLinks(app, small, types)
    t.equal(again.headers['x-cache'], 'HIT', 'within the missing TTL: a HIT, "no document" included')
    t.same(again.json().missing, ['document'], 'still reported missing')
    t.equal(simulator.callsTo('imageLinks').length, calls, 'without asking Incode')

    // Incode fails and the breaker opens (on requests for another interview's links).
    simulator.setFaults({ errorRate: 1, errorStatus: 500 })
    let open = false
    for (let i = 0; i < 20 && !open; i++) {
      const failing = await partnerLinks(app, full, ['selfie'])
      open = parseJson(failing.body)?.code === 'UPSTREAM_CIRCUIT_OPEN'
    }
    t.ok(open, 'the breaker is open')
    for (const [name, send] of [
      ['partner', () => partnerLinks(app, small, types)],
      ['frontend', () => sessionLinks(app, token, types)],
    ] as const) {
      const res = await send()
      t.equal(res.statusCode, 200, `${name}: 200 while the breaker is open`)
      t.equal(res.headers['x-cache'], 'HIT', `${name}: a HIT`)
      t.same(res.json().missing, ['document'], `${name}: with document missing`)
    }
    simulator.setFaults(undefined)

    // Past the TTL, "no document" is asked again (here the open breaker answers for Incode).
    clock.advance(SECOND)
    const after = await partnerLinks(app, small, types)
    t.equal(after.statusCode, 503, 'past the missing TTL the type is asked of Incode again (breaker: 503)')

    const fresh = await build(t, { env: HARDENING_ENV, now: clock.now, simulator: { now: clock.now } })
    await partnerLinks(fresh.app, small, types)
    clock.advance(missingTtl)
    const refetched = await partnerLinks(fresh.app, small, types)
    t.equal(refetched.headers['x-cache'], 'PARTIAL', 'the selfie link is still cached, "no document" is not')
    t.same(fresh.simulator.callsTo('imageLinks').at(-1)?.images, ['document'], 'only document is asked again')

    await partnerLinks(fresh.app, small, types)
    const dropped = await dropLinks(fresh.app, small)
    t.same(dropped.json(), { dropped: 2 }, 'DELETE drops the "missing" answer with the link')
  },
)

t.test('the /0 form refuses an executive token whatever the cache holds', async (t) => {
  const { app, simulator } = await build(t, { env: HARDENING_ENV })
  const admin = simulator.adminToken()
  const zeroPath = `/0/omni/get/images/v2?id=${full}`
  const comparable = (res: LightMyRequestResponse) => {
    const { timestamp: _timestamp, ...rest } = parseJson(res.body) ?? {}
    return { status: res.statusCode, body: rest }
  }

  const cold = await dropInLinks(app, zeroPath, admin, ['selfie'])
  t.equal(cold.statusCode, 401, 'a cold cache: 401')
  t.equal(incodeFlaw(cold), undefined, "in Incode's error shape")
  const direct = await fetch(`${simulator.url}${zeroPath}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-incode-hardware-id': admin },
    body: JSON.stringify({ images: ['selfie'] }),
  })
  const incode = (await direct.json()) as Json
  t.equal(direct.status, 401, 'Incode refuses it too')
  t.equal(parseJson(cold.body)?.message, incode.message, "with Incode's message")

  const filled = await dropInLinks(app, `/omni/get/images/v2?id=${full}`, admin, ['selfie'])
  t.equal(filled.statusCode, 200, 'the same token fills the cache through the full form')
  const warm = await dropInLinks(app, zeroPath, admin, ['selfie'])
  t.not(warm.headers['x-cache'], 'HIT', 'the /0 form is not served from the cache')
  t.same(comparable(warm), comparable(cold), 'the answer is the cold-cache one')

  const session = simulator.sessionToken(full)
  await dropInLinks(app, `/omni/get/images/v2?id=${full}`, session, ['selfie'])
  const shared = await dropInLinks(app, zeroPath, session, ['selfie'])
  t.equal(shared.headers['x-cache'], 'HIT', 'a session token still shares its entries between the forms')
})

t.test('drop-in ?id= values are validated: no variant of an ID becomes a cache key', async (t) => {
  const { app, simulator } = await build(t, { env: HARDENING_ENV })
  const token = simulator.sessionToken(full)
  const ok = await dropInLinks(app, `/omni/get/images/v2?id=${full}`, token, ['selfie'])
  t.equal(ok.statusCode, 200, 'the plain ID: 200')
  const entries = app.linkCache.stats().entries
  const calls = simulator.callsTo('imageLinks').length

  const variants = [
    `${full}%20`,
    `%20${full}`,
    `${full}%09`,
    `${full}%0D%0A`,
    `${full}+`,
    `${full}%00`,
    `${full}.`,
  ]
  for (const prefix of ['', '/0']) {
    for (const variant of variants) {
      const res = await dropInLinks(app, `${prefix}/omni/get/images/v2?id=${variant}`, token, ['selfie'])
      t.equal(res.statusCode, 400, `${prefix}?id=${variant}: 400`)
      t.equal(incodeFlaw(res), undefined, `${prefix}?id=${variant}: in Incode's error shape`)
    }
    const base64 = await post(app, `${prefix}/omni/get/images?id=${full}%20`, ['selfie'], {
      'x-incode-hardware-id': token,
    })
    t.equal(base64.statusCode, 400, `${prefix}/omni/get/images: the same check`)
  }
  t.equal(app.linkCache.stats().entries, entries, 'the cache did not grow')
  t.equal(simulator.callsTo('imageLinks').length, calls, 'and Incode was not asked')

  // An empty ?id= is no ID, as on Incode: the token's own interview, one key with the ID-less form.
  const none = await dropInLinks(app, '/omni/get/images/v2', token, ['selfie'])
  const empty = await dropInLinks(app, '/omni/get/images/v2?id=', token, ['selfie'])
  t.equal(none.headers['x-cache'], 'MISS', 'without ?id=: a key of its own')
  t.equal(empty.statusCode, 200, 'an empty ?id=: 200')
  t.equal(empty.headers['x-cache'], 'HIT', 'served from the entry of the ID-less form')
})

t.test('no route picks a cache scope: the service derives it from the caller', async (t) => {
  const dir = join(import.meta.dirname, '../../src/routes')
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.ts'))
  t.ok(files.length >= 3, `the routes were read (${files.length} files)`)
  for (const file of files) {
    const text = await readFile(join(dir, file), 'utf8')
    t.notOk(
      /scopeForToken|cache\/linkCache/.test(text),
      `${file}: neither imports the cache nor names a scope`,
    )
    t.notOk(
      /lookupLinks\([^)]*\b(scope|interviewId)\s*[:,]/s.test(text),
      `${file}: passes lookupLinks no scope or interview`,
    )
  }
})
