import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import {
  ClientClosedError,
  UpstreamBadResponseError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../../src/errors.js'
import { Metrics } from '../../src/metrics.js'
import { settlesThisTurn, until } from './held.js'
import type { UpstreamPolicy } from '../../src/upstream/policy.js'
import {
  closedPort,
  inMs,
  metricValue,
  rejectionOf,
  startServer,
  testConfig,
  upstreamPolicy,
} from './helpers.js'

/** Short backoffs, so that tests about what is retried do not wait for it. */
const fast = { RETRY_BASE_MS: '5', RETRY_MAX_DELAY_MS: '20' }
const body = '{"images":["selfie"]}'

function post(policy: UpstreamPolicy, options: { deadlineMs?: number; signal?: AbortSignal } = {}) {
  return policy.request({
    method: 'POST',
    path: '/omni/get/images',
    headers: { 'content-type': 'application/json' },
    body,
    deadlineAt: inMs(options.deadlineMs ?? 10_000),
    ...(options.signal ? { signal: options.signal } : {}),
  })
}

function answer(res: ServerResponse, status: number, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify({ status, message: `answer ${status}` }))
}

/** Reads the request body, then answers with `respond(attempt)` (attempt 1 first). */
function scripted(respond: (attempt: number, req: IncomingMessage, res: ServerResponse) => void) {
  let attempt = 0
  const bodies: string[] = []
  const times: number[] = []
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const n = ++attempt
    times.push(Date.now())
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString())
      respond(n, req, res)
    })
  }
  return { handler, bodies, times }
}

void t.test('a 503, then a 504, then success: retried, and the body is sent again each time', async (t) => {
  const script = scripted((n, _req, res) => answer(res, n === 1 ? 503 : n === 2 ? 504 : 200))
  const upstream = await startServer(t, script.handler)
  const metrics = new Metrics()
  const policy = upstreamPolicy(t, testConfig(upstream.url, fast), { metrics })

  const result = await post(policy)
  t.equal(result.status, 200, 'the success comes back')
  t.equal(upstream.requests.length, 3, 'the server saw three attempts')
  t.same(script.bodies, [body, body, body], 'each attempt carried the whole body')
  t.equal(await metricValue(metrics.upstreamRetries, { outcome: 'retried' }), 2, 'two retries counted')
})

void t.test('a connection reset before any answer is retried', async (t) => {
  const script = scripted((n, req, res) => (n === 1 ? req.socket.resetAndDestroy() : answer(res, 200)))
  const upstream = await startServer(t, script.handler)
  const policy = upstreamPolicy(t, testConfig(upstream.url, fast))

  const result = await post(policy)
  t.equal(result.status, 200, 'the retry succeeded')
  t.equal(upstream.requests.length, 2, 'the server saw two attempts')
})

void t.test('connection refused, then the server comes up: a retry gets through', async (t) => {
  const port = await closedPort()
  const metrics = new Metrics()
  // Jitter pinned near its top: retries after ~300 ms, ~600 ms, ~1.2 s, 2 s and 2 s, so that a
  // server slow to come up on a busy machine is still reached well within the 10 s deadline.
  const policy = upstreamPolicy(
    t,
    testConfig(`http://127.0.0.1:${port}`, { RETRY_MAX: '5', RETRY_BASE_MS: '300' }),
    { random: () => 0.999, metrics },
  )

  const pending = post(policy)
  // The first attempt was refused: a retry is waiting.
  await until(async () => (await metricValue(metrics.upstreamRetries, { outcome: 'retried' })) >= 1)
  const upstream = await startServer(t, (_req, res) => answer(res, 200), port)
  const result = await pending
  t.equal(result.status, 200, 'the call succeeded once the server was up')
  t.equal(upstream.requests.length, 1, 'the server saw the one attempt made after it came up')
})

void t.test('502, 500 and 4xx answers are not retried', async (t) => {
  const upstream = await startServer(t, (req, res) => answer(res, Number(req.url?.split('/')[2])))
  const policy = upstreamPolicy(t, testConfig(upstream.url, fast))

  for (const status of [502, 500, 501, 400, 401, 403, 404, 429]) {
    const before = upstream.requests.length
    const result = await policy.request({
      method: 'POST',
      path: `/s/${status}`,
      headers: {},
      body,
      deadlineAt: inMs(5000),
    })
    t.equal(result.status, status, `${status} comes back as it is`)
    t.equal(upstream.requests.length - before, 1, `${status}: one attempt only`)
  }
})

void t.test('Retry-After in seconds is honoured over a shorter backoff', async (t) => {
  const script = scripted((n, _req, res) =>
    answer(res, n === 1 ? 503 : 200, n === 1 ? { 'retry-after': '1' } : {}),
  )
  const upstream = await startServer(t, script.handler)
  const policy = upstreamPolicy(t, testConfig(upstream.url, fast))

  const result = await post(policy)
  t.equal(result.status, 200, 'the retry succeeded')
  const gap = (script.times[1] ?? 0) - (script.times[0] ?? 0)
  t.ok(gap >= 900, `the second attempt came about a second later (${gap} ms)`)
})

void t.test('Retry-After as an HTTP date is honoured', async (t) => {
  const script = scripted((n, _req, res) =>
    n === 1
      ? answer(res, 503, { 'retry-after': new Date(Date.now() + 2000).toUTCString() })
      : answer(res, 200),
  )
  const upstream = await startServer(t, script.handler)
  const policy = upstreamPolicy(t, testConfig(upstream.url, fast))

  const result = await post(policy)
  t.equal(result.status, 200, 'the retry succeeded')
  // The date has whole seconds: the wait is between 1 and 2 s.
  const gap = (script.times[1] ?? 0) - (script.times[0] ?? 0)
  t.ok(gap >= 900, `the second attempt waited for the date (${gap} ms)`)
})

void t.test('at most RETRY_MAX retries; the last answer comes back', async (t) => {
  const upstream = await startServer(t, (_req, res) => answer(res, 503))
  const metrics = new Metrics()
  const policy = upstreamPolicy(t, testConfig(upstream.url, { ...fast, RETRY_MAX: '3' }), { metrics })

  const result = await post(policy)
  t.equal(result.status, 503, "Incode's last 503 comes back")
  t.match(JSON.parse(result.body.toString()), { status: 503 }, 'with its body')
  t.equal(upstream.requests.length, 4, 'one attempt and three retries')
  t.equal(await metricValue(metrics.upstreamRetries, { outcome: 'retried' }), 3, 'three retries counted')
})

void t.test('RETRY_MAX 0 turns retries off', async (t) => {
  const upstream = await startServer(t, (_req, res) => answer(res, 503))
  const policy = upstreamPolicy(t, testConfig(upstream.url, { ...fast, RETRY_MAX: '0' }))
  t.equal((await post(policy)).status, 503, 'the 503 comes back')
  t.equal(upstream.requests.length, 1, 'one attempt')
})

void t.test('the deadline stops retries: no wait that would pass it', async (t) => {
  const upstream = await startServer(t, (_req, res) => answer(res, 503))
  const metrics = new Metrics()
  // Waits of ~2 s, then ~4 s: a 5 s deadline leaves room for one retry only, with about 1 s to
  // spare on a fast machine (2 + 4 = 6 s, well past 5 s, however quick the attempts are) and 3 s
  // for the attempts themselves on a busy one.
  const policy = upstreamPolicy(
    t,
    testConfig(upstream.url, { RETRY_MAX: '5', RETRY_BASE_MS: '2000', RETRY_MAX_DELAY_MS: '8000' }),
    { metrics, random: () => 0.999 },
  )

  const result = await post(policy, { deadlineMs: 5000 })
  // Had it waited into the deadline, the policy would have ended the call with a 504 instead.
  t.equal(result.status, 503, 'the last answer comes back before the deadline, not a timeout')
  t.equal(upstream.requests.length, 2, 'one retry, the next wait would have passed the deadline')
  t.equal(await metricValue(metrics.upstreamRetries, { outcome: 'deadline' }), 1, 'counted as deadline')
})

void t.test('a Retry-After beyond the deadline ends the call at once', async (t) => {
  const upstream = await startServer(t, (_req, res) => answer(res, 503, { 'retry-after': '30' }))
  const metrics = new Metrics()
  const policy = upstreamPolicy(t, testConfig(upstream.url, fast), { metrics })
  const result = await post(policy, { deadlineMs: 2000 })
  // Had it waited into the deadline, the policy would have ended the call with a 504 instead.
  t.equal(result.status, 503, 'the 503 comes back, without waiting')
  t.equal(upstream.requests.length, 1, 'no retry')
  t.equal(await metricValue(metrics.upstreamRetries, { outcome: 'deadline' }), 1, 'counted as deadline')
})

void t.test('the caller leaving during a wait after a 503 ends the call at once', async (t) => {
  const upstream = await startServer(t, (_req, res) => answer(res, 503, { 'retry-after': '30' }))
  const metrics = new Metrics()
  const policy = upstreamPolicy(t, testConfig(upstream.url, fast), { metrics })
  const leaving = new AbortController()
  const pending = rejectionOf(post(policy, { signal: leaving.signal, deadlineMs: 60_000 }))
  await until(async () => (await metricValue(metrics.upstreamRetries, { outcome: 'retried' })) >= 1)
  leaving.abort()
  const err = await pending
  // Had it waited the 30 s out, it would have sent a retry first.
  t.ok(err instanceof ClientClosedError, 'ClientClosedError')
  t.equal(upstream.requests.length, 1, 'no retry was sent')
})

void t.test(
  'the caller leaving during a wait after a refused connection ends the call at once',
  async (t) => {
    const metrics = new Metrics()
    const policy = upstreamPolicy(
      t,
      testConfig(`http://127.0.0.1:${await closedPort()}`, {
        RETRY_BASE_MS: '30000',
        RETRY_MAX_DELAY_MS: '30000',
      }),
      { random: () => 0.999, metrics },
    )
    const leaving = new AbortController()
    const pending = rejectionOf(post(policy, { signal: leaving.signal, deadlineMs: 60_000 }))
    await until(async () => (await metricValue(metrics.upstreamRetries, { outcome: 'retried' })) >= 1)
    leaving.abort()
    // Had it waited the 30 s out, the refused retry would have ended it with another error.
    t.ok(await settlesThisTurn(pending), 'at once, long before the 30 s wait was over')
    t.ok((await pending) instanceof ClientClosedError, 'ClientClosedError')
  },
)

void t.test('an answer that breaks off after its headers is not retried', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    res.writeHead(200, { 'content-length': '100000' })
    res.write(Buffer.alloc(1000, 1), () => setTimeout(() => req.socket.resetAndDestroy(), 20))
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url, fast))
  const err = await rejectionOf(post(policy))
  t.ok(err instanceof UpstreamBadResponseError, 'an UpstreamBadResponseError')
  t.equal(upstream.requests.length, 1, 'no retry (it would need a range request)')
})

void t.test('a headers timeout is not retried', async (t) => {
  const upstream = await startServer(t, () => {
    /* never answers */
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url, { ...fast, UPSTREAM_HEADERS_TIMEOUT_MS: '100' }))
  const err = await rejectionOf(post(policy))
  t.ok(err instanceof UpstreamTimeoutError, 'an UpstreamTimeoutError')
  t.equal(upstream.requests.length, 1, 'no retry: a slow Incode is not asked twice')
})

void t.test('a connection refused every time: retried, then 503 UPSTREAM_UNAVAILABLE', async (t) => {
  const metrics = new Metrics()
  const policy = upstreamPolicy(
    t,
    testConfig(`http://127.0.0.1:${await closedPort()}`, { ...fast, RETRY_MAX: '2' }),
    { metrics },
  )
  const err = await rejectionOf(post(policy))
  t.ok(err instanceof UpstreamUnavailableError, 'an UpstreamUnavailableError')
  t.match(err.message, /ECONNREFUSED/, 'naming the network error')
  t.equal(await metricValue(metrics.upstreamRetries, { outcome: 'retried' }), 2, 'after two retries')
})
