import t from 'tap'

import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { assertIncodeError, call, fakeClock, startSim } from './fixtures/helpers.js'

void t.test('admin log-in with the right credentials returns an admin token', async (t) => {
  const sim = await startSim(t, { adminEmail: 'ops@example.com', adminPassword: 's3cret' })
  const reply = await call(sim, sim.paths.adminLogin, {
    body: { email: 'ops@example.com', password: 's3cret' },
  })
  t.equal(reply.status, 200, 'log-in answers 200')
  t.match(reply.json.token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the token is JWT-shaped')
  const claims = JSON.parse(Buffer.from(reply.json.token.split('.')[1], 'base64url').toString())
  t.equal(claims.kind, 'admin', 'the token is an admin token')
  t.equal(claims.sub, 'admin', 'its subject is admin')
  t.equal(claims.exp - claims.iat, 24 * 3600, 'it lasts 24 hours by default')
  const images = await call(sim, `${sim.paths.images}?id=${SEEDED_INTERVIEW_IDS.small}`, {
    token: reply.json.token,
    body: { images: ['signature'] },
  })
  t.equal(images.status, 200, 'the admin token fetches images of a named interview')
  t.ok(images.json.signature, 'and gets the signature')
})

void t.test('admin log-in refuses wrong credentials and missing fields', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.adminLogin
  const { adminEmail: email, adminPassword: password } = sim
  assertIncodeError(
    t,
    await call(sim, path, { body: { email, password: 'nope' } }),
    401,
    path,
    'wrong password',
  )
  assertIncodeError(
    t,
    await call(sim, path, { body: { email: 'x@example.com', password } }),
    401,
    path,
    'wrong email',
  )
  assertIncodeError(t, await call(sim, path, { body: { email } }), 400, path, 'missing password')
  assertIncodeError(t, await call(sim, path, { body: { password } }), 400, path, 'missing email')
  assertIncodeError(
    t,
    await call(sim, path, { body: { email: 1, password } }),
    400,
    path,
    'email not a string',
  )
  assertIncodeError(t, await call(sim, path, { rawBody: 'email=a' }), 400, path, 'body not JSON')
  assertIncodeError(t, await call(sim, path, {}), 400, path, 'no body')
  assertIncodeError(
    t,
    await call(sim, path, { apiKey: null, body: { email, password } }),
    403,
    path,
    'no API key',
  )
  assertIncodeError(
    t,
    await call(sim, `/0${path}`, { body: { email, password } }),
    404,
    `/0${path}`,
    'not under /0',
  )
})

void t.test('admin tokens expire after adminTokenTtlMs', async (t) => {
  const clock = fakeClock()
  const sim = await startSim(t, { now: clock.now, adminTokenTtlMs: 60_000 })
  const login = await call(sim, sim.paths.adminLogin, {
    body: { email: sim.adminEmail, password: sim.adminPassword },
  })
  const path = `${sim.paths.images}?id=${SEEDED_INTERVIEW_IDS.small}`
  const ok = await call(sim, path, { token: login.json.token, body: { images: ['signature'] } })
  t.equal(ok.status, 200, 'the fresh admin token works')
  clock.advance(61_000)
  const expired = await call(sim, path, { token: login.json.token, body: { images: ['signature'] } })
  assertIncodeError(t, expired, 401, sim.paths.images, 'expired admin token')
})
