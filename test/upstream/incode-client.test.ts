import t, { type Test } from 'tap'
import type { Config } from '../../src/config.js'
import { AppError, ClientClosedError, UpstreamStatusError, UpstreamTimeoutError } from '../../src/errors.js'
import { SEEDED_SESSIONS, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js'
import { AdminTokenProvider } from '../../src/upstream/adminToken.js'
import { IncodeClient } from '../../src/upstream/incode.js'
import { inMs, rejectionOf, upstreamPolicy } from './helpers.js'
import { fakeClock, HOUR, simConfig, startSim } from './withSimulator.js'

const full = SEEDED_SESSIONS[0]?.interviewId ?? ''
const small = SEEDED_SESSIONS[1]?.interviewId ?? ''
// Generous: these calls test answers, not timing, and the machine may be busy (deadlines are tested below).
const ctx = () => ({ deadlineAt: inMs(60_000) })
const signature = { images: ['signature'] }

interface Setup {
  sim: Simulator
  config: Config
  tokens: AdminTokenProvider
  incode: IncodeClient
}

async function setup(
  t: Test,
  options: { sim?: SimulatorOptions; env?: Record<string, string>; now?: () => number } = {},
): Promise<Setup> {
  const sim = await startSim(t, options.sim)
  const config = simConfig(sim, options.env)
  const policy = upstreamPolicy(t, config)
  const tokens = new AdminTokenProvider({ config, policy, ...(options.now ? { now: options.now } : {}) })
  return { sim, config, tokens, incode: new IncodeClient({ config, policy, adminTokens: tokens }) }
}

function json(body: Buffer): Record<string, unknown> {
  return JSON.parse(body.toString('utf8')) as Record<string, unknown>
}

void t.test('admin caller: the admin token and ?id= reach Incode; the answer comes back', async (t) => {
  const { sim, tokens, incode } = await setup(t)
  const answer = await incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx())
  t.equal(answer.status, 200, '200')
  t.equal(typeof json(answer.body).signature, 'string', 'the signature comes back as base64')
  t.equal(answer.headers['content-type'], 'application/json', 'headers come back lower-cased')
  const call = sim.callsTo('images')[0]
  t.match(
    call,
    { tokenKind: 'admin', interviewId: small, status: 200 },
    'Incode saw the admin token for that interview',
  )
  await incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx())
  t.equal(tokens.logins, 1, 'the admin token was logged in for once and reused')
  t.equal(incode.callCount, 2, 'callCount counts the image calls')
})

void t.test('session-token caller, with and without the interview id, and under /0', async (t) => {
  const { sim, tokens, incode } = await setup(t)
  const token = sim.sessionToken(small)
  const named = await incode.call('images', { kind: 'token', token, interviewId: small }, signature, ctx())
  t.equal(named.status, 200, 'with ?id=')
  const unnamed = await incode.call('images', { kind: 'token', token }, signature, ctx())
  t.equal(unnamed.status, 200, 'without ?id=: Incode takes the interview from the token')
  const zero = await incode.call('images', { kind: 'token', token }, signature, ctx(), { zeroPath: true })
  t.equal(zero.status, 200, 'under /0 without the API key')
  t.same(
    sim.callsTo('images').map((c) => [c.path, c.tokenKind, c.interviewId]),
    [
      ['/omni/get/images', 'session', small],
      ['/omni/get/images', 'session', small],
      ['/0/omni/get/images', 'session', small],
    ],
    'Incode saw the session token each time',
  )
  t.equal(tokens.logins, 0, 'no admin log-in for token callers')
  t.equal(incode.callCount, 3, 'three calls counted')
})

void t.test("a session token on another interview → 403 stays 403 (the caller's token)", async (t) => {
  const { sim, incode } = await setup(t)
  const err = await rejectionOf(
    incode.call(
      'images',
      { kind: 'token', token: sim.sessionToken(small), interviewId: full },
      signature,
      ctx(),
    ),
  )
  t.ok(err instanceof UpstreamStatusError, 'an UpstreamStatusError')
  t.match(err, { statusCode: 403, upstreamStatus: 403, code: 'UPSTREAM_403' }, 'status 403 kept')
  t.match(
    err instanceof UpstreamStatusError && err.upstreamBody,
    { status: 403, path: '/omni/get/images' },
    "Incode's body",
  )
})

void t.test('a bad caller token → 401 with its Incode body; no admin refresh', async (t) => {
  const { tokens, incode } = await setup(t)
  const err = await rejectionOf(incode.call('images', { kind: 'token', token: 'nope' }, signature, ctx()))
  t.match(err, { statusCode: 401, upstreamStatus: 401 }, '401 for the caller')
  t.equal(tokens.logins, 0, 'no log-in')
  t.equal(incode.callCount, 1, 'no retry')
})

void t.test('admin 401 (token expired at Incode) → one refresh and one retry', async (t) => {
  const simClock = fakeClock()
  // The provider's clock stays real, so it believes its cached token is valid when Incode does not.
  const { sim, tokens, incode } = await setup(t, { sim: { now: simClock.now } })
  await incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx())
  simClock.advance(25 * HOUR)
  const answer = await incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx())
  t.equal(answer.status, 200, 'the retry succeeded')
  t.same(
    sim.callsTo('images').map((c) => c.status),
    [200, 401, 200],
    'Incode saw: ok, refused (expired), ok with the new token',
  )
  t.equal(tokens.logins, 2, 'one extra log-in')
  t.equal(incode.callCount, 3, 'the retry is counted')
})

void t.test('20 concurrent admin 401s → one log-in, every call retried once', async (t) => {
  const simClock = fakeClock()
  const { sim, tokens, incode } = await setup(t, {
    sim: { now: simClock.now, faults: { extraLatencyMs: 30, endpoints: ['adminLogin'] } },
  })
  await incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx())
  simClock.advance(25 * HOUR)
  sim.resetCalls()
  const answers = await Promise.all(
    Array.from({ length: 20 }, () =>
      incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx()),
    ),
  )
  t.ok(
    answers.every((a) => a.status === 200),
    'all 20 succeeded',
  )
  t.equal(tokens.logins, 2, 'one log-in for the 20 refusals')
  t.equal(sim.callsTo('adminLogin').length, 1, 'Incode saw one log-in')
  const statuses = sim.callsTo('images').map((c) => c.status)
  t.equal(statuses.filter((s) => s === 401).length, 20, '20 refusals')
  t.equal(statuses.filter((s) => s === 200).length, 20, '20 successful retries')
})

void t.test('admin 401 again after the refresh → 502 (our credentials), one retry only', async (t) => {
  // Tokens that expire as they are issued (ttl 1 ms, a clock always mid-second): Incode refuses
  // every one. The clock moves a second per reading so that each log-in yields a different token.
  let tick = 0
  const { sim, tokens, incode } = await setup(t, {
    sim: { adminTokenTtlMs: 1, now: () => 1_700_000_000_500 + 1000 * tick++ },
  })
  const err = await rejectionOf(
    incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx()),
  )
  t.ok(err instanceof UpstreamStatusError, 'an UpstreamStatusError')
  t.match(err, { statusCode: 502, upstreamStatus: 401 }, '401 after refresh → 502')
  t.equal(sim.callsTo('images').length, 2, 'the call was tried twice, no more')
  t.equal(tokens.logins, 2, 'one log-in, one renewal')
})

void t.test('a fixed admin token refused → 502 at once (refreshing cannot help)', async (t) => {
  const { sim, tokens, incode } = await setup(t, { env: { INCODE_ADMIN_TOKEN: 'not-a-valid-token' } })
  const err = await rejectionOf(
    incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx()),
  )
  t.match(err, { statusCode: 502, upstreamStatus: 401 }, '502')
  t.equal(sim.callsTo('images').length, 1, 'no retry')
  t.equal(tokens.logins, 0, 'no log-in')
})

void t.test('admin caller with a bad API key (403) → 502', async (t) => {
  const sim = await startSim(t)
  const config = simConfig(sim, { INCODE_API_KEY: 'wrong-key', INCODE_ADMIN_TOKEN: sim.adminToken() })
  const policy = upstreamPolicy(t, config)
  const incode = new IncodeClient({
    config,
    policy,
    adminTokens: new AdminTokenProvider({ config, policy }),
  })
  const err = await rejectionOf(
    incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx()),
  )
  t.match(err, { statusCode: 502, upstreamStatus: 403 }, 'our API key failing is a 502')
  t.notMatch(err.message, 'wrong-key', 'the key is not in the message')
})

void t.test("Incode's own 502 (answer over its cap) keeps upstreamStatus 502 for the splitter", async (t) => {
  const { incode } = await setup(t, { sim: { responseCapBytes: 1000 } })
  const err = await rejectionOf(
    incode.call('images', { kind: 'admin', interviewId: full }, { images: ['selfie', 'document'] }, ctx()),
  )
  t.match(err, { statusCode: 502, upstreamStatus: 502, code: 'UPSTREAM_502' }, 'upstreamStatus 502')
})

void t.test('forward() returns non-2xx answers as they are', async (t) => {
  const { sim, incode } = await setup(t)
  const refused = await incode.forward('images', { kind: 'token', token: 'nope' }, signature, ctx())
  t.equal(refused.status, 401, '401 comes back, not thrown')
  t.match(json(refused.body), { status: 401, path: '/omni/get/images' }, "with Incode's error body")
  const other = await incode.forward(
    'images',
    { kind: 'token', token: sim.sessionToken(small), interviewId: full },
    signature,
    ctx(),
  )
  t.equal(other.status, 403, '403 comes back')
  const ok = await incode.forward(
    'images',
    { kind: 'token', token: sim.sessionToken(small) },
    signature,
    ctx(),
  )
  t.equal(ok.status, 200, 'and 200 too')
  t.equal(incode.callCount, 3, 'each forward is counted')
})

void t.test('an admin caller without an admin token provider → 503 ADMIN_NOT_CONFIGURED', async (t) => {
  const sim = await startSim(t)
  const config = simConfig(sim)
  const policy = upstreamPolicy(t, config)
  const incode = new IncodeClient({ config, policy })
  const err = await rejectionOf(
    incode.call('images', { kind: 'admin', interviewId: small }, signature, ctx()),
  )
  t.ok(err instanceof AppError, 'an AppError')
  t.match(err, { statusCode: 503, code: 'ADMIN_NOT_CONFIGURED' }, 'the same answer as the /v1 routes give')
  t.equal(sim.calls.length, 0, 'Incode saw nothing')
})

void t.test("the caller's signal and deadline reach the upstream call", async (t) => {
  const { sim, incode } = await setup(t, { sim: { faults: { extraLatencyMs: 300 } } })
  const token = sim.sessionToken(small)
  const leaving = new AbortController()
  setTimeout(() => leaving.abort(), 30)
  const closed = await rejectionOf(
    incode.call('images', { kind: 'token', token }, signature, {
      signal: leaving.signal,
      deadlineAt: inMs(10_000),
    }),
  )
  t.ok(closed instanceof ClientClosedError, 'an abort → ClientClosedError')
  const late = await rejectionOf(
    incode.call('images', { kind: 'token', token }, signature, { deadlineAt: inMs(50) }),
  )
  t.ok(late instanceof UpstreamTimeoutError, 'a passed deadline → UpstreamTimeoutError')
})
