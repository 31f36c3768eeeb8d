import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { build, PARTNER_KEY, type Harness } from '../helpers/build.js'
import { waitUntil, warmSeededSessions } from '../routes/fixtures/helpers.js'
import { HARDENING_ENV, readPaced, sessionOf } from './helpers.js'

/**
 * The single-image route holds its decoded bytes under the answer-memory budget: a caller that
 * does not read is cut after WRITE_STALL_MS, one that leaves gives the memory back at once, and a
 * slow but steady reader gets every byte with what its socket has not taken still reserved.
 */

warmSeededSessions()

const KiB = 1024
const STALL_MS = 1_000
const WAIT_MS = 30_000
/** Well over what the kernel's loopback buffers take from a socket nobody reads (a few MB). */
const IMAGE_BYTES = 7_000_000

/** A simulator session of its own whose selfie is a large JPEG (a JPEG start, then noise). */
async function largeSelfieSession(h: Harness): Promise<{ interviewId: string; image: Buffer }> {
  const started = await fetch(`${h.simulator.url}${h.simulator.paths.start}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': h.simulator.apiKey, 'api-version': '1.0' },
    body: '{}',
  })
  const { interviewId } = (await started.json()) as { interviewId: string }
  const image = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(IMAGE_BYTES - 4)])
  sessionOf(h.simulator, interviewId).images.selfie = [{ capturedAt: Date.now(), bytes: image }]
  return { interviewId, image }
}

async function setUp(t: Test) {
  const h = await build(t, {
    listen: true,
    env: { ...HARDENING_ENV, SHED_EVENT_LOOP_DELAY_MS: '600000', WRITE_STALL_MS: String(STALL_MS) },
  })
  const { interviewId, image } = await largeSelfieSession(h)
  const path = `/v1/sessions/${interviewId}/images/selfie`
  // Warm-up: the size estimator learns the image's size, so its reservation is the real one.
  const warm = await fetch(`${h.url}${path}`, { headers: { 'x-api-key': PARTNER_KEY } })
  t.equal(warm.status, 200, 'warm-up: 200')
  t.ok(Buffer.from(await warm.arrayBuffer()).equals(image), 'warm-up: the whole image')
  const capacity = h.app.answerMemory.available()
  t.equal(capacity, h.config.ANSWER_MEMORY_BYTES, 'the warm-up gave its memory back')
  // The server side of each connection, by the client's port.
  const responses = new Map<number, ServerResponse>()
  const closedAfter = new Map<ServerResponse, number>()
  h.app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const arrived = Date.now()
    if (req.socket.remotePort !== undefined) responses.set(req.socket.remotePort, res)
    res.once('close', () => closedAfter.set(res, Date.now() - arrived))
  })
  const held = () => capacity - h.app.answerMemory.available()
  return { h, path, image, capacity, responses, closedAfter, held }
}

t.test('a caller that reads nothing holds its bytes until cut after WRITE_STALL_MS', async (t) => {
  const { h, path, capacity, responses, closedAfter, held } = await setUp(t)
  const socket: Socket = connect({ host: '127.0.0.1', port: Number(new URL(h.url).port) })
  t.teardown(() => socket.destroy())
  socket.pause()
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: ${PARTNER_KEY}\r\n\r\n`)
  const server = () => responses.get(socket.localPort ?? -1)
  t.ok(await waitUntil(() => (server()?.socket?.bytesWritten ?? 0) > 1e6, WAIT_MS), 'the answer has started')
  const res = server()
  const taken = res?.socket ? res.socket.bytesWritten - res.socket.writableLength : 0
  const notTaken = IMAGE_BYTES - taken
  t.ok(notTaken > 1e6, `its socket has not taken ${notTaken} bytes`)
  t.ok(held() >= notTaken, `those bytes stay reserved (${held()} held)`)
  t.equal(res?.writableFinished, false, 'the answer is not finished')
  t.ok(await waitUntil(() => res !== undefined && closedAfter.has(res), WAIT_MS), 'the service cut it')
  const lasted = res ? (closedAfter.get(res) ?? 0) : 0
  t.ok(lasted >= STALL_MS, `not before WRITE_STALL_MS (it lasted ${lasted} ms)`)
  t.equal(res?.writableFinished, false, 'cut, not served')
  t.ok(await waitUntil(() => h.app.answerMemory.available() === capacity, WAIT_MS), 'all memory back')
  t.equal(h.app.answerMemory.callers, 0, 'no caller entry kept')
})

t.test('a caller that leaves after the first bytes gives the memory back', async (t) => {
  const { h, path, capacity } = await setUp(t)
  const got = await new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    const req = httpRequest(
      `${h.url}${path}`,
      { headers: { 'x-api-key': PARTNER_KEY }, agent: false },
      (res) => {
        res.once('data', (chunk: Buffer) => {
          resolve({ status: res.statusCode ?? 0, bytes: chunk.length })
          req.destroy()
        })
      },
    )
    req.on('error', (err) => {
      if (!req.destroyed) reject(err)
    })
    req.end()
  })
  t.equal(got.status, 200, 'the answer had started')
  t.ok(got.bytes > 0 && got.bytes < IMAGE_BYTES, `the caller left after ${got.bytes} bytes`)
  t.ok(await waitUntil(() => h.app.answerMemory.available() === capacity, WAIT_MS), 'all memory back')
  t.equal(h.app.answerMemory.callers, 0, 'no caller entry kept')
})

t.test('a slow but steady reader gets every byte, what it has not taken reserved', async (t) => {
  const { h, path, image, capacity, responses, held } = await setUp(t)
  const step = 320 * KiB
  const everyMs = 50
  const samples: Array<{ held: number; buffered: number }> = []
  const answer = await readPaced(
    `${h.url}${path}`,
    { headers: { 'x-api-key': PARTNER_KEY } },
    {
      step,
      everyMs,
      onStep: (port) => {
        const server = responses.get(port)
        const socket = server?.socket
        if (socket && !server.writableFinished)
          samples.push({ held: held(), buffered: socket.writableLength })
      },
    },
  )
  t.equal(answer.error, undefined, 'the slow reader was not cut')
  t.equal(answer.status, 200, '200')
  t.ok(answer.body.equals(image), 'every byte, in order')
  // How many steps find the service still writing depends on how much the kernel's socket buffers
  // take (loopback autotuning: one step on some runs); at least one must, holding memory for it.
  t.ok(
    samples.some((s) => s.held > 0),
    `the service was still writing, with memory held, while the reader read (${samples.length} samples)`,
  )
  t.same(
    samples.filter((s) => s.buffered > s.held + 16 * KiB).slice(0, 3),
    [],
    'at every step, the bytes buffered for the socket were covered by reserved memory',
  )
  t.ok(await waitUntil(() => h.app.answerMemory.available() === capacity, WAIT_MS), 'all memory back')
})
