import t from 'tap'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { partnerHeaders } from '../helpers/build.js'
import {
  buildForRoutes,
  assertProblem,
  fakeClock,
  MINUTE,
  post,
  sessionOf,
  type Json,
  warmSeededSessions,
} from './fixtures/helpers.js'

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS
const SECOND = 1_000

/** The expiry signed into a presigned link (X-Amz-Date + X-Amz-Expires), in ms. */
function signedExpiry(url: string): number {
  const query = new URL(url).searchParams
  const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(query.get('X-Amz-Date') ?? '')
  if (!date) throw new Error(`no X-Amz-Date in ${url}`)
  const [y, mo, d, h, mi, s] = date.slice(1).map(Number) as [number, number, number, number, number, number]
  return Date.UTC(y, mo - 1, d, h, mi, s) + Number(query.get('X-Amz-Expires')) * SECOND
}

const links = (app: Parameters<typeof post>[0], interviewId: string, images: ImageType[]) =>
  post(app, `/v1/sessions/${interviewId}/image-links`, { images }, partnerHeaders())

t.test('links: every attempt newest first, cropped types missing without asking Incode', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const session = sessionOf(simulator, full)
  const res = await links(app, full, [
    'selfie',
    'croppedFace',
    'fullFrameFrontID',
    'signature',
    'croppedBackID',
  ])
  t.equal(res.statusCode, 200, '200')
  t.equal(res.headers['cache-control'], 'no-store, private', 'no-store')
  t.equal(res.headers['x-cache'], 'MISS', 'a cold cache: MISS')
  const body: Json = res.json()
  t.same(Object.keys(body).sort(), ['images', 'missing'], 'images and missing')
  t.same(Object.keys(body.images).sort(), ['fullFrameFrontID', 'selfie', 'signature'], 'the linkable types')
  t.same(body.missing, ['croppedFace', 'croppedBackID'], 'cropped types are missing, in type order')

  for (const type of ['selfie', 'fullFrameFrontID', 'signature'] as const) {
    const entry = body.images[type]
    const attempts = session.images[type] ?? []
    t.same(Object.keys(entry).sort(), ['attempts', 'expiresAt', 'url'], `${type}: url, expiresAt, attempts`)
    t.equal(entry.attempts.length, attempts.length, `${type}: one entry per capture (${attempts.length})`)
    t.same(
      entry.attempts.map((a: Json) => a.capturedAt as string),
      [...attempts].reverse().map((a) => new Date(a.capturedAt).toISOString()),
      `${type}: capture times, newest first`,
    )
    t.equal(entry.attempts[0].url, entry.url, `${type}: the newest attempt is the latest link`)
    t.match(entry.url, `/files/${full}/${type}/`, `${type}: the link is this interview's`)
    t.equal(
      entry.expiresAt,
      new Date(signedExpiry(entry.url)).toISOString(),
      `${type}: the link's own expiry`,
    )
    for (const attempt of entry.attempts) {
      t.same(Object.keys(attempt).sort(), ['capturedAt', 'expiresAt', 'url'], `${type}: attempt shape`)
    }
  }
  const file = await fetch(body.images.selfie.url)
  const bytes = Buffer.from(await file.arrayBuffer())
  const latest = session.images.selfie?.at(-1)
  t.equal(file.status, 200, 'the latest selfie link works')
  t.ok(latest && bytes.equals(latest.bytes), 'and serves the latest selfie')

  const calls = simulator.callsTo('imageLinks')
  t.equal(calls.length, 1, 'one upstream call')
  t.same(calls[0]?.images, ['selfie', 'fullFrameFrontID', 'signature'], 'for the linkable types only')

  const cropped = await links(app, full, ['croppedFace', 'croppedIDFace'])
  t.equal(cropped.statusCode, 200, 'only cropped types: 200')
  t.same(cropped.json(), { images: {}, missing: ['croppedFace', 'croppedIDFace'] }, 'all missing')
  t.equal(simulator.callsTo('imageLinks').length, 1, 'without an upstream call')

  const absent = await links(app, small, ['selfie', 'document'])
  t.same(absent.json().missing, ['document'], 'a type the session lacks is missing')
})

t.test('X-Cache: MISS, then HIT without an upstream call, then PARTIAL asking only the rest', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const first = await links(app, full, ['selfie', 'signature'])
  t.equal(first.headers['x-cache'], 'MISS', 'first: MISS')
  const second = await links(app, full, ['signature', 'selfie'])
  t.equal(second.headers['x-cache'], 'HIT', 'second: HIT')
  t.same(second.json().images, first.json().images, 'the same links')
  t.equal(second.headers['cache-control'], 'no-store, private', 'a HIT is no-store too')
  t.equal(simulator.callsTo('imageLinks').length, 1, 'no upstream call for the HIT')

  const mixed = await links(app, full, ['selfie', 'document', 'fullFrameBackID', 'croppedFace'])
  t.equal(mixed.statusCode, 200, '200')
  t.equal(mixed.headers['x-cache'], 'PARTIAL', 'cached and uncached types: PARTIAL')
  const body = mixed.json()
  t.same(Object.keys(body.images), ['selfie', 'document', 'fullFrameBackID'], 'every linkable type answered')
  t.same(body.images.selfie, first.json().images.selfie, 'the cached selfie link')
  t.same(body.missing, ['croppedFace'], 'the cropped type missing')
  const calls = simulator.callsTo('imageLinks')
  t.equal(calls.length, 2, 'one more upstream call')
  t.same(calls[1]?.images, ['document', 'fullFrameBackID'], 'asking only for the uncached types')

  const all = await links(app, full, ['document', 'selfie', 'signature', 'fullFrameBackID'])
  t.equal(all.headers['x-cache'], 'HIT', 'everything cached now: HIT')
  t.equal(simulator.callsTo('imageLinks').length, 2, 'no upstream call')
})

t.test('TTL: served until expiry − margin, refetched just after (fake clock)', async (t) => {
  const clock = fakeClock(Math.floor(Date.now() / SECOND) * SECOND)
  const { app, simulator, config } = await buildForRoutes(t, {
    now: clock.now,
    simulator: { now: clock.now },
  })
  const margin = config.LINK_CACHE_MARGIN_MS
  const first = await links(app, full, ['selfie'])
  t.equal(first.headers['x-cache'], 'MISS', 'MISS')
  const expiresAt = Date.parse(first.json().images.selfie.expiresAt)
  t.equal(expiresAt, clock.now() + 3_600_000, 'a fresh link expires in one hour')

  clock.advance(expiresAt - margin - clock.now() - SECOND)
  const before = await links(app, full, ['selfie'])
  t.equal(before.headers['x-cache'], 'HIT', 'one second before expiry − margin: HIT')
  t.equal(simulator.callsTo('imageLinks').length, 1, 'no upstream call')

  clock.advance(2 * SECOND)
  const after = await links(app, full, ['selfie'])
  t.equal(after.headers['x-cache'], 'MISS', 'one second after expiry − margin: MISS')
  t.equal(simulator.callsTo('imageLinks').length, 2, 'refetched upstream')
  const renewed = after.json().images.selfie
  t.not(renewed.url, first.json().images.selfie.url, 'a newly signed link')

  t.equal(
    renewed.expiresAt,
    new Date(signedExpiry(renewed.url)).toISOString(),
    "the renewed link's expiry is its own signed one",
  )
  const again = await links(app, full, ['selfie'])
  t.equal(again.headers['x-cache'], 'HIT', 'the renewed link is cached in turn')
})

t.test('a link signed before it was handed out: cached by its own expiry', async (t) => {
  const clock = fakeClock(Math.floor(Date.now() / SECOND) * SECOND)
  const { app, simulator, config } = await buildForRoutes(t, {
    now: clock.now,
    simulator: { now: clock.now, linkSignedAgoMs: 50 * MINUTE },
  })
  t.equal(config.LINK_CACHE_MARGIN_MS, 5 * MINUTE, 'the default margin is 5 minutes')
  const start = clock.now()
  const first = await links(app, full, ['selfie', 'document'])
  t.equal(first.statusCode, 200, '200')
  const body = first.json()
  for (const type of ['selfie', 'document']) {
    t.equal(
      body.images[type].expiresAt,
      new Date(start + 10 * MINUTE).toISOString(),
      `${type}: expires 10 min from now, as signed (not fetched + 1 h)`,
    )
    t.ok(
      body.images[type].attempts.every((a: Json) => a.expiresAt === body.images[type].expiresAt),
      `${type}: every attempt carries that expiry`,
    )
  }

  clock.advance(5 * MINUTE - SECOND)
  const before = await links(app, full, ['selfie', 'document'])
  t.equal(before.headers['x-cache'], 'HIT', 'just under 5 min later: HIT')
  clock.advance(2 * SECOND)
  const after = await links(app, full, ['selfie', 'document'])
  t.equal(after.headers['x-cache'], 'MISS', 'just over 5 min later (within the margin): MISS')
  t.equal(simulator.callsTo('imageLinks').length, 2, 'refetched upstream')
})

t.test('DELETE drops the cached links; the next request is a MISS', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  await links(app, full, ['selfie', 'signature', 'croppedFace'])
  await links(app, small, ['selfie'])
  const hit = await links(app, full, ['selfie', 'signature'])
  t.equal(hit.headers['x-cache'], 'HIT', 'cached before the delete')

  const dropped = await app.inject({
    method: 'DELETE',
    url: `/v1/sessions/${full}/image-links`,
    headers: partnerHeaders(),
  })
  t.equal(dropped.statusCode, 200, '200')
  t.same(dropped.json(), { dropped: 2 }, 'the two cached links of that interview were dropped')
  const again = await app.inject({
    method: 'DELETE',
    url: `/v1/sessions/${full}/image-links`,
    headers: partnerHeaders(),
  })
  t.same(again.json(), { dropped: 0 }, 'nothing left to drop')

  const miss = await links(app, full, ['selfie', 'signature'])
  t.equal(miss.headers['x-cache'], 'MISS', 'the next request: MISS')
  t.equal(simulator.callsTo('imageLinks').length, 3, 'fetched upstream again')
  const other = await links(app, small, ['selfie'])
  t.equal(other.headers['x-cache'], 'HIT', "another interview's links stay cached")
})

t.test('DELETE also drops what frontends cached through their session tokens', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const headers = {
    'content-type': 'application/json',
    'x-incode-session-token': simulator.sessionToken(full),
  }
  const first = await post(app, '/v1/session/image-links', { images: ['selfie'] }, headers)
  t.equal(first.headers['x-cache'], 'MISS', 'a frontend caches the selfie link')
  const dropped = await app.inject({
    method: 'DELETE',
    url: `/v1/sessions/${full}/image-links`,
    headers: partnerHeaders(),
  })
  t.same(
    dropped.json(),
    { dropped: 1 },
    "the frontend's entry is dropped (labelled by its token's interview)",
  )
  const after = await post(app, '/v1/session/image-links', { images: ['selfie'] }, headers)
  t.equal(after.headers['x-cache'], 'MISS', 'after the DELETE (a new capture) the frontend gets fresh links')
  t.equal(simulator.callsTo('imageLinks').length, 2, 'fetched upstream again')
})

t.test('errors are not cached: a failure, then success asks Incode again', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  simulator.setFaults({ errorRate: 1, errorStatus: 500, endpoints: ['imageLinks'] })
  const failed = await links(app, full, ['selfie'])
  assertProblem(t, failed, 502, /.+/, 'Incode failing')
  const failedCalls = simulator.callsTo('imageLinks').length
  t.ok(failedCalls >= 1, 'Incode was asked')

  simulator.setFaults(undefined)
  const ok = await links(app, full, ['selfie'])
  t.equal(ok.statusCode, 200, 'then 200')
  t.equal(ok.headers['x-cache'], 'MISS', 'a MISS: the failure was not cached')
  const calls = simulator.callsTo('imageLinks')
  t.equal(calls.length, failedCalls + 1, 'one more upstream call')
  t.equal(calls.at(-1)?.status, 200, 'answered')

  simulator.setFaults({ malformedRate: 1, endpoints: ['imageLinks'] })
  const malformed = await links(app, full, ['document'])
  assertProblem(t, malformed, 502, 'UPSTREAM_BAD_RESPONSE', 'links that are not JSON')
  simulator.setFaults(undefined)
  const cached = await links(app, full, ['selfie'])
  t.equal(cached.headers['x-cache'], 'HIT', 'the good link stayed cached')
})
