import t, { type Test } from 'tap'
import { UpstreamBadResponseError, UpstreamTimeoutError, UpstreamUnavailableError } from '../../src/errors.js'
import type { UpstreamPolicy } from '../../src/upstream/policy.js'
import { Transport } from '../../src/upstream/transport.js'
import type { TransportCall } from '../../src/upstream/types.js'
import { closedPort, inMs, rejectionOf, startServer, testConfig, upstreamPolicy } from './helpers.js'

const secretHeaders = { 'x-api-key': 'secret-key-value', 'x-incode-hardware-id': 'secret-token-value' }

function get(policy: { request(call: TransportCall): ReturnType<UpstreamPolicy['request']> }) {
  return policy.request({
    method: 'POST',
    path: '/p',
    headers: secretHeaders,
    body: '{}',
    deadlineAt: inMs(10_000),
  })
}

function assertNoSecrets(t: Test, err: Error) {
  t.notMatch(err.message, /secret-/, 'the message carries no header value')
}

void t.test('connection refused → 503 UPSTREAM_UNAVAILABLE with the cause', async (t) => {
  const policy = upstreamPolicy(t, testConfig(`http://127.0.0.1:${await closedPort()}`))
  const err = await rejectionOf(get(policy))
  t.ok(err instanceof UpstreamUnavailableError, 'an UpstreamUnavailableError')
  t.match(err, { statusCode: 503, code: 'UPSTREAM_UNAVAILABLE' }, 'status and code')
  t.match(err.message, /ECONNREFUSED/, 'the message names the network error')
  t.ok(err.cause, 'the original error is kept as cause')
  assertNoSecrets(t, err)
})

void t.test('no response headers in time → 504 UPSTREAM_TIMEOUT', async (t) => {
  const upstream = await startServer(t, () => {
    /* never answers */
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url, { UPSTREAM_HEADERS_TIMEOUT_MS: '150' }))
  const err = await rejectionOf(get(policy))
  t.ok(err instanceof UpstreamTimeoutError, 'an UpstreamTimeoutError')
  t.match(err, { statusCode: 504, code: 'UPSTREAM_TIMEOUT' }, 'status and code')
  // The headers timeout, not the 10 s request deadline, ended it.
  t.match((err.cause as { code?: string }).code, 'UND_ERR_HEADERS_TIMEOUT', 'cause is the headers timeout')
  assertNoSecrets(t, err)
})

void t.test('headers then a stalled body → 504 UPSTREAM_TIMEOUT', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' })
    res.write('partial')
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url, { UPSTREAM_BODY_TIMEOUT_MS: '150' }))
  const err = await rejectionOf(get(policy))
  t.ok(err instanceof UpstreamTimeoutError, 'an UpstreamTimeoutError')
  t.match(err, { statusCode: 504, code: 'UPSTREAM_TIMEOUT' }, 'status and code')
  t.match((err.cause as { code?: string }).code, 'UND_ERR_BODY_TIMEOUT', 'cause is the body timeout')
})

void t.test('connection reset before headers → 503 UPSTREAM_UNAVAILABLE', async (t) => {
  const upstream = await startServer(t, (req) => req.socket.resetAndDestroy())
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const err = await rejectionOf(get(policy))
  t.ok(err instanceof UpstreamUnavailableError, 'an UpstreamUnavailableError')
  t.match(err, { statusCode: 503, code: 'UPSTREAM_UNAVAILABLE' }, 'status and code')
  t.ok(err.cause, 'the original error is kept as cause')
})

void t.test('connection reset in the middle of the body → 502 UPSTREAM_BAD_RESPONSE', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    res.writeHead(200, { 'content-length': '100000' })
    res.write(Buffer.alloc(1000, 1), () => setTimeout(() => req.socket.resetAndDestroy(), 20))
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const err = await rejectionOf(get(policy))
  t.ok(err instanceof UpstreamBadResponseError, 'an UpstreamBadResponseError')
  t.match(err, { statusCode: 502, code: 'UPSTREAM_BAD_RESPONSE' }, 'status and code')
  t.ok(err.cause, 'the original error is kept as cause')
})

void t.test('a body shorter than its content-length → 502 UPSTREAM_BAD_RESPONSE', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    res.writeHead(200, { 'content-length': '50' })
    res.write('only a little', () => req.socket.end())
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const err = await rejectionOf(get(policy))
  t.ok(err instanceof UpstreamBadResponseError, 'an UpstreamBadResponseError')
  t.match(err, { statusCode: 502, code: 'UPSTREAM_BAD_RESPONSE' }, 'status and code')
})

void t.test('a request after close() → 503 UPSTREAM_UNAVAILABLE', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end('ok'))
  const transport = new Transport(testConfig(upstream.url))
  await transport.close()
  const err = await rejectionOf(get(transport))
  t.ok(err instanceof UpstreamUnavailableError, 'the closed pool is reported as unavailable')
  t.match((err.cause as { code?: string }).code, /^UND_ERR_(CLOSED|DESTROYED)$/, 'cause is the closed pool')
})
