import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS, type FaultConfig, type Simulator } from '../../src/simulator/index.js'
import { LOGIN_BACKOFF_BASE_MS } from '../../src/upstream/adminToken.js'
import { build, partnerHeaders } from '../helpers/build.js'
import {
  HARDENING_ENV,
  incodeFlaw,
  parseJson,
  problemFlaw,
  sessionOf,
  sleep,
  wrongImages,
  type Json,
} from './helpers.js'

/**
 * Upstream faults from the simulator: every request still gets a clear answer (a status with a
 * problem+json code on /v1, Incode's error body on drop-in paths) within its deadline, no image is
 * ever served under the wrong type or session, the breaker opens and recovers, and nothing is left
 * as an unhandled rejection.
 */

const { full, small, secondId } = SEEDED_INTERVIEW_IDS

let unhandled = 0
const unhandledReasons: string[] = []
const onUnhandled = (reason: unknown) => {
  unhandled++
  unhandledReasons.push(reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason))
}
process.on('unhandledRejection', onUnhandled)
t.teardown(() => {
  process.off('unhandledRejection', onUnhandled)
})

/** Settings every app here shares: quick retries, and (unless a test says otherwise) no breaker. */
const BASE_ENV: Record<string, string> = {
  ...HARDENING_ENV,
  RETRY_BASE_MS: '10',
  RETRY_MAX_DELAY_MS: '50',
  BREAKER_FAILURE_THRESHOLD: '100000',
}

/** Generous slack over a deadline, for a loaded machine: the point is that the request ended. */
const SLACK_MS = 5_000

interface Timed {
  res: LightMyRequestResponse
  ms: number
}

async function timed(app: FastifyInstance, options: InjectOptions): Promise<Timed> {
  const started = performance.now()
  const res = await app.inject(options)
  return { res, ms: performance.now() - started }
}

function v1(url: string, images?: readonly ImageType[]): InjectOptions {
  return {
    method: 'POST',
    url,
    headers: partnerHeaders(),
    payload: JSON.stringify(images === undefined ? {} : { images }),
  }
}

function withToken(url: string, header: string, token: string, images: readonly ImageType[]): InjectOptions {
  return {
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', [header]: token },
    payload: JSON.stringify({ images }),
  }
}

/** Asserts a clear error answer: this status (or one of them) and, on /v1, this code. */
function assertClear(
  t: Test,
  { res, ms }: Timed,
  expected: { status: number | number[]; code?: string | string[]; deadlineMs: number; dropIn?: boolean },
  what: string,
): void {
  const statuses = Array.isArray(expected.status) ? expected.status : [expected.status]
  t.ok(statuses.includes(res.statusCode), `${what}: status ${statuses.join(' or ')} (got ${res.statusCode})`)
  if (expected.dropIn) {
    t.equal(incodeFlaw(res), undefined, `${what}: Incode's error body`)
  } else {
    t.equal(problemFlaw(res), undefined, `${what}: problem+json`)
    if (expected.code !== undefined) {
      const codes = Array.isArray(expected.code) ? expected.code : [expected.code]
      const code = String(parseJson(res.body)?.code)
      t.ok(codes.includes(code), `${what}: code ${codes.join(' or ')} (got ${code})`)
    }
  }
  t.ok(
    ms < expected.deadlineMs + SLACK_MS,
    `${what}: answered within the deadline and slack (${Math.round(ms)} ms)`,
  )
}

function imageCalls(simulator: Simulator): number {
  return simulator.calls.filter((c) => c.endpoint !== 'adminLogin' && c.endpoint !== 'control').length
}

t.test('resets: a clear 5xx, bounded retries', async (t) => {
  const { app, simulator, config } = await build(t, { env: { ...BASE_ENV } })
  const token = simulator.sessionToken(small)
  const deadlineMs = config.REQUEST_DEADLINE_MS
  await app.inject(v1(`/v1/sessions/${small}/image-links`, ['signature'])) // logs in before the faults
  simulator.setFaults({ resetRate: 1 })

  const cases: Array<[string, InjectOptions, boolean]> = [
    ['v1 images', v1(`/v1/sessions/${small}/images`, ['selfie', 'signature']), false],
    ['v1 links', v1(`/v1/sessions/${small}/image-links`, ['selfie']), false],
    ['v1 concatenated', v1(`/v1/sessions/${small}/images/concatenated`), false],
    ['v1 second-ID', v1(`/v1/sessions/${secondId}/second-id/images`, ['fullFrameFrontID']), false],
    ['session images', withToken('/v1/session/images', 'x-incode-session-token', token, ['selfie']), false],
    ['drop-in images', withToken('/omni/get/images', 'x-incode-hardware-id', token, ['selfie']), true],
    [
      'drop-in concatenated',
      withToken('/0/omni/get/concatenated-images', 'x-incode-hardware-id', token, ['selfie']),
      true,
    ],
  ]
  for (const [what, options, dropIn] of cases) {
    const before = imageCalls(simulator)
    assertClear(
      t,
      await timed(app, options),
      { status: [502, 503], code: ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_BAD_RESPONSE'], deadlineMs, dropIn },
      `${what}, every call reset`,
    )
    const calls = imageCalls(simulator) - before
    t.ok(calls >= 1, `${what}: Incode was called`)
    t.ok(calls <= 1 + config.RETRY_MAX, `${what}: at most ${1 + config.RETRY_MAX} attempts (made ${calls})`)
  }
})

t.test('timeouts: the deadline and the headers timeout end the request with 504', async (t) => {
  for (const env of [
    { REQUEST_DEADLINE_MS: '1500', UPSTREAM_HEADERS_TIMEOUT_MS: '30000' },
    { REQUEST_DEADLINE_MS: '8000', UPSTREAM_HEADERS_TIMEOUT_MS: '700' },
  ]) {
    await t.test(JSON.stringify(env), async (t) => {
      const { app, simulator } = await build(t, { env: { ...BASE_ENV, ...env } })
      const token = simulator.sessionToken(small)
      await app.inject(v1(`/v1/sessions/${small}/image-links`, ['signature']))
      simulator.setFaults({ extraLatencyMs: 60_000 })
      const deadlineMs = Number(env.REQUEST_DEADLINE_MS)
      const cases: Array<[string, InjectOptions, boolean]> = [
        ['v1 images', v1(`/v1/sessions/${small}/images`, ['selfie', 'signature']), false],
        ['v1 links', v1(`/v1/sessions/${small}/image-links`, ['selfie']), false],
        ['v1 concatenated', v1(`/v1/sessions/${small}/images/concatenated`), false],
        [
          'session links',
          withToken('/v1/session/image-links', 'x-incode-session-token', token, ['selfie']),
          false,
        ],
        ['drop-in images', withToken('/omni/get/images', 'x-incode-hardware-id', token, ['selfie']), true],
        [
          'drop-in concatenated',
          withToken('/omni/get/concatenated-images', 'x-incode-hardware-id', token, ['selfie']),
          true,
        ],
      ]
      // Concurrently: each one waits out its own deadline.
      const answers = await Promise.all(cases.map(([, options]) => timed(app, options)))
      cases.forEach(([what, , dropIn], i) => {
        assertClear(
          t,
          answers[i] as Timed,
          { status: 504, code: 'UPSTREAM_TIMEOUT', deadlineMs, dropIn },
          `${what}, Incode silent`,
        )
      })
      const health = await app.inject({ method: 'GET', url: '/healthz' })
      t.equal(health.statusCode, 200, 'the app still answers while upstream calls hang')
    })
  }
})

t.test('error statuses: 500, 503 and a custom Incode code', async (t) => {
  const { app, simulator, config } = await build(t, { env: { ...BASE_ENV } })
  const token = simulator.sessionToken(small)
  const deadlineMs = config.REQUEST_DEADLINE_MS
  await app.inject(v1(`/v1/sessions/${small}/image-links`, ['signature']))

  const expectations: Array<[FaultConfig, number, string, number, number]> = [
    // fault, /v1 status, /v1 code, drop-in status, attempts at most
    [{ errorRate: 1, errorStatus: 500 }, 502, 'UPSTREAM_500', 500, 1],
    [{ errorRate: 1, errorStatus: 503 }, 503, 'UPSTREAM_503', 503, 1 + config.RETRY_MAX],
    [{ errorRate: 1, errorStatus: 4005 }, 400, 'UPSTREAM_400', 400, 1],
  ]
  for (const [fault, status, code, dropInStatus, maxAttempts] of expectations) {
    simulator.setFaults(fault)
    const what = `Incode answering ${fault.errorStatus}`
    let before = imageCalls(simulator)
    assertClear(
      t,
      await timed(app, v1(`/v1/sessions/${small}/images`, ['selfie'])),
      { status, code, deadlineMs },
      `${what}: v1 images`,
    )
    t.ok(imageCalls(simulator) - before <= maxAttempts, `${what}: at most ${maxAttempts} attempts`)
    assertClear(
      t,
      await timed(app, v1(`/v1/sessions/${small}/image-links`, ['selfie'])),
      { status, code, deadlineMs },
      `${what}: v1 links`,
    )
    before = imageCalls(simulator)
    const drop = await timed(app, withToken('/omni/get/images', 'x-incode-hardware-id', token, ['selfie']))
    assertClear(t, drop, { status: dropInStatus, deadlineMs, dropIn: true }, `${what}: drop-in images`)
    t.ok(imageCalls(simulator) - before <= maxAttempts, `${what}: drop-in, at most ${maxAttempts} attempts`)
    t.equal(
      parseJson(drop.res.body)?.status,
      fault.errorStatus,
      `${what}: drop-in passes Incode's own status code`,
    )
  }
})

t.test('truncated, malformed and slow answers', async (t) => {
  const { app, simulator, config } = await build(t, {
    // Body timeouts under a second are not reliably enforced by undici (its timers are coarse).
    env: { ...BASE_ENV, UPSTREAM_BODY_TIMEOUT_MS: '1000', REQUEST_DEADLINE_MS: '6000' },
  })
  const token = simulator.sessionToken(small)
  const deadlineMs = config.REQUEST_DEADLINE_MS
  const expected = sessionOf(simulator, small).images
  await app.inject(v1(`/v1/sessions/${small}/image-links`, ['signature']))

  for (const [fault, status, code] of [
    [{ truncateRate: 1 }, 502, 'UPSTREAM_BAD_RESPONSE'],
    [{ malformedRate: 1 }, 502, 'UPSTREAM_BAD_RESPONSE'],
    // Pauses of 3 s between pieces of the body, over the 1 s body timeout.
    [{ slowBodyMs: 27_000 }, 504, 'UPSTREAM_TIMEOUT'],
  ] as const) {
    simulator.setFaults(fault)
    const what = JSON.stringify(fault)
    for (const [route, options] of [
      ['v1 images', v1(`/v1/sessions/${small}/images`, ['selfie', 'signature'])],
      ['v1 links', v1(`/v1/sessions/${small}/image-links`, ['selfie'])],
      ['v1 concatenated', v1(`/v1/sessions/${small}/images/concatenated`, ['selfie'])],
      ['session images', withToken('/v1/session/images', 'x-incode-session-token', token, ['signature'])],
    ] as const) {
      assertClear(t, await timed(app, options), { status, code, deadlineMs }, `${what}: ${route}`)
    }
    const drop = await timed(app, withToken('/omni/get/images', 'x-incode-hardware-id', token, ['signature']))
    assertClear(t, drop, { status, deadlineMs, dropIn: true }, `${what}: drop-in images`)
  }

  // A slow body within the timeouts is served whole, byte for byte.
  simulator.setFaults({ slowBodyMs: 1_000 })
  const slow = await timed(app, v1(`/v1/sessions/${small}/images`, ['selfie', 'signature']))
  t.equal(slow.res.statusCode, 200, 'a slow but steady answer is served')
  const body = parseJson(slow.res.body)
  t.same(Object.keys(body?.images ?? {}).sort(), ['selfie', 'signature'], 'both images arrive')
  t.same(wrongImages(body?.images ?? {}, expected), [], 'the slow answer is byte-identical')
})

t.test('502 storms on small parts: Incode failing, not "too large", bounded calls', async (t) => {
  const { app, simulator, config } = await build(t, { env: { ...BASE_ENV } })
  const token = simulator.sessionToken(full)
  const deadlineMs = config.REQUEST_DEADLINE_MS
  const expected = sessionOf(simulator, full).images
  const all = [...IMAGE_TYPES]
  // A binary split tree over n types has at most 2n - 1 calls.
  const bound = 2 * all.length - 1
  await app.inject(v1(`/v1/sessions/${small}/image-links`, ['signature']))

  simulator.setFaults({ errorRate: 1, errorStatus: 502, endpoints: ['images'] })
  let before = imageCalls(simulator)
  const storm = await timed(app, v1(`/v1/sessions/${full}/images`, all))
  // No part of the full set is planned near the 10 MB cap: a 502 is Incode failing (see
  // test/hardening/failure-isolation.test.ts), retried within the budget, never split.
  assertClear(t, storm, { status: 502, code: 'UPSTREAM_502', deadlineMs }, 'every call refused')
  let calls = imageCalls(simulator) - before
  t.ok(calls <= bound, `every call refused: ${calls} upstream calls, at most ${bound}`)
  t.ok(calls < all.length, `every call refused: not bisected down to single types (${calls} calls)`)

  before = imageCalls(simulator)
  const dropStorm = await timed(app, withToken('/omni/get/images', 'x-incode-hardware-id', token, all))
  assertClear(t, dropStorm, { status: 502, deadlineMs, dropIn: true }, 'drop-in, every call refused')
  calls = imageCalls(simulator) - before
  t.ok(calls <= bound, `drop-in, every call refused: ${calls} upstream calls, at most ${bound}`)

  simulator.setFaults({ errorRate: 0.5, errorStatus: 502, endpoints: ['images'] })
  for (let round = 0; round < 2; round++) {
    before = imageCalls(simulator)
    const { res, ms } = await timed(app, v1(`/v1/sessions/${full}/images`, all))
    const what = `half the calls refused, round ${round + 1}`
    t.ok(ms < deadlineMs + SLACK_MS, `${what}: answered in time`)
    if (res.statusCode !== 200) {
      // Every part may have been refused: then it is the clear whole-request error.
      assertClear(t, { res, ms }, { status: 502, code: 'UPSTREAM_502', deadlineMs }, what)
      continue
    }
    const body: Json = parseJson(res.body)
    t.same(wrongImages(body.images, expected), [], `${what}: every served image is the right one`)
    for (const type of all) {
      const places = [type in body.images, body.missing.includes(type), type in body.errors].filter(Boolean)
      t.equal(places.length, 1, `${what}: ${type} is in exactly one of images, missing, errors`)
    }
    for (const [type, failure] of Object.entries(body.errors as Record<string, Json>)) {
      t.match(failure, { status: 502, code: 'UPSTREAM_502' }, `${what}: ${type} failed as Incode's 502`)
    }
    calls = imageCalls(simulator) - before
    t.ok(calls <= bound, `${what}: ${calls} upstream calls, at most ${bound}`)
  }
})

t.test('admin log-in failures', async (t) => {
  let clockMs = Date.now()
  const { app, simulator, config } = await build(t, { env: { ...BASE_ENV }, now: () => clockMs })
  const token = simulator.sessionToken(small)
  const deadlineMs = config.REQUEST_DEADLINE_MS
  simulator.setFaults({ loginFailure: true })

  const answers = await Promise.all(
    Array.from({ length: 4 }, () => timed(app, v1(`/v1/sessions/${small}/images`, ['signature']))),
  )
  answers.forEach((answer, i) => {
    assertClear(
      t,
      answer,
      { status: 502, code: 'UPSTREAM_500', deadlineMs },
      `partner request ${i + 1}, log-in failing`,
    )
  })
  t.ok(simulator.callsTo('adminLogin').length >= 1, 'the log-in was tried')
  t.equal(simulator.callsTo('images').length, 0, 'no image call is made without an admin token')
  const links = await timed(app, v1(`/v1/sessions/${small}/image-links`, ['selfie']))
  assertClear(t, links, { status: 502, code: 'UPSTREAM_500', deadlineMs }, 'links, log-in failing')

  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503, '/readyz reports not ready while the log-in fails')
  const session = await app.inject(
    withToken('/v1/session/images', 'x-incode-session-token', token, ['signature']),
  )
  t.equal(session.statusCode, 200, 'session-token routes still work without an admin token')

  simulator.setFaults(undefined)
  clockMs += LOGIN_BACKOFF_BASE_MS // a failed log-in is tried again once its back-off has passed
  const recovered = await app.inject(v1(`/v1/sessions/${small}/images`, ['signature']))
  t.equal(recovered.statusCode, 200, 'once the log-in works again, partner requests are served')
  t.same(
    wrongImages(parseJson(recovered.body)?.images ?? {}, sessionOf(simulator, small).images),
    [],
    'and served right',
  )
})

t.test('the breaker opens, serves cached links while open, and recovers', async (t) => {
  // A reset time that the checks made while open fit in on a busy machine (recovery is waited for).
  const { app, simulator } = await build(t, {
    env: { ...BASE_ENV, BREAKER_FAILURE_THRESHOLD: '2', BREAKER_RESET_MS: '3000', RETRY_MAX: '0' },
  })
  const token = simulator.sessionToken(small)
  const cachedTypes: ImageType[] = ['selfie', 'signature']

  // Links cached before the outage, for a partner and for a session token.
  const partnerLinks = v1(`/v1/sessions/${small}/image-links`, cachedTypes)
  const sessionLinks = withToken('/v1/session/image-links', 'x-incode-session-token', token, cachedTypes)
  const firstPartner = await app.inject(partnerLinks)
  t.equal(firstPartner.headers['x-cache'], 'MISS', 'partner links: first call is a miss')
  const firstSession = await app.inject(sessionLinks)
  t.equal(firstSession.headers['x-cache'], 'MISS', 'session links: first call is a miss')

  simulator.setFaults({ errorRate: 1, errorStatus: 500 })
  const failing = v1(`/v1/sessions/${small}/images`, ['signature'])
  const failingLinks = v1(`/v1/sessions/${small}/image-links`, ['fullFrameFrontID'])
  /**
   * Trips the breakers of the base64 and the links endpoints (each endpoint has its own; again,
   * if their reset time passed meanwhile); bounded.
   */
  const ensureOpen = async () => {
    for (let i = 0; i < 10 && app.incode.breakerState('images') !== 'open'; i++) await app.inject(failing)
    for (let i = 0; i < 10 && app.incode.breakerState('imageLinks') !== 'open'; i++) {
      await app.inject(failingLinks)
    }
    const images = app.incode.breakerState('images')
    return images === app.incode.breakerState('imageLinks') ? images : 'mixed'
  }

  const one = await app.inject(failing)
  t.equal(parseJson(one.body)?.code, 'UPSTREAM_500', 'the first failure is answered as such')
  t.equal(await ensureOpen(), 'open', 'the breaker opens after consecutive failures')

  const expectOpen = async (what: string, options: InjectOptions, dropIn = false) => {
    t.equal(await ensureOpen(), 'open', `${what}: the breaker is open`)
    const before = imageCalls(simulator)
    const { res, ms } = await timed(app, options)
    assertClear(
      t,
      { res, ms },
      { status: 503, code: 'UPSTREAM_CIRCUIT_OPEN', deadlineMs: 0, dropIn },
      `${what}, breaker open`,
    )
    const retryAfter = Number(res.headers['retry-after'])
    t.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1,
      `${what}: Retry-After in whole seconds (${retryAfter})`,
    )
    t.equal(imageCalls(simulator), before, `${what}: fails fast, without calling Incode`)
  }
  await expectOpen('v1 images', failing)
  await expectOpen(
    'v1 links of an uncached type',
    v1(`/v1/sessions/${small}/image-links`, ['fullFrameFrontID']),
  )
  await expectOpen(
    'v1 links, partly cached',
    v1(`/v1/sessions/${small}/image-links`, ['selfie', 'fullFrameFrontID']),
  )
  await expectOpen(
    'session images',
    withToken('/v1/session/images', 'x-incode-session-token', token, ['selfie']),
  )
  await expectOpen(
    'drop-in images',
    withToken('/omni/get/images', 'x-incode-hardware-id', token, ['selfie']),
    true,
  )

  for (const [what, options, first] of [
    ['partner links', partnerLinks, firstPartner],
    ['session links', sessionLinks, firstSession],
  ] as const) {
    t.equal(await ensureOpen(), 'open', `${what}: the breaker is open`)
    const before = imageCalls(simulator)
    const cached = await app.inject(options)
    t.equal(cached.statusCode, 200, `${what} cached before the outage are served while the breaker is open`)
    t.equal(cached.headers['x-cache'], 'HIT', `${what}: X-Cache HIT`)
    t.same(parseJson(cached.body), parseJson(first.body), `${what}: the same links as before the outage`)
    t.equal(imageCalls(simulator), before, `${what}: served without calling Incode`)
  }

  // Recovery: faults cleared, the half-open probe after BREAKER_RESET_MS closes the breaker.
  simulator.setFaults(undefined)
  const started = Date.now()
  let recovered: LightMyRequestResponse | undefined
  // Bounded for a hang only: a busy machine may take long to see the reset pass.
  for (let i = 0; i < 600 && Date.now() - started < 60_000; i++) {
    const res = await app.inject(failing)
    if (res.statusCode === 200) {
      recovered = res
      break
    }
    t.equal(
      parseJson(res.body)?.code,
      'UPSTREAM_CIRCUIT_OPEN',
      'until recovery, the answer is the open breaker',
    )
    await sleep(100)
  }
  t.equal(recovered?.statusCode, 200, 'the breaker lets a request through once Incode recovers')
  t.equal(app.incode.breakerState(), 'closed', 'the breaker is closed again')
  // The links endpoint's breaker is its own: it may have been tripped again later than the
  // images' one (ensureOpen re-trips either whose reset passed), so its reset is waited for too.
  for (let i = 0; i < 600 && app.incode.breakerState('imageLinks') === 'open'; i++) await sleep(100)
  t.not(app.incode.breakerState('imageLinks'), 'open', 'the links breaker is due for its probe')
  const after = await app.inject(v1(`/v1/sessions/${small}/image-links`, ['fullFrameFrontID']))
  t.equal(after.statusCode, 200, 'links of an uncached type are served again')
  t.equal(after.headers['x-cache'], 'MISS', 'fetched from Incode')
})

t.test('mixed faults under concurrency: never the wrong image, always a clear answer', async (t) => {
  const deadlineMs = 10_000
  const { app, simulator } = await build(t, { env: { ...BASE_ENV, REQUEST_DEADLINE_MS: String(deadlineMs) } })
  await app.inject(v1(`/v1/sessions/${small}/image-links`, ['signature']))
  simulator.setFaults({
    resetRate: 0.15,
    truncateRate: 0.15,
    malformedRate: 0.1,
    errorRate: 0.2,
    errorStatus: 502,
  })

  interface Job {
    what: string
    options: InjectOptions
    expected: ReturnType<typeof sessionOf>['images'] | undefined
    requested: ImageType[]
    dropIn: boolean
  }
  const pick = (i: number, types: readonly ImageType[], n: number) =>
    Array.from({ length: n }, (_, k) => types[(i * 7 + k * 3) % types.length] as ImageType)
  const jobs: Job[] = []
  for (let i = 0; i < 36; i++) {
    const kind = i % 6
    const id = [full, small, secondId][i % 3] as string
    const session = sessionOf(simulator, id)
    const types = [...new Set(pick(i, IMAGE_TYPES, 1 + (i % 4)))]
    const token = simulator.sessionToken(id)
    if (kind === 0 || kind === 1) {
      jobs.push({
        what: `v1 images ${id} ${types.join(',')}`,
        options: v1(`/v1/sessions/${id}/images`, types),
        expected: session.images,
        requested: types,
        dropIn: false,
      })
    } else if (kind === 2) {
      jobs.push({
        what: `v1 second-ID ${id} ${types.join(',')}`,
        options: v1(`/v1/sessions/${id}/second-id/images`, types),
        expected: session.secondId ?? {},
        requested: types,
        dropIn: false,
      })
    } else if (kind === 3) {
      jobs.push({
        what: `session images ${id} ${types.join(',')}`,
        options: withToken('/v1/session/images', 'x-incode-session-token', token, types),
        expected: session.images,
        requested: types,
        dropIn: false,
      })
    } else {
      const path = kind === 4 ? '/omni/get/images' : '/0/omni/get/images'
      jobs.push({
        what: `drop-in ${path} ${id} ${types.join(',')}`,
        options: withToken(path, 'x-incode-hardware-id', token, types),
        expected: session.images,
        requested: types,
        dropIn: true,
      })
    }
  }

  let served = 0
  let failed = 0
  const results: Array<{ job: Job; answer: Timed }> = []
  // /v1 base64 answers are written while Incode's parts arrive: a part that breaks off inside an
  // image already on the wire cuts the answer (a JSON string cannot be closed honestly), which the
  // caller sees as a broken response, never as a whole one.
  const cut: Job[] = []
  const queue = [...jobs]
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        try {
          results.push({ job, answer: await timed(app, job.options) })
        } catch (err) {
          if ((err as { code?: unknown }).code !== 'LIGHT_ECONNRESET') throw err
          cut.push(job)
        }
      }
    }),
  )
  for (const job of cut) {
    failed++
    t.notOk(
      job.dropIn,
      `${job.what}: cut only where the answer streams (not drop-in, which is whole or an error)`,
    )
  }
  t.comment(`answers cut by a part breaking off mid-image: ${cut.length}`)
  for (const { job, answer } of results) {
    const { res, ms } = answer
    t.ok(ms < deadlineMs + SLACK_MS, `${job.what}: answered in time`)
    if (res.statusCode !== 200) {
      failed++
      const shape = job.dropIn ? incodeFlaw(res) : problemFlaw(res)
      t.equal(shape, undefined, `${job.what}: a clear ${res.statusCode} answer`)
      continue
    }
    served++
    const body: Json = parseJson(res.body)
    t.ok(body, `${job.what}: a 200 with a JSON body`)
    const all: Record<string, unknown> = (job.dropIn ? body : body?.images) ?? {}
    // Drop-in answers carry Incode's null for a type the session lacks.
    const images = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== null))
    const nulls = Object.keys(all).filter((k) => all[k] === null)
    t.same(wrongImages(images, job.expected), [], `${job.what}: every image is that session's, of that type`)
    t.same(
      nulls.filter((k) => job.expected?.[k as ImageType] !== undefined),
      [],
      `${job.what}: null only for types the session lacks`,
    )
    t.same(
      Object.keys(all).filter((k) => !job.requested.includes(k as ImageType)),
      [],
      `${job.what}: nothing that was not asked for`,
    )
    if (!job.dropIn) {
      for (const type of job.requested) {
        const places = [type in body.images, body.missing.includes(type), type in body.errors].filter(Boolean)
        t.equal(places.length, 1, `${job.what}: ${type} is in exactly one of images, missing, errors`)
      }
    }
  }
  t.equal(results.length + cut.length, jobs.length, 'every request was answered (or cut, above)')
  t.ok(served > 0, `some requests were served despite the faults (${served})`)
  t.ok(failed > 0, `some requests met the faults (${failed})`)
})

t.test('no unhandled rejection in this file', async (t) => {
  await sleep(200)
  t.equal(unhandled, 0, `no unhandled rejection (${unhandledReasons.join('; ')})`)
})
