import t, { type Test } from 'tap'
import {
  CircuitOpenError,
  ClientClosedError,
  UpstreamStatusError,
  UpstreamUnavailableError,
} from '../../src/errors.js'
import { Metrics } from '../../src/metrics.js'
import { SEEDED_SESSIONS, type SimulatorOptions } from '../../src/simulator/index.js'
import { AdminTokenProvider } from '../../src/upstream/adminToken.js'
import type { Caller } from '../../src/domain/calls.js'
import { IncodeClient } from '../../src/upstream/incode.js'
import { SizeEstimator } from '../../src/domain/sizeEstimator.js'
import { splitFetch } from '../../src/services/splitFetch.js'
import { until } from './held.js'
import { inMs, metricValue, rejectionOf, startServer, testConfig, upstreamPolicy } from './helpers.js'
import { simConfig, startSim } from './withSimulator.js'

const small = SEEDED_SESSIONS[1]?.interviewId ?? ''
const full = SEEDED_SESSIONS[0]?.interviewId ?? ''
const signature = { images: ['signature'] }
const ctx = () => ({ deadlineAt: inMs(10_000) })
const THRESHOLD = 3
/**
 * Long enough that the calls a test makes while the circuit is open all fall inside it on a busy
 * machine; the tests wait for the half-open state rather than sleep for it.
 */
const RESET_MS = 2_000

async function setup(t: Test, options: { sim?: SimulatorOptions; env?: Record<string, string> } = {}) {
  const sim = await startSim(t, options.sim)
  const config = simConfig(sim, {
    BREAKER_FAILURE_THRESHOLD: String(THRESHOLD),
    BREAKER_RESET_MS: String(RESET_MS),
    RETRY_BASE_MS: '5',
    RETRY_MAX_DELAY_MS: '20',
    ...options.env,
  })
  const metrics = new Metrics()
  const policy = upstreamPolicy(t, config, { metrics })
  const tokens = new AdminTokenProvider({ config, policy, metrics })
  const incode = new IncodeClient({ config, policy, adminTokens: tokens })
  const caller: Caller = { kind: 'token', token: sim.sessionToken(small), interviewId: small }
  return { sim, config, metrics, policy, tokens, incode, caller }
}

/** Makes `count` calls that fail with Incode's 500. */
async function fail500(t: Test, incode: IncodeClient, caller: Caller, count: number) {
  for (let i = 0; i < count; i++) {
    const err = await rejectionOf(incode.call('images', caller, signature, ctx()))
    t.match(err, { upstreamStatus: 500 }, `call ${i + 1} fails with Incode's 500`)
  }
}

void t.test(
  'opens after consecutive 500s, fails fast without calling Incode, closes on a good probe',
  async (t) => {
    const { sim, metrics, incode, caller } = await setup(t)
    t.equal(incode.breakerState(), 'closed', 'closed at first')
    t.equal(await metricValue(metrics.breakerState, { endpoint: 'images' }), 0, 'gauge 0 while closed')

    sim.setFaults({ errorRate: 1, errorStatus: 500 })
    await fail500(t, incode, caller, THRESHOLD)
    t.equal(incode.breakerState(), 'open', `open after ${THRESHOLD} failures`)
    t.equal(await metricValue(metrics.breakerState, { endpoint: 'images' }), 2, 'gauge 2 while open')
    t.equal(
      await metricValue(metrics.breakerState, { endpoint: 'imageLinks' }),
      0,
      "the links endpoint's gauge stays 0",
    )

    const seen = sim.calls.length
    const err = await rejectionOf(incode.call('images', caller, signature, ctx()))
    t.ok(err instanceof CircuitOpenError, 'a CircuitOpenError')
    t.match(err, { statusCode: 503, code: 'UPSTREAM_CIRCUIT_OPEN' }, '503 UPSTREAM_CIRCUIT_OPEN')
    const retryAfter = (err instanceof CircuitOpenError && err.retryAfterSeconds) || 0
    t.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After: the open time left, rounded up (${retryAfter})`)
    const forwarded = await rejectionOf(incode.forward('images', { kind: 'token', token: 'x' }, {}, ctx()))
    t.ok(forwarded instanceof CircuitOpenError, 'forward() is refused too')
    t.equal(sim.calls.length, seen, 'Incode saw nothing while the circuit was open')

    await until(() => incode.breakerState() === 'half-open')
    t.equal(incode.breakerState(), 'half-open', 'half-open once the reset time has passed')
    sim.setFaults(undefined)
    const answer = await incode.call('images', caller, signature, ctx())
    t.equal(answer.status, 200, 'the probe succeeds')
    t.equal(sim.calls.length, seen + 1, 'the probe reached Incode')
    t.equal(incode.breakerState(), 'closed', 'closed after the good probe')
    t.equal(await metricValue(metrics.breakerState, { endpoint: 'images' }), 0, 'gauge back to 0')
  },
)

void t.test('Retry-After is the open time left', async (t) => {
  const { sim, incode, caller } = await setup(t, { env: { BREAKER_RESET_MS: '5000' } })
  sim.setFaults({ errorRate: 1, errorStatus: 500 })
  await fail500(t, incode, caller, THRESHOLD)
  const err = await rejectionOf(incode.call('images', caller, signature, ctx()))
  const seconds = (err instanceof CircuitOpenError && err.retryAfterSeconds) || 0
  t.ok(seconds >= 4 && seconds <= 5, `about 5 s (${seconds})`)
})

void t.test('a failed probe opens it again', async (t) => {
  const { sim, incode, caller } = await setup(t)
  sim.setFaults({ errorRate: 1, errorStatus: 500 })
  await fail500(t, incode, caller, THRESHOLD)
  await until(() => incode.breakerState() === 'half-open')
  const seen = sim.calls.length
  await fail500(t, incode, caller, 1)
  t.equal(sim.calls.length, seen + 1, 'the probe reached Incode')
  t.equal(incode.breakerState(), 'open', 'open again after one failed probe')
  const err = await rejectionOf(incode.call('images', caller, signature, ctx()))
  t.ok(err instanceof CircuitOpenError, 'and failing fast again')
})

void t.test('while the probe is out, other calls fail fast', async (t) => {
  const { sim, incode, caller } = await setup(t)
  sim.setFaults({ errorRate: 1, errorStatus: 500 })
  await fail500(t, incode, caller, THRESHOLD)
  await until(() => incode.breakerState() === 'half-open')
  sim.setFaults({ extraLatencyMs: 300 })
  const probe = incode.call('images', caller, signature, ctx())
  const other = await rejectionOf(incode.call('images', caller, signature, ctx()))
  t.ok(other instanceof CircuitOpenError, 'a second call is refused while the probe is out')
  t.equal(incode.breakerState(), 'half-open', 'half-open meanwhile')
  t.equal((await probe).status, 200, 'the probe succeeds')
  t.equal(incode.breakerState(), 'closed', 'and closes the circuit')
})

void t.test('4xx answers do not open it', async (t) => {
  const { sim, incode } = await setup(t)
  for (let i = 0; i < THRESHOLD + 2; i++) {
    await rejectionOf(incode.call('images', { kind: 'token', token: 'bad-token' }, signature, ctx()))
    await rejectionOf(
      incode.call(
        'images',
        { kind: 'token', token: sim.sessionToken(small), interviewId: full },
        signature,
        ctx(),
      ),
    )
  }
  const statuses = new Set(sim.callsTo('images').map((c) => c.status))
  t.same([...statuses].sort(), [401, 403], 'Incode answered 401 and 403')
  t.equal(incode.breakerState(), 'closed', 'the circuit stays closed')
})

void t.test('502s in a row whose body states the size cap do not open it', async (t) => {
  const { sim, incode, caller } = await setup(t, { sim: { responseCapBytes: 1000 } })
  for (let i = 0; i < THRESHOLD + 2; i++) {
    const err = await rejectionOf(incode.call('images', caller, { images: ['fullFrameFrontID'] }, ctx()))
    t.match(err, { upstreamStatus: 502 }, `call ${i + 1}: Incode's size-cap 502`)
  }
  t.same(
    sim.callsTo('images').map((c) => c.status),
    Array.from({ length: THRESHOLD + 2 }, () => 502),
    'Incode answered 502 every time, nothing in between',
  )
  t.equal(incode.breakerState(), 'closed', 'the circuit stays closed')
})

void t.test('502s in a row that are not the size cap open it', async (t) => {
  const { sim, incode, caller } = await setup(t, { env: { RETRY_BUDGET_RATIO: '0' } })
  sim.setFaults({ errorRate: 1, errorStatus: 502 })
  for (let i = 0; i < THRESHOLD; i++) {
    const err = await rejectionOf(incode.call('images', caller, signature, ctx()))
    t.match(err, { upstreamStatus: 502 }, `call ${i + 1}: Incode's 502 for a small answer`)
  }
  t.equal(incode.breakerState(), 'open', `open after ${THRESHOLD} such 502s`)
})

void t.test('a malformed or cut-off 200 counts as a failure', async (t) => {
  for (const [what, faults] of [
    ['HTML in a 200', { malformedRate: 1 }],
    ['a 200 cut off', { truncateRate: 1 }],
  ] as const) {
    const { sim, incode, caller } = await setup(t, { env: { RETRY_MAX: '0' } })
    sim.setFaults(faults)
    // The 200 comes back to its caller (which will refuse to read it); the breaker counts it.
    for (let i = 0; i < THRESHOLD; i++) {
      await incode.call('images', caller, signature, ctx()).catch(() => undefined)
    }
    t.equal(incode.breakerState(), 'open', `${what}: open after ${THRESHOLD} such answers`)
  }
})

/** A gateway's page, as a proxy in front of Incode might answer: it says nothing of the size. */
const GATEWAY_PAGE = '<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>'

void t.test('an opaque 502 counts only where the size makes the cap implausible', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(502, { 'content-type': 'text/html' })
      res.end(GATEWAY_PAGE)
    })
  })
  const config = testConfig(upstream.url, {
    BREAKER_FAILURE_THRESHOLD: String(THRESHOLD),
    BREAKER_RESET_MS: '60000',
  })
  const policy = upstreamPolicy(t, config)
  const incode = new IncodeClient({ config, policy })
  const fetch = (estimator: SizeEstimator, type: 'fullFrameFrontID' | 'signature') =>
    splitFetch({
      incode,
      estimator,
      budgetBytes: config.CHUNK_BUDGET_BYTES,
      concurrency: 1,
      endpoint: 'images',
      caller: { kind: 'token', token: 'a-token' },
      types: [type],
      ctx: ctx(),
      failFast: false,
      onAnswer: () => undefined,
    })

  // 6 MB raw is 8 MB as base64: a plausible size for the 10 MB cap.
  const large = new SizeEstimator({ defaults: { fullFrameFrontID: 6_000_000 } })
  for (let i = 0; i < THRESHOLD + 2; i++) {
    const outcome = await fetch(large, 'fullFrameFrontID')
    t.match(
      outcome.failures.get('fullFrameFrontID'),
      { code: 'IMAGE_TOO_LARGE' },
      `large image, call ${i + 1}: read as the size cap`,
    )
  }
  t.equal(upstream.requests.length, THRESHOLD + 2, 'one call each, no retry of a size cap')
  t.equal(incode.breakerState(), 'closed', 'size-cap 502s in a row do not open the breaker')

  const small = new SizeEstimator()
  for (let i = 0; i < THRESHOLD; i++) {
    const outcome = await fetch(small, 'signature')
    t.match(
      outcome.failures.get('signature'),
      { code: /^UPSTREAM_(502|CIRCUIT_OPEN)$/ },
      `small image, call ${i + 1}: an upstream failure, not "too large"`,
    )
    t.notOk(small.isMarkedTooLarge('signature'), `small image, call ${i + 1}: not marked too large`)
  }
  t.equal(incode.breakerState(), 'open', `502s for small answers open the breaker after ${THRESHOLD}`)
})

void t.test('a 200 whose JSON is cut short (a whole HTTP answer) counts as a failure', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"signature":"AAAA')
    })
  })
  const config = testConfig(upstream.url, { BREAKER_FAILURE_THRESHOLD: String(THRESHOLD) })
  const policy = upstreamPolicy(t, config)
  const incode = new IncodeClient({ config, policy })
  for (let i = 0; i < THRESHOLD; i++) {
    const answer = await incode.call('imageLinks', { kind: 'token', token: 'a-token' }, signature, ctx())
    t.equal(answer.status, 200, `call ${i + 1}: the 200 comes back to its caller`)
  }
  t.equal(incode.breakerState('imageLinks'), 'open', `open after ${THRESHOLD} such answers`)
  t.equal(incode.breakerState('images'), 'closed', 'the other endpoints are not concerned')
})

void t.test('transport failures open it: connection resets, after retries', async (t) => {
  const { sim, incode, caller } = await setup(t, { env: { RETRY_MAX: '1' } })
  sim.setFaults({ resetRate: 1 })
  for (let i = 0; i < THRESHOLD; i++) {
    const err = await rejectionOf(incode.call('images', caller, signature, ctx()))
    t.ok(err instanceof UpstreamUnavailableError, `call ${i + 1}: Incode unreachable`)
  }
  t.equal(sim.callsTo('images').length, THRESHOLD * 2, 'each call was tried twice (one retry)')
  t.equal(incode.breakerState(), 'open', 'open after three failed calls')
})

void t.test('a success in between resets the count of consecutive failures', async (t) => {
  const { sim, incode, caller } = await setup(t)
  sim.setFaults({ errorRate: 1, errorStatus: 500 })
  await fail500(t, incode, caller, THRESHOLD - 1)
  sim.setFaults(undefined)
  t.equal((await incode.call('images', caller, signature, ctx())).status, 200, 'one success')
  sim.setFaults({ errorRate: 1, errorStatus: 500 })
  await fail500(t, incode, caller, THRESHOLD - 1)
  t.equal(incode.breakerState(), 'closed', 'still closed')
})

void t.test('a caller leaving is not a failure', async (t) => {
  const { sim, incode, caller } = await setup(t)
  sim.setFaults({ extraLatencyMs: 300 })
  for (let i = 0; i < THRESHOLD + 1; i++) {
    const leaving = new AbortController()
    setTimeout(() => leaving.abort(), 20)
    const err = await rejectionOf(
      incode.call('images', caller, signature, { signal: leaving.signal, deadlineAt: inMs(10_000) }),
    )
    t.ok(err instanceof ClientClosedError, `call ${i + 1}: the caller left`)
  }
  t.equal(incode.breakerState(), 'closed', 'the circuit stays closed')
})

void t.test('failed admin log-ins open the log-in breaker only', async (t) => {
  const { sim, config, metrics, policy, incode, caller } = await setup(t)
  sim.setFaults({ loginFailure: true })
  for (let i = 0; i < THRESHOLD; i++) {
    // A new provider each time: one provider backs off after its failed log-in.
    const err = await rejectionOf(new AdminTokenProvider({ config, policy, metrics }).get(ctx()))
    t.ok(err instanceof UpstreamStatusError, `log-in ${i + 1} fails (Incode answered 500)`)
  }
  t.equal(incode.breakerState('adminLogin'), 'open', "failed log-ins open the log-in's breaker")
  t.equal(
    await metricValue(metrics.breakerState, { endpoint: 'adminLogin' }),
    2,
    "the log-in's gauge says open",
  )

  const logins = sim.callsTo('adminLogin').length
  const err = await rejectionOf(
    new AdminTokenProvider({ config, policy, metrics }).get({ deadlineAt: inMs(10_000) }),
  )
  t.ok(err instanceof CircuitOpenError, 'a log-in while open fails fast')
  t.equal(sim.callsTo('adminLogin').length, logins, 'without reaching Incode')

  t.equal(incode.breakerState('images'), 'closed', "the image endpoint's breaker stays closed")
  t.equal(await metricValue(metrics.breakerState, { endpoint: 'images' }), 0, "the images' gauge says closed")
  const answer = await incode.call('images', caller, signature, ctx())
  t.equal(answer.status, 200, 'calls with a session token are served meanwhile')
})
