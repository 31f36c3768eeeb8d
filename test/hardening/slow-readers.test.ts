import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { planSplit } from '../../src/domain/planChunks.js'
import { foldTypes } from '../../src/domain/requestedTypes.js'
import { SizeEstimator } from '../../src/domain/sizeEstimator.js'
import { loadConfig, type Config } from '../../src/config.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { seededSession } from '../../src/simulator/sessions.js'
import { build, partnerHeaders, type Harness } from '../helpers/build.js'
import { waitUntil, warmSeededSessions } from '../routes/fixtures/helpers.js'
import { HARDENING_ENV, latestBytes, parseJson, readPaced, sessionOf, wrongImages } from './helpers.js'

/**
 * Callers that never read their answer (or read it slowly) must not hold memory outside the
 * answer budget, nor hold the budget for ever: the bytes a socket has not taken stay reserved
 * until it takes them, and an answer the caller takes nothing of for WRITE_STALL_MS is cut.
 */

warmSeededSessions()

const { full } = SEEDED_INTERVIEW_IDS
const TYPES = foldTypes(IMAGE_TYPES)
const BODY = JSON.stringify({ images: TYPES })
const KiB = 1024
const STALL_MS = 1_000
/** Generous bound on waits for things that happen in well under a second on an idle machine. */
const WAIT_MS = 30_000

/** What ByteBudget reserves for `bytes` (whole KiB). */
const reserved = (bytes: number) => Math.max(1, Math.ceil(bytes / KiB)) * KiB

/** The size estimator once it has seen the full session's images (what a warm-up teaches the app's). */
function learntEstimator(): SizeEstimator {
  const estimator = new SizeEstimator()
  const images = seededSession(1, full)?.images
  for (const type of TYPES) {
    const bytes = latestBytes(images, type)
    if (bytes) estimator.observe(type, Math.ceil(bytes.length / 3) * 4)
  }
  return estimator
}

/** A drop-in full-set request reserves its whole answer up front. */
function dropInReservation(estimator = learntEstimator()): number {
  return reserved(estimator.estimateTotal(TYPES))
}

/** A /v1 full-set request reserves each planned part. */
function v1Reservation(config: Config, estimator = learntEstimator()): number {
  const parts = planSplit(TYPES, (type) => estimator.estimate(type), {
    budgetBytes: config.CHUNK_BUDGET_BYTES,
    slots: config.FANOUT_CONCURRENCY,
    plan: config.SPLIT_PLAN,
  })
  return parts.reduce((sum, part) => sum + reserved(estimator.estimateTotal(part)), 0)
}

interface Target {
  path: string
  headers: Record<string, string>
}

const dropIn = (h: Harness): Target => ({
  path: `/omni/get/images?id=${full}`,
  headers: {
    'content-type': 'application/json',
    'api-version': '1.0',
    'x-incode-hardware-id': h.simulator.sessionToken(full),
  },
})
const v1Partner = (): Target => ({ path: `/v1/sessions/${full}/images`, headers: partnerHeaders() })
const v1Session = (h: Harness): Target => ({
  path: '/v1/session/images',
  headers: { 'content-type': 'application/json', 'x-incode-session-token': h.simulator.sessionToken(full) },
})

/** The server side of each connection, by the client's port, to see what the service holds for it. */
function serverSides(h: Harness) {
  const responses = new Map<number, ServerResponse>()
  /** How long each answer lasted, from the request's arrival to the response's close. */
  const lasted = new Map<ServerResponse, number>()
  h.app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const port = req.socket.remotePort
    if (port !== undefined) responses.set(port, res)
    const arrived = Date.now()
    res.once('close', () => lasted.set(res, Date.now() - arrived))
  })
  return Object.assign(responses, { lasted })
}

/** Sends the request on a raw socket and never reads a byte of the answer. */
async function hang(t: Test, url: string, target: Target): Promise<Socket> {
  const { port } = new URL(url)
  const socket = connect({ host: '127.0.0.1', port: Number(port) })
  t.teardown(() => socket.destroy())
  socket.pause()
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  const headers = { ...target.headers, host: '127.0.0.1', 'content-length': String(Buffer.byteLength(BODY)) }
  socket.write(
    `POST ${target.path} HTTP/1.1\r\n` +
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      `\r\n${BODY}`,
  )
  return socket
}

/** A partner's full-set request, read normally. */
async function partnerFullSet(h: Harness) {
  const res = await fetch(`${h.url}/v1/sessions/${full}/images`, {
    method: 'POST',
    headers: partnerHeaders(),
    body: BODY,
  })
  return { status: res.status, body: parseJson(await res.text()) }
}

function assertWholeAnswer(t: Test, h: Harness, answer: { status: number; body: unknown }, what: string) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const body = answer.body as any
  t.equal(answer.status, 200, `${what}: 200`)
  t.same(Object.keys(body?.images ?? {}).sort(), [...TYPES].sort(), `${what}: every type`)
  t.same(
    wrongImages(body?.images ?? {}, sessionOf(h.simulator, full).images),
    [],
    `${what}: every image right`,
  )
  t.same(body?.missing, [], `${what}: nothing missing`)
  t.same(body?.errors, {}, `${what}: no errors`)
}

async function nonReaders(
  t: Test,
  options: {
    reservation: (config: Config) => number
    hangers: Array<(h: Harness) => Target>
    /** The answer is reserved whole (drop-in), not part by part. */
    whole?: boolean
  },
) {
  // The budget holds exactly the hangers' answers: while they hold it, nobody else gets memory.
  const defaults = loadConfig({ INCODE_BASE_URL: 'http://127.0.0.1:1', INCODE_API_KEY: 'unused' })
  const budget = options.hangers.length * options.reservation(defaults)
  const h = await build(t, {
    listen: true,
    env: {
      ...HARDENING_ENV,
      SHED_EVENT_LOOP_DELAY_MS: '600000',
      ANSWER_MEMORY_BYTES: String(budget),
      // One caller may hold all of it here: this is about what a non-reader holds, and for how
      // long, not about how the budget is shared (see the fairness test below).
      ANSWER_MEMORY_PER_CALLER_BYTES: String(budget),
      WRITE_STALL_MS: String(STALL_MS),
    },
  })
  const { app } = h
  const responses = serverSides(h)

  // Warm-up: the estimator learns the session's sizes, so every reservation is known exactly.
  assertWholeAnswer(t, h, await partnerFullSet(h), 'warm-up')
  t.equal(
    reserved(app.sizeEstimator.estimateTotal(TYPES)),
    dropInReservation(),
    'the app has learnt the sizes the test computed',
  )

  // The length of each non-reader's answer, from a caller who reads it.
  const answerBytes: number[] = []
  for (const target of options.hangers) {
    const { path, headers } = target(h)
    const res = await fetch(`${h.url}${path}`, { method: 'POST', headers, body: BODY })
    t.equal(res.status, 200, `${path} answers a reader`)
    answerBytes.push((await res.arrayBuffer()).byteLength)
  }

  t.equal(app.answerMemory.available(), budget, 'the warm-ups gave all their memory back')
  const sockets = await Promise.all(options.hangers.map((target) => hang(t, h.url, target(h))))
  const serverSide = () => sockets.map((s) => responses.get(s.localPort ?? -1))
  const writing = await waitUntil(
    () => serverSide().every((res) => res?.headersSent === true && (res.socket?.bytesWritten ?? 0) > 1e6),
    WAIT_MS,
  )
  t.ok(writing, 'every non-reader has been sent the start of its answer')
  // (a) What their sockets have not taken (the kernel takes a few MB) still counts in the budget.
  const notTaken = serverSide().reduce((sum, res, i) => {
    const socket = res?.socket
    const taken = socket ? socket.bytesWritten - socket.writableLength : 0
    return sum + (answerBytes[i] ?? 0) - taken
  }, 0)
  const held = budget - app.answerMemory.available()
  t.ok(notTaken > 2e6, `their sockets have not taken ${notTaken} bytes`)
  t.ok(
    held >= notTaken - 4 * KiB,
    `the bytes their sockets have not taken (${notTaken}) stay reserved (${held} held)`,
  )
  if (options.whole) {
    t.equal(
      app.answerMemory.available(),
      0,
      'each answer stays reserved whole until the end (the whole budget)',
    )
  }
  t.ok(
    serverSide().every((res) => res?.writableFinished === false),
    'and their answers are not finished',
  )

  // (c) A partner asks for the full set meanwhile: it is served once the non-readers are cut.
  const partner = partnerFullSet(h)

  // (b) After WRITE_STALL_MS without progress each non-reader is cut, and its memory is back.
  const lastedOf = () => serverSide().map((res) => (res ? responses.lasted.get(res) : undefined))
  t.ok(
    await waitUntil(() => lastedOf().every((ms) => ms !== undefined), WAIT_MS),
    'every non-reader was cut (its socket closed by the service)',
  )
  const lasted = lastedOf()
  t.ok(
    lasted.every((ms) => ms !== undefined && ms >= STALL_MS),
    `no non-reader was cut before WRITE_STALL_MS had passed (they lasted ${lasted.join(', ')} ms)`,
  )
  t.ok(
    serverSide().every((res) => res?.writableFinished === false),
    'the non-readers were cut, not served',
  )
  assertWholeAnswer(t, h, await partner, 'the partner asking while they hung')
  t.ok(await waitUntil(() => app.answerMemory.available() === budget, WAIT_MS), 'all memory back')
  t.equal(app.answerMemory.available(), budget, 'the whole budget is available again')
}

t.test(
  'drop-in: non-readers hold the budget until written, are cut after the stall time, and a partner is served',
  (t) => nonReaders(t, { reservation: () => dropInReservation(), hangers: [dropIn, dropIn], whole: true }),
)

t.test(
  '/v1: non-readers (partner and session routes) hold the budget until written, are cut, and a partner is served',
  (t) => nonReaders(t, { reservation: (config) => v1Reservation(config), hangers: [v1Partner, v1Session] }),
)

/**
 * Many non-readers from one caller hold at most that caller's share of the answer memory; its
 * further requests wait in its own queue, so another caller's full set is served at once, not
 * after the non-readers have been cut.
 */
async function oneCallerHangs(
  t: Test,
  options: { hanger: (h: Harness) => Target; reservation: (config: Config) => number },
) {
  const defaults = loadConfig({ INCODE_BASE_URL: 'http://127.0.0.1:1', INCODE_API_KEY: 'unused' })
  const answer = Math.max(options.reservation(defaults), v1Reservation(defaults))
  // Room for two answers; one caller may hold one of them.
  const budget = 2 * answer
  // Nobody is cut while the test looks: the partner must be served without those cuts.
  const longMs = 60_000
  const h = await build(t, {
    listen: true,
    env: {
      ...HARDENING_ENV,
      SHED_EVENT_LOOP_DELAY_MS: '600000',
      ANSWER_MEMORY_BYTES: String(budget),
      ANSWER_MEMORY_PER_CALLER_BYTES: String(answer),
      WRITE_STALL_MS: String(longMs),
      REQUEST_DEADLINE_MS: String(longMs),
    },
  })
  const { app } = h
  const responses = serverSides(h)
  assertWholeAnswer(t, h, await partnerFullSet(h), 'warm-up')
  // A reader first: the estimator learns the sizes and Incode accepts the token (its own key).
  // One target for all: the simulator mints a new token each second.
  const target = options.hanger(h)
  const { path, headers } = target
  const warm = await fetch(`${h.url}${path}`, { method: 'POST', headers, body: BODY })
  t.equal(warm.status, 200, `${path} answers a reader`)
  await warm.arrayBuffer()
  t.equal(app.answerMemory.available(), budget, 'the warm-ups gave all their memory back')

  const sockets: Socket[] = []
  for (let i = 0; i < 6; i++) sockets.push(await hang(t, h.url, target))
  const serverSide = () => sockets.map((s) => responses.get(s.localPort ?? -1))
  t.ok(
    await waitUntil(
      () =>
        serverSide().every((res) => res !== undefined) &&
        (app.answerMemory.waiting > 0 || app.answerMemory.available() < answer),
      WAIT_MS,
    ),
    'all six non-readers have asked, and the memory they may have is taken',
  )
  t.ok(
    app.answerMemory.available() >= budget - answer,
    `they hold at most their share (${budget - app.answerMemory.available()} of ${budget} bytes held)`,
  )

  const partner = await partnerFullSet(h)
  const cut = serverSide().filter((res) => res !== undefined && responses.lasted.has(res))
  assertWholeAnswer(t, h, partner, 'the partner asking while one caller hangs six times')
  t.equal(cut.length, 0, 'served while every non-reader still hung: no cut was waited for')

  for (const socket of sockets) socket.destroy()
  t.ok(
    await waitUntil(() => app.answerMemory.available() === budget && app.answerMemory.callers === 0, WAIT_MS),
    'once they leave, all memory is back and no caller entry is kept',
  )
}

t.test("drop-in: one caller's non-readers hold one share, and a partner is served meanwhile", (t) =>
  oneCallerHangs(t, { hanger: dropIn, reservation: () => dropInReservation() }),
)

t.test("/v1: one caller's non-readers hold one share, and a partner is served meanwhile", (t) =>
  oneCallerHangs(t, { hanger: v1Session, reservation: (config) => v1Reservation(config) }),
)

/**
 * Reads the answer at a steady, slow pace (`step` bytes per `everyMs`), and checks at each step
 * that the bytes the server's socket still buffers for it are covered by reserved memory.
 */
async function slowReader(t: Test, target: (h: Harness) => Target, parse: (text: string) => unknown) {
  const h = await build(t, {
    listen: true,
    env: { ...HARDENING_ENV, SHED_EVENT_LOOP_DELAY_MS: '600000', WRITE_STALL_MS: String(STALL_MS) },
  })
  const { app } = h
  const capacity = app.answerMemory.available()
  const responses = serverSides(h)
  assertWholeAnswer(t, h, await partnerFullSet(h), 'warm-up')

  const { path, headers } = target(h)
  const step = 160 * KiB
  const everyMs = 50
  const samples: Array<{ held: number; buffered: number }> = []
  const paced = await readPaced(
    `${h.url}${path}`,
    { method: 'POST', headers, body: BODY },
    {
      step,
      everyMs,
      onStep: (port) => {
        const server = responses.get(port)
        const socket = server?.socket
        if (socket && !server.writableFinished) {
          samples.push({ held: capacity - app.answerMemory.available(), buffered: socket.writableLength })
        }
      },
    },
  )
  const answer = { ...paced, text: paced.body.toString() }
  t.equal(answer.error, undefined, 'the slow reader was not cut')
  assertWholeAnswer(t, h, { status: answer.status, body: parse(answer.text) }, 'the slow reader')
  t.ok(samples.length >= 10, `the answer took a while to read (${samples.length} samples)`)
  const uncovered = samples.filter((s) => s.buffered > s.held + 16 * KiB)
  t.same(
    uncovered.slice(0, 3),
    [],
    'at every step, the bytes buffered for the socket were covered by reserved memory',
  )
  t.ok(await waitUntil(() => app.answerMemory.available() === capacity, WAIT_MS), 'all memory back')
}

t.test('drop-in: a slow but steady reader is not cut, and its unwritten answer stays reserved', (t) =>
  slowReader(t, dropIn, (text) => {
    const images = parseJson(text)
    return { images, missing: [], errors: {} }
  }),
)

t.test('/v1: a slow but steady reader is not cut, and its unwritten answer stays reserved', (t) =>
  slowReader(t, v1Session, (text) => parseJson(text)),
)
