import t from 'tap'
import { Agent } from 'undici'
import { Transport } from '../../src/upstream/transport.js'
import { inMs, startServer, testConfig, upstreamPolicy } from './helpers.js'

void t.test('returns status, body bytes and lower-cased headers; sends query and base path', async (t) => {
  const payload = Buffer.from([0, 1, 2, 250, 251, 252])
  let seen: { method?: string | undefined; url?: string | undefined; apiKey?: string; body?: string } = {}
  const upstream = await startServer(t, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen = {
        method: req.method,
        url: req.url,
        apiKey: req.headers['x-api-key'] as string,
        body: Buffer.concat(chunks).toString(),
      }
      res.writeHead(201, { 'Processing-Time': '12', 'X-Multi': ['a', 'b'], 'Content-Type': 'image/png' })
      res.end(payload)
    })
  })
  const policy = upstreamPolicy(t, testConfig(`${upstream.url}/base/`))

  const answer = await policy.request({
    method: 'POST',
    path: '/omni/get/images',
    query: { id: 'abc 1', skip: undefined, other: 'x' },
    headers: { 'x-api-key': 'k1', 'content-type': 'application/json' },
    body: '{"images":["selfie"]}',
    deadlineAt: inMs(5000),
  })

  t.equal(answer.status, 201, 'status is passed through')
  t.same([...answer.body], [...payload], 'body bytes arrive unchanged')
  t.ok(Buffer.isBuffer(answer.body), 'body is a Buffer')
  t.equal(answer.headers['processing-time'], '12', 'header names are lower-cased')
  t.equal(answer.headers['x-multi'], 'a, b', 'repeated headers become one string')
  t.equal(answer.headers['content-type'], 'image/png', 'content-type is kept')
  t.equal(seen.method, 'POST', 'method is sent')
  t.equal(seen.url, '/base/omni/get/images?id=abc+1&other=x', 'base path prefixed, undefined query dropped')
  t.equal(seen.apiKey, 'k1', 'headers are sent')
  t.equal(seen.body, '{"images":["selfie"]}', 'body is sent')
})

void t.test('a base URL without path and a query-less call give the bare path', async (t) => {
  const upstream = await startServer(t, (req, res) => res.end(req.url))
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const answer = await policy.request({ method: 'GET', path: '/x/y', headers: {}, deadlineAt: inMs(5000) })
  t.equal(answer.body.toString(), '/x/y', 'path is sent as given')
})

void t.test('two sequential calls reuse one kept-alive connection', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end('ok'))
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  for (let i = 0; i < 2; i++) {
    // undici frees a socket one event-loop turn after a response completes (pipelining 1), so a
    // call in that same turn would open a second one; real callers always have such a gap.
    if (i > 0) await new Promise((resolve) => setImmediate(resolve))
    const answer = await policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(5000) })
    t.equal(answer.body.toString(), 'ok', `call ${i + 1} succeeds`)
  }
  t.equal(upstream.requests.length, 2, 'the server saw two requests')
  t.equal(upstream.connections(), 1, 'both went over one connection')
})

void t.test('an empty body is an empty Buffer', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(204)
    res.end()
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const answer = await policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(5000) })
  t.equal(answer.status, 204, 'status is passed through')
  t.equal(answer.body.length, 0, 'body is empty')
})

void t.test('an injected dispatcher is used, and left open by close()', async (t) => {
  const upstream = await startServer(t, (_req, res) => res.end('via agent'))
  const agent = new Agent()
  t.teardown(() => agent.close())
  const transport = new Transport(testConfig(upstream.url), { dispatcher: agent })
  const answer = await transport.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(5000) })
  t.equal(answer.body.toString(), 'via agent', 'the request went through the injected agent')
  await transport.close()
  t.equal(agent.closed, false, 'the injected agent is still open')
})

void t.test('a deadline beyond the timer range does not fire at once', async (t) => {
  const upstream = await startServer(t, (_req, res) => setTimeout(() => res.end('late but fine'), 30))
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const answer = await policy.request({
    method: 'GET',
    path: '/',
    headers: {},
    deadlineAt: Date.now() + 40 * 24 * 3_600_000,
  })
  t.equal(answer.body.toString(), 'late but fine', 'the call completed')
})
