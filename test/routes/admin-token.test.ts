import t from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { LOGIN_BACKOFF_BASE_MS } from '../../src/upstream/adminToken.js'
import { partnerHeaders } from '../helpers/build.js'
import {
  buildForRoutes,
  assertProblem,
  fakeClock,
  HOUR,
  MINUTE,
  post,
  warmSeededSessions,
} from './fixtures/helpers.js'

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS

const images = (app: Parameters<typeof post>[0], interviewId: string = small) =>
  post(app, `/v1/sessions/${interviewId}/images`, { images: ['signature'] }, partnerHeaders())

t.test('one admin log-in serves many requests', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  for (let i = 0; i < 5; i++) {
    const res = await images(app)
    t.equal(res.statusCode, 200, `sequential request ${i + 1}: 200`)
  }
  const concurrent = await Promise.all(Array.from({ length: 10 }, () => images(app, full)))
  t.ok(
    concurrent.every((res) => res.statusCode === 200),
    '10 concurrent requests: 200',
  )
  const links = await post(app, `/v1/sessions/${full}/image-links`, { images: ['selfie'] }, partnerHeaders())
  t.equal(links.statusCode, 200, 'a links request: 200')
  t.equal(simulator.callsTo('adminLogin').length, 1, 'one log-in for all of them')
  const calls = [...simulator.callsTo('images'), ...simulator.callsTo('imageLinks')]
  t.ok(
    calls.every((call) => call.tokenKind === 'admin' && call.status === 200),
    'every upstream call used the admin token successfully',
  )
})

t.test('Incode refusing the admin token (401): one new log-in, and the request succeeds', async (t) => {
  const appClock = fakeClock()
  const incodeClock = fakeClock(appClock.now())
  const { app, simulator } = await buildForRoutes(t, {
    now: appClock.now,
    simulator: { now: incodeClock.now, adminTokenTtlMs: HOUR },
  })
  const first = await images(app)
  t.equal(first.statusCode, 200, 'first request: 200')
  t.equal(simulator.callsTo('adminLogin').length, 1, 'one log-in')

  // Incode's clock passes the token's lifetime; the app's does not, so it still trusts the token.
  incodeClock.advance(HOUR + MINUTE)
  const second = await images(app)
  t.equal(second.statusCode, 200, 'the request after the expiry: 200')
  t.equal(simulator.callsTo('adminLogin').length, 2, 'exactly one more log-in')
  t.same(
    simulator.callsTo('images').map((call) => call.status),
    [200, 401, 200],
    'Incode refused the stale token once, then answered the retry',
  )
  const third = await images(app)
  t.equal(third.statusCode, 200, 'the next request: 200')
  t.equal(simulator.callsTo('adminLogin').length, 2, 'with the renewed token, no further log-in')
})

t.test('20 concurrent requests all refused (401) share one extra log-in', async (t) => {
  const appClock = fakeClock()
  const incodeClock = fakeClock(appClock.now())
  const { app, simulator } = await buildForRoutes(t, {
    now: appClock.now,
    simulator: { now: incodeClock.now, adminTokenTtlMs: HOUR },
  })
  t.equal((await images(app)).statusCode, 200, 'a first request logs in')
  incodeClock.advance(HOUR + MINUTE)
  simulator.resetCalls()

  const answers = await Promise.all(Array.from({ length: 20 }, () => images(app)))
  t.ok(
    answers.every((res) => res.statusCode === 200),
    'all 20 answered 200',
  )
  t.equal(simulator.callsTo('adminLogin').length, 1, 'exactly one extra log-in')
  const refused = simulator.callsTo('images').filter((call) => call.status === 401)
  const served = simulator.callsTo('images').filter((call) => call.status === 200)
  t.ok(refused.length >= 1, `Incode refused the stale token (${refused.length} times)`)
  t.equal(served.length, 20, 'and served each request once with the new token')
})

t.test('the admin log-in failing upstream → 502 problem, no credentials in it', async (t) => {
  const clock = fakeClock()
  const { app, simulator } = await buildForRoutes(t, {
    simulator: { faults: { loginFailure: true } },
    now: clock.now,
  })
  const res = await images(app)
  const body = assertProblem(t, res, 502, /.+/, 'log-in failing')
  t.equal(body.status, 502, '502')
  t.ok(simulator.callsTo('adminLogin').length >= 1, 'the log-in was tried')
  t.equal(simulator.callsTo('images').length, 0, 'no image call without a token')
  for (const secret of [simulator.adminPassword, simulator.adminEmail, simulator.apiKey]) {
    t.notOk(res.body.includes(secret), `the answer does not contain ${secret.slice(0, 3)}…`)
    t.notOk(JSON.stringify(res.headers).includes(secret), `nor do its headers`)
  }
  const links = await post(app, `/v1/sessions/${small}/image-links`, { images: ['selfie'] }, partnerHeaders())
  assertProblem(t, links, 502, /.+/, 'links with the log-in failing')
  t.notOk(links.body.includes(simulator.adminPassword), 'no password in the links answer')

  simulator.setFaults(undefined)
  clock.advance(LOGIN_BACKOFF_BASE_MS) // the log-in is tried again once its back-off has passed
  const recovered = await images(app)
  t.equal(recovered.statusCode, 200, 'once the log-in works again: 200')
})

t.test('without admin credentials: interview-ID routes 503, session-token routes work', async (t) => {
  const { app, simulator } = await buildForRoutes(t, { admin: false })
  t.equal(app.adminTokens, undefined, 'no admin token provider')
  const interviewRoutes: Array<[string, unknown]> = [
    [`/v1/sessions/${small}/images`, { images: ['selfie'] }],
    [`/v1/sessions/${small}/image-links`, { images: ['selfie'] }],
    [`/v1/sessions/${small}/second-id/images`, { images: ['fullFrameFrontID'] }],
    [`/v1/sessions/${small}/images/concatenated`, {}],
  ]
  for (const [url, body] of interviewRoutes) {
    const res = await post(app, url, body, partnerHeaders())
    assertProblem(t, res, 503, 'ADMIN_NOT_CONFIGURED', url)
  }
  const headers = {
    'content-type': 'application/json',
    'x-incode-session-token': simulator.sessionToken(small),
  }
  const sessionImages = await post(app, '/v1/session/images', { images: ['selfie'] }, headers)
  t.equal(sessionImages.statusCode, 200, 'session-token images: 200')
  t.same(Object.keys(sessionImages.json().images), ['selfie'], 'with the image')
  const sessionLinks = await post(app, '/v1/session/image-links', { images: ['selfie'] }, headers)
  t.equal(sessionLinks.statusCode, 200, 'session-token links: 200')
  t.equal(simulator.callsTo('adminLogin').length, 0, 'no log-in attempted')
  t.same(
    simulator.calls.map((call) => call.endpoint),
    ['images', 'imageLinks'],
    'Incode was called only for the session-token routes',
  )
})
