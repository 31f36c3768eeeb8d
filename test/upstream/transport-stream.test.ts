import t from 'tap'
import { UpstreamBadResponseError } from '../../src/errors.js'
import type { BodySink } from '../../src/upstream/types.js'
import { closedWithin, inMs, rejectionOf, startServer, testConfig, upstreamPolicy } from './helpers.js'

/** The transport's streaming option: a body handed to a sink as it arrives, over a real socket. */

/** A sink that keeps what it is given. */
function keeping() {
  const pieces: Buffer[] = []
  let ended = false
  const sink: BodySink = {
    write: (piece) => pieces.push(Buffer.from(piece)),
    end: () => (ended = true),
  }
  return { sink, body: () => Buffer.concat(pieces), pieces, ended: () => ended }
}

const BODY = Buffer.alloc(3 * 1024 * 1024, 0x41)

/** A GET of `path` whose answer goes to the sink `streamBody` picks for its status, if any. */
function streamedGet(
  policy: ReturnType<typeof upstreamPolicy>,
  streamBody: (status: number) => BodySink | undefined,
  path = '/',
) {
  return policy.request({ method: 'GET', path, headers: {}, deadlineAt: inMs(30_000), streamBody })
}

void t.test('a chosen answer is streamed to its sink whole; the others are read whole', async (t) => {
  const upstream = await startServer(t, (req, res) => {
    const status = req.url === '/refused' ? 403 : 200
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(status === 200 ? BODY : '{"message":"no"}')
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const kept = keeping()
  const streamBody = (status: number) => (status === 200 ? kept.sink : undefined)
  const answer = await streamedGet(policy, streamBody)
  t.equal(answer.status, 200, 'the status')
  t.equal(answer.body.length, 0, 'the answer holds no body: it went to the sink')
  t.equal(answer.streamedBytes, BODY.length, 'the bytes streamed are counted')
  t.ok(kept.body().equals(BODY), 'the sink got the body byte for byte, in order')
  t.ok(kept.pieces.length > 1, `in pieces as they came (${kept.pieces.length})`)
  t.ok(kept.ended(), 'and its end')

  const refused = await streamedGet(policy, streamBody, '/refused')
  t.equal(refused.body.toString(), '{"message":"no"}', 'an answer not chosen is read whole')
  t.equal(refused.streamedBytes, undefined, 'and not counted as streamed')
})

void t.test("the sink's refusal is the call's error, and the rest of the body is dropped", async (t) => {
  let sent = 0
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const piece = Buffer.alloc(64 * 1024, 0x41)
    const pump = () => {
      while (sent < 50_000_000 && !res.destroyed) {
        sent += piece.length
        if (!res.write(piece)) return res.once('drain', pump)
      }
      res.end()
    }
    pump()
  })
  const policy = upstreamPolicy(t, testConfig(upstream.url))
  const refusal = new UpstreamBadResponseError(
    'Incode sent an invalid answer (test)',
    'UPSTREAM_BAD_RESPONSE',
  )
  let ended = false
  const sink: BodySink = {
    write: () => {
      throw refusal
    },
    end: () => (ended = true),
  }
  const err = await rejectionOf(streamedGet(policy, () => sink))
  t.equal(err, refusal, 'the sink refusal, as it is')
  t.notOk(ended, 'the sink was not told the body ended')
  t.ok(await closedWithin(upstream.requests[0]), 'the upstream connection was dropped')
  t.ok(sent < 50_000_000, 'before the whole body was sent')
})

void t.test(
  'a body that breaks off mid-stream → UpstreamBadResponseError, the sink never ended',
  async (t) => {
    const upstream = await startServer(t, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(BODY.length) })
      res.write(BODY.subarray(0, BODY.length / 2), () => req.socket.destroy())
    })
    const policy = upstreamPolicy(t, testConfig(upstream.url))
    const kept = keeping()
    const err = await rejectionOf(streamedGet(policy, () => kept.sink))
    t.ok(err instanceof UpstreamBadResponseError, 'an UpstreamBadResponseError')
    t.match(err, { statusCode: 502, message: /broke off/ }, 'saying the answer broke off')
    t.notOk(kept.ended(), 'the sink was not told the body ended')
    t.ok(kept.body().length < BODY.length, 'it got only what came')
  },
)

void t.test('a streamed body growing past the limit → UPSTREAM_RESPONSE_TOO_LARGE', async (t) => {
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }) // chunked
    res.end(Buffer.alloc(500_000, 0x41))
  })
  const limits = { UPSTREAM_MAX_RESPONSE_BYTES: '200000', CHUNK_BUDGET_BYTES: '100000' }
  const policy = upstreamPolicy(t, testConfig(upstream.url, limits))
  const kept = keeping()
  const err = await rejectionOf(streamedGet(policy, () => kept.sink))
  t.match(err, { statusCode: 502, code: 'UPSTREAM_RESPONSE_TOO_LARGE' }, 'status and code')
  t.ok(kept.body().length <= 200_000, `the sink got no more than the limit (${kept.body().length})`)
})
