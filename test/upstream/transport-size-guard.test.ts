import t from 'tap'
import { UpstreamBadResponseError } from '../../src/errors.js'
import { closedWithin, inMs, rejectionOf, startServer, testConfig, upstreamPolicy } from './helpers.js'

const limits = { UPSTREAM_MAX_RESPONSE_BYTES: '200000', CHUNK_BUDGET_BYTES: '100000' }

void t.test(
  'a declared content-length over the limit → 502 UPSTREAM_RESPONSE_TOO_LARGE, body not read',
  async (t) => {
    let sent = 0
    const upstream = await startServer(t, (_req, res) => {
      res.writeHead(200, { 'content-length': String(5_000_000) })
      const piece = Buffer.alloc(64 * 1024, 7)
      const pump = () => {
        while (sent < 5_000_000 && !res.destroyed) {
          sent += piece.length
          if (!res.write(piece)) return res.once('drain', pump)
        }
      }
      pump()
    })
    const policy = upstreamPolicy(t, testConfig(upstream.url, limits))
    const err = await rejectionOf(
      policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(5000) }),
    )
    t.ok(err instanceof UpstreamBadResponseError, 'an UpstreamBadResponseError')
    t.match(err, { statusCode: 502, code: 'UPSTREAM_RESPONSE_TOO_LARGE' }, 'status and code')
    const req = upstream.requests[0]
    t.ok(await closedWithin(req), 'the server saw its connection close')
    t.ok(sent < 5_000_000, 'the connection was dropped before the whole body was sent')
  },
)

void t.test(
  'a chunked body growing past the limit → 502 UPSTREAM_RESPONSE_TOO_LARGE, reading stops',
  async (t) => {
    let sent = 0
    const upstream = await startServer(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }) // no content-length: chunked
      const piece = Buffer.alloc(16 * 1024, 7)
      const timer = setInterval(() => {
        if (res.destroyed || sent > 10_000_000) {
          clearInterval(timer)
          return
        }
        sent += piece.length
        res.write(piece)
      }, 1)
      res.on('close', () => clearInterval(timer))
    })
    const policy = upstreamPolicy(t, testConfig(upstream.url, limits))
    const err = await rejectionOf(
      policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(10_000) }),
    )
    t.ok(err instanceof UpstreamBadResponseError, 'an UpstreamBadResponseError')
    t.match(err, { statusCode: 502, code: 'UPSTREAM_RESPONSE_TOO_LARGE' }, 'status and code')
    const req = upstream.requests[0]
    t.ok(await closedWithin(req), 'the server saw its connection close')
    t.ok(sent < 10_000_000, 'the upstream stopped being read long before it finished')
  },
)

void t.test('a body exactly at the limit is accepted', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'transfer-encoding': 'chunked' })
    res.write(Buffer.alloc(100_000, 1))
    res.end(Buffer.alloc(100_000, 2))
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url, limits))
  const answer = await policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt: inMs(5000) })
  t.equal(answer.body.length, 200_000, 'all bytes arrive')
  t.equal(answer.body[0], 1, 'first chunk first')
  t.equal(answer.body[199_999], 2, 'last chunk last')
})
