import t from 'tap'

import { SEEDED_INTERVIEW_IDS, startSimulator } from '../../src/simulator/index.js'
import { assertIncodeError, call, fakeClock, startSim } from './fixtures/helpers.js'

const small = SEEDED_INTERVIEW_IDS.small
const body = { images: ['signature'] }

void t.test('a missing or wrong API key is refused with 403', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.images
  const token = sim.sessionToken(small)
  assertIncodeError(t, await call(sim, path, { apiKey: null, token, body }), 403, path, 'missing API key')
  assertIncodeError(
    t,
    await call(sim, path, { apiKey: 'wrong-key', token, body }),
    403,
    path,
    'wrong API key',
  )
  const ok = await call(sim, path, {
    apiKey: null,
    body,
    headers: { 'X-API-KEY': sim.apiKey, 'x-incode-HARDWARE-id': token },
  })
  t.equal(ok.status, 200, 'header names are case-insensitive')
})

void t.test('a missing, malformed, forged or expired token is refused with 401', async (t) => {
  const clock = fakeClock()
  const sim = await startSim(t, { now: clock.now, sessionTokenTtlMs: 3_600_000 })
  const path = sim.paths.images
  assertIncodeError(t, await call(sim, path, { body }), 401, path, 'missing token')
  assertIncodeError(t, await call(sim, path, { token: 'not-a-jwt', body }), 401, path, 'garbage token')
  const token = sim.sessionToken(small)
  const [h, p, s] = token.split('.') as [string, string, string]
  const forgedClaims = Buffer.from(JSON.stringify({ sub: small, kind: 'admin', iat: 1, exp: 9e9 })).toString(
    'base64url',
  )
  assertIncodeError(
    t,
    await call(sim, path, { token: `${h}.${forgedClaims}.${s}`, body }),
    401,
    path,
    'changed claims',
  )
  assertIncodeError(
    t,
    await call(sim, path, { token: `${h}.${p}.${s.slice(0, -4)}AAAA`, body }),
    401,
    path,
    'bad signature',
  )
  const other = await startSimulator({ seed: 99 })
  t.teardown(() => other.close())
  assertIncodeError(
    t,
    await call(sim, path, { token: other.sessionToken(small), body }),
    401,
    path,
    'other secret',
  )

  const fresh = await call(sim, path, { token, body })
  t.equal(fresh.status, 200, 'the token works before it expires')
  t.equal(fresh.headers.get('processing-time')?.match(/^\d+$/)?.length, 1, 'Processing-Time is an integer')
  clock.advance(3_600_000)
  const expired = await call(sim, path, { token, body })
  assertIncodeError(t, expired, 401, path, 'expired session token')
  t.match(expired.json.message, /expired/i, 'the message says the token expired')
})

void t.test('api-version is accepted whether present or not', async (t) => {
  const sim = await startSim(t)
  const res = await fetch(`${sim.url}${sim.paths.images}`, {
    method: 'POST',
    headers: {
      'x-api-key': sim.apiKey,
      'X-Incode-Hardware-Id': sim.sessionToken(small),
      'Content-Type': 'application/json',
    },
    body: JSON.stringify(body),
  })
  t.equal(res.status, 200, 'a call without api-version answers 200')
})

void t.test('the id parameter and the token must agree', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.images
  const token = sim.sessionToken(small)
  const same = await call(sim, `${path}?id=${small}`, { token, body })
  t.equal(same.status, 200, 'a session token with its own id answers 200')
  const other = await call(sim, `${path}?id=${SEEDED_INTERVIEW_IDS.full}`, { token, body })
  assertIncodeError(t, other, 403, path, 'session token for another interview')
  t.match(other.json.message, /does not grant access/, 'the message says the token does not grant access')
  const admin = await call(sim, path, { token: sim.adminToken(), body })
  assertIncodeError(t, admin, 400, path, 'admin token without id')
  const adminOk = await call(sim, `${path}?id=${small}`, { token: sim.adminToken(), body })
  t.equal(adminOk.status, 200, 'admin token with id answers 200')
})

void t.test('/0 variants take a session token alone and refuse admin tokens', async (t) => {
  const sim = await startSim(t)
  const token = sim.sessionToken(small)
  for (const key of ['images', 'imageLinks', 'secondIdImages', 'concatenatedImages'] as const) {
    const path = `/0${sim.paths[key]}`
    const ok = await call(sim, path, { apiKey: null, token, body: { images: ['signature'] } })
    t.equal(ok.status, 200, `${key} under /0 answers 200 with a session token and no API key`)
    const withKey = await call(sim, path, { token, body: { images: ['signature'] } })
    t.equal(withKey.status, 200, `${key} under /0 ignores an API key if one is sent`)
    const admin = await call(sim, `${path}?id=${small}`, {
      apiKey: null,
      token: sim.adminToken(),
      body: { images: ['signature'] },
    })
    assertIncodeError(t, admin, 401, path, `${key} under /0 with an admin token`)
    const none = await call(sim, path, { apiKey: null, body: { images: ['signature'] } })
    assertIncodeError(t, none, 401, path, `${key} under /0 without a token`)
  }
  const imagesOk = await call(sim, `/0${sim.paths.images}`, { apiKey: null, token, body })
  t.same(
    Buffer.from(imagesOk.json.signature, 'base64'),
    sim.session(small)?.images.signature?.at(-1)?.bytes,
    '/0 answers the same bytes',
  )
})
