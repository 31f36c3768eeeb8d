import t from 'tap'
import { ClientClosedError, UpstreamTimeoutError } from '../../src/errors.js'
import { closedWithin, inMs, rejectionOf, startServer, testConfig, upstreamPolicy } from './helpers.js'

void t.test('the deadline passing before headers → 504, and the upstream request is cancelled', async (t) => {
  const upstream = await startServer(t, () => {
    /* never answers */
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const started = Date.now()
  // Long enough for the request to reach the server first, on a busy machine too.
  const err = await rejectionOf(
    policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(2_000) }),
  )
  const took = Date.now() - started
  t.ok(err instanceof UpstreamTimeoutError, 'an UpstreamTimeoutError')
  t.match(err, { statusCode: 504, code: 'UPSTREAM_TIMEOUT' }, 'status and code')
  t.ok(took >= 1_990, `not before the deadline (${took} ms)`)
  const req = upstream.requests[0]
  t.ok(req, 'the server saw the request')
  t.ok(await closedWithin(req), 'the server saw the connection close')
})

void t.test('the deadline passing while the body streams → 504', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100000' })
    const timer = setInterval(() => res.write('x'), 20)
    res.on('close', () => clearInterval(timer))
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const err = await rejectionOf(
    policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(200) }),
  )
  t.ok(err instanceof UpstreamTimeoutError, 'an UpstreamTimeoutError although bytes keep coming')
})

void t.test('a deadline already past → 504 without calling upstream', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end())
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const err = await rejectionOf(
    policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: Date.now() - 1 }),
  )
  t.ok(err instanceof UpstreamTimeoutError, 'an UpstreamTimeoutError')
  t.equal(upstream.requests.length, 0, 'nothing was sent')
})

void t.test('the caller aborting → ClientClosedError, and the server sees its request closed', async (t) => {
  let arrived: () => void = () => {}
  const arrival = new Promise<void>((resolve) => (arrived = resolve))
  const upstream = await startServer(t, () => arrived())
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const caller = new AbortController()
  const pending = rejectionOf(
    policy.request({
      method: 'GET',
      path: '/',
      headers: {},
      signal: caller.signal,
      deadlineAt: inMs(10_000),
    }),
  )
  await arrival
  caller.abort()
  const err = await pending
  t.ok(err instanceof ClientClosedError, 'a ClientClosedError')
  t.match(err, { statusCode: 499, code: 'CLIENT_CLOSED_REQUEST' }, 'status and code')
  const req = upstream.requests[0]
  t.ok(req, 'the server saw the request')
  t.ok(await closedWithin(req), 'the upstream request was cancelled: its connection closed')
})

void t.test('the caller aborting mid-body → ClientClosedError', async (t) => {
  let started: () => void = () => {}
  const streaming = new Promise<void>((resolve) => (started = resolve))
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100000' })
    res.write('x', () => started())
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const caller = new AbortController()
  const pending = rejectionOf(
    policy.request({
      method: 'GET',
      path: '/',
      headers: {},
      signal: caller.signal,
      deadlineAt: inMs(10_000),
    }),
  )
  await streaming
  await new Promise((resolve) => setTimeout(resolve, 20))
  caller.abort()
  t.ok((await pending) instanceof ClientClosedError, 'a ClientClosedError')
  const req = upstream.requests[0]
  t.ok(await closedWithin(req), 'the connection closed')
})

void t.test('an already-aborted signal → ClientClosedError without calling upstream', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end())
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const err = await rejectionOf(
    policy.request({
      method: 'GET',
      path: '/',
      headers: {},
      signal: AbortSignal.abort(),
      deadlineAt: inMs(1000),
    }),
  )
  t.ok(err instanceof ClientClosedError, 'a ClientClosedError')
  t.equal(upstream.requests.length, 0, 'nothing was sent')
})

void t.test('a finished request leaves no listener on the caller signal', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end('ok'))
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const caller = new AbortController()
  let calls = 0
  const original = caller.signal.removeEventListener.bind(caller.signal)
  caller.signal.removeEventListener = (...args: Parameters<AbortSignal['removeEventListener']>) => {
    calls++
    original(...args)
  }
  await policy.request({
    method: 'GET',
    path: '/',
    headers: {},
    signal: caller.signal,
    deadlineAt: inMs(1000),
  })
  t.ok(calls >= 1, 'the abort listener was removed')
})
