import t from 'tap'
import { ClientClosedError, UpstreamStatusError, UpstreamTimeoutError } from '../../src/errors.js'
import {
  AdminTokenProvider,
  LOGIN_BACKOFF_BASE_MS,
  LOGIN_BACKOFF_MAX_MS,
  loginBackoffMs,
} from '../../src/upstream/adminToken.js'
import { inMs, rejectionOf, startServer, testConfig, upstreamPolicy } from './helpers.js'
import { fakeClock, HOUR, simConfig, startSim } from './withSimulator.js'

const ctx = () => ({ deadlineAt: inMs(10_000) })

void t.test('logs in once, then serves the cached token', async (t) => {
  const sim = await startSim(t)
  const config = simConfig(sim)
  const policy = upstreamPolicy(t, config)
  const tokens = new AdminTokenProvider({ config, policy })

  const first = await tokens.get(ctx())
  const second = await tokens.get(ctx())
  t.equal(second, first, 'the same token both times')
  t.equal(tokens.logins, 1, 'one log-in')
  t.equal(sim.callsTo('adminLogin').length, 1, 'Incode saw one log-in')
  t.equal(sim.callsTo('adminLogin')[0]?.status, 200, 'which succeeded')
  t.match(first, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the token is the JWT Incode gave')
})

void t.test('20 concurrent get() share one log-in', async (t) => {
  const sim = await startSim(t, { faults: { extraLatencyMs: 50, endpoints: ['adminLogin'] } })
  const config = simConfig(sim)
  const policy = upstreamPolicy(t, config)
  const tokens = new AdminTokenProvider({ config, policy })

  const all = await Promise.all(Array.from({ length: 20 }, () => tokens.get(ctx())))
  t.equal(new Set(all).size, 1, 'all 20 callers got the same token')
  t.equal(tokens.logins, 1, 'one log-in')
  t.equal(sim.callsTo('adminLogin').length, 1, 'Incode saw one log-in')
})

void t.test('renews in the background once the token is within the refresh margin', async (t) => {
  const clock = fakeClock()
  const sim = await startSim(t, { now: clock.now, adminTokenTtlMs: 24 * HOUR })
  const config = simConfig(sim, { ADMIN_TOKEN_REFRESH_MARGIN_MS: String(10 * 60_000) })
  const policy = upstreamPolicy(t, config)
  const tokens = new AdminTokenProvider({ config, policy, now: clock.now })

  const first = await tokens.get(ctx())
  clock.advance(23 * HOUR + 45 * 60_000) // 15 min left: outside the 10 min margin
  t.equal(await tokens.get(ctx()), first, 'still the cached token 15 min before expiry')
  t.equal(tokens.logins, 1, 'no new log-in yet')
  clock.advance(10 * 60_000) // 5 min left: inside the margin
  t.equal(await tokens.get(ctx()), first, 'inside the margin the current token is still served at once')
  await tokens.settled()
  t.equal(tokens.logins, 2, 'while a second log-in renewed it in the background')
  const renewed = await tokens.get(ctx())
  t.not(renewed, first, 'a new token 5 min before expiry')
  t.equal(await tokens.get(ctx()), renewed, 'the new token is cached in turn')
  t.equal(tokens.logins, 2, 'and no third log-in')
})

void t.test('a token that is not a JWT is assumed to live 24 hours', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ token: `opaque-${upstream.requests.length}` }))
  })
  const clock = fakeClock()
  const config = testConfig(upstream.url, {
    INCODE_ADMIN_EMAIL: 'a@example.com',
    INCODE_ADMIN_PASSWORD: 'pw',
    ADMIN_TOKEN_REFRESH_MARGIN_MS: String(10 * 60_000),
  })
  const policy = upstreamPolicy(t, config)
  const tokens = new AdminTokenProvider({ config, policy, now: clock.now })

  t.equal(await tokens.get(ctx()), 'opaque-1', 'the first token')
  clock.advance(23 * HOUR + 49 * 60_000)
  t.equal(await tokens.get(ctx()), 'opaque-1', 'still cached 11 min before the assumed expiry')
  clock.advance(2 * 60_000)
  t.equal(await tokens.get(ctx()), 'opaque-1', '9 min before the assumed expiry: served, and renewed')
  await tokens.settled()
  t.equal(await tokens.get(ctx()), 'opaque-2', 'the renewed token')
})

void t.test('log-in sends the API headers and the credentials as JSON', async (t) => {
  let seen: { url?: string | undefined; headers?: Record<string, unknown>; body?: unknown } = {}
  const upstream = await startServer(t, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen = { url: req.url, headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) }
      res.end(JSON.stringify({ token: 't' }))
    })
  })
  const config = testConfig(upstream.url, {
    INCODE_ADMIN_EMAIL: 'a@example.com',
    INCODE_ADMIN_PASSWORD: 'pw',
    INCODE_API_VERSION: '2.0',
  })
  const policy = upstreamPolicy(t, config)
  await new AdminTokenProvider({ config, policy }).get(ctx())
  t.equal(seen.url, '/executive/log-in', 'posts to INCODE_PATH_ADMIN_LOGIN')
  t.match(
    seen.headers,
    { 'x-api-key': 'test-api-key', 'api-version': '2.0', 'content-type': 'application/json' },
    'API headers',
  )
  t.notOk(seen.headers?.['x-incode-hardware-id'], 'no token header on log-in')
  t.same(seen.body, { email: 'a@example.com', password: 'pw' }, 'credentials in the body')
})

void t.test('wrong credentials → 502 UpstreamStatusError without the password; backed off', async (t) => {
  const clock = fakeClock()
  const sim = await startSim(t)
  const password = 'very-secret-wrong-password'
  const config = simConfig(sim, { INCODE_ADMIN_PASSWORD: password })
  const policy = upstreamPolicy(t, config)
  const tokens = new AdminTokenProvider({ config, policy, now: clock.now })

  const err = await rejectionOf(tokens.get(ctx()))
  t.ok(err instanceof UpstreamStatusError, 'an UpstreamStatusError')
  t.match(err, { statusCode: 502, upstreamStatus: 401 }, 'Incode said 401; the service answers 502')
  t.notMatch(err.message, password, 'the message does not contain the password')
  t.notMatch(JSON.stringify(err), password, 'nor does anything else on the error')
  t.match(
    err instanceof UpstreamStatusError && err.upstreamBody,
    { status: 401 },
    "Incode's error body is kept",
  )

  t.equal(await rejectionOf(tokens.get(ctx())), err, 'during the back-off, the same error at once')
  t.equal(tokens.logins, 1, 'without a log-in')
  clock.advance(LOGIN_BACKOFF_BASE_MS)
  await rejectionOf(tokens.get(ctx()))
  t.equal(tokens.logins, 2, 'once the back-off has passed, the next get() tries again')
})

void t.test('a failed log-in is retried on the next get(), which can then succeed', async (t) => {
  const sim = await startSim(t, { faults: { loginFailure: true } })
  const config = simConfig(sim)
  const policy = upstreamPolicy(t, config)
  const clock = fakeClock()
  const tokens = new AdminTokenProvider({ config, policy, now: clock.now })

  const err = await rejectionOf(tokens.get(ctx()))
  t.match(err, { statusCode: 502, upstreamStatus: 500 }, 'a log-in 500 is a 502')
  sim.setFaults(undefined)
  clock.advance(LOGIN_BACKOFF_BASE_MS)
  t.ok(await tokens.get(ctx()), 'the next get() after the back-off logs in')
  t.equal(tokens.logins, 2, 'two log-ins in all')
})

void t.test(
  'refresh(): renews a stale token once for concurrent callers; a replaced one comes back as is',
  async (t) => {
    const clock = fakeClock()
    const sim = await startSim(t, {
      now: clock.now,
      faults: { extraLatencyMs: 30, endpoints: ['adminLogin'] },
    })
    const config = simConfig(sim)
    const policy = upstreamPolicy(t, config)
    const tokens = new AdminTokenProvider({ config, policy, now: clock.now })

    const stale = await tokens.get(ctx())
    clock.advance(1000) // so that the next token's iat (seconds) differs
    const renewed = await Promise.all(Array.from({ length: 20 }, () => tokens.refresh(stale, ctx())))
    t.equal(new Set(renewed).size, 1, 'all 20 got the same token')
    const fresh = renewed[0] ?? ''
    t.not(fresh, stale, 'a new token')
    t.equal(tokens.logins, 2, 'one log-in for the 20')
    t.equal(await tokens.refresh(stale, ctx()), fresh, 'a late refresh of the stale token gets the new one')
    t.equal(tokens.logins, 2, 'without logging in')
    t.equal(await tokens.get(ctx()), fresh, 'get() serves the renewed token')
  },
)

void t.test('a fixed INCODE_ADMIN_TOKEN is used as is and never renewed', async (t) => {
  const sim = await startSim(t)
  const config = simConfig(sim, { INCODE_ADMIN_TOKEN: 'fixed-token' })
  const policy = upstreamPolicy(t, config)
  const tokens = new AdminTokenProvider({ config, policy })
  t.equal(await tokens.get(ctx()), 'fixed-token', 'get() gives the fixed token')
  t.equal(await tokens.refresh('fixed-token', ctx()), 'fixed-token', 'refresh() gives it back unchanged')
  t.equal(tokens.logins, 0, 'no log-in')
  t.equal(sim.callsTo('adminLogin').length, 0, 'Incode saw no log-in')
})

void t.test('a caller leaving a shared log-in fails alone; the others get the token', async (t) => {
  const sim = await startSim(t, { faults: { extraLatencyMs: 200, endpoints: ['adminLogin'] } })
  const config = simConfig(sim)
  const policy = upstreamPolicy(t, config)
  const tokens = new AdminTokenProvider({ config, policy })

  const leaving = new AbortController()
  const left = rejectionOf(tokens.get({ signal: leaving.signal, deadlineAt: inMs(10_000) }))
  const late = rejectionOf(tokens.get({ deadlineAt: inMs(50) }))
  const staying = tokens.get(ctx())
  setTimeout(() => leaving.abort(), 20)
  t.ok((await left) instanceof ClientClosedError, 'the caller that left gets ClientClosedError')
  t.ok((await late) instanceof UpstreamTimeoutError, 'a caller whose deadline passes gets a timeout')
  t.ok(await staying, 'the caller that stayed gets the token')
  t.equal(tokens.logins, 1, 'one log-in for all three')
})

void t.test('no credentials at all → 503 ADMIN_NOT_CONFIGURED, no call', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end())
  const config = testConfig(upstream.url)
  const policy = upstreamPolicy(t, config)
  const err = await rejectionOf(new AdminTokenProvider({ config, policy }).get(ctx()))
  t.match(err, { statusCode: 503, code: 'ADMIN_NOT_CONFIGURED' }, 'the same answer as the /v1 routes give')
  t.equal(upstream.requests.length, 0, 'nothing was sent')
})

void t.test('log-in back-off: exponential, equal jitter, capped', (t) => {
  t.equal(
    loginBackoffMs(1, () => 0),
    LOGIN_BACKOFF_BASE_MS / 2,
    'first failure, lowest draw: half a step',
  )
  t.equal(
    loginBackoffMs(1, () => 0.999_999),
    LOGIN_BACKOFF_BASE_MS,
    'first failure, highest draw: a step',
  )
  t.equal(
    loginBackoffMs(3, () => 0.999_999),
    4 * LOGIN_BACKOFF_BASE_MS,
    'doubled per failure',
  )
  t.equal(
    loginBackoffMs(30, () => 0.999_999),
    LOGIN_BACKOFF_MAX_MS,
    'capped',
  )
  t.equal(
    loginBackoffMs(30, () => 0),
    LOGIN_BACKOFF_MAX_MS / 2,
    'never near zero, even capped',
  )
  t.end()
})

void t.test(
  'log-in failing inside the refresh margin: the current token is served until it expires, one log-in per back-off step',
  async (t) => {
    const clock = fakeClock()
    const sim = await startSim(t, { now: clock.now, adminTokenTtlMs: 24 * HOUR })
    // The log-in's breaker would open after five failures: out of the way here (see breaker.test.ts).
    const config = simConfig(sim, {
      ADMIN_TOKEN_REFRESH_MARGIN_MS: String(10 * 60_000),
      BREAKER_FAILURE_THRESHOLD: '100',
    })
    const policy = upstreamPolicy(t, config)
    // The highest jitter draw: every back-off is a full step.
    const tokens = new AdminTokenProvider({ config, policy, now: clock.now, random: () => 0.999_999 })

    const first = await tokens.get(ctx())
    sim.setFaults({ loginFailure: true })
    clock.advance(24 * HOUR - 5 * 60_000) // 5 min left: inside the margin

    const served = await Promise.all(Array.from({ length: 20 }, () => tokens.get(ctx())))
    t.same(new Set(served), new Set([first]), '20 concurrent callers get the current token at once')
    await tokens.settled()
    t.equal(sim.callsTo('adminLogin').length, 2, 'one renewal log-in for the 20 (it failed)')

    t.equal(await tokens.get(ctx()), first, 'after the failed renewal, still the current token')
    await tokens.settled()
    t.equal(sim.callsTo('adminLogin').length, 2, 'no log-in during the back-off')

    // Back-off steps 1, 2, 4, 8 s: each passing one allows one log-in, whatever the callers.
    let step = LOGIN_BACKOFF_BASE_MS
    for (let failures = 1; failures <= 4; failures++) {
      clock.advance(step)
      const again = await Promise.all(Array.from({ length: 10 }, () => tokens.get(ctx())))
      t.same(new Set(again), new Set([first]), `step ${failures}: the current token served`)
      await tokens.settled()
      t.equal(sim.callsTo('adminLogin').length, 2 + failures, `step ${failures}: one more log-in`)
      step *= 2
    }

    clock.advance(5 * 60_000) // the token has now really expired
    const err = await rejectionOf(tokens.get(ctx()))
    t.match(err, { statusCode: 502, upstreamStatus: 500 }, 'no valid token: the log-in error')

    sim.setFaults(undefined)
    clock.advance(LOGIN_BACKOFF_MAX_MS)
    const renewed = await tokens.get(ctx())
    t.not(renewed, first, 'once the log-in works again, a new token')
  },
)
