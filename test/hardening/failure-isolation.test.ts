import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS, type Simulator } from '../../src/simulator/index.js'
import { LOGIN_BACKOFF_BASE_MS } from '../../src/upstream/adminToken.js'
import { build, partnerHeaders } from '../helpers/build.js'
import { HARDENING_ENV, parseJson, problemFlaw } from './helpers.js'

/**
 * One failing credential or endpoint must not take everyone down: a failing admin log-in leaves
 * session-token callers alone, a token being renewed is still served, a storm of Incode 502s is
 * an outage (not "too large") that leaves no trace in later plans, and a malformed 200 counts as
 * a failure for the breaker.
 */

const { full, small } = SEEDED_INTERVIEW_IDS

const ENV: Record<string, string> = {
  ...HARDENING_ENV,
  RETRY_BASE_MS: '10',
  RETRY_MAX_DELAY_MS: '50',
}

function fakeClock(start = Date.now()): { now: () => number; advance: (ms: number) => void } {
  let at = start
  return { now: () => at, advance: (ms) => (at += ms) }
}

function partner(url: string, images: readonly ImageType[]): InjectOptions {
  return { method: 'POST', url, headers: partnerHeaders(), payload: JSON.stringify({ images }) }
}

function frontend(token: string, images: readonly ImageType[]): InjectOptions {
  return {
    method: 'POST',
    url: '/v1/session/images',
    headers: { 'content-type': 'application/json', 'x-incode-session-token': token },
    payload: JSON.stringify({ images }),
  }
}

function codeOf(res: LightMyRequestResponse): string {
  return String(parseJson(res.body)?.code)
}

/** Upstream calls to the base64 images endpoint that `send` made. */
async function imageCallsOf(simulator: Simulator, send: () => Promise<LightMyRequestResponse>) {
  const before = simulator.callsTo('images').length
  const res = await send()
  return { res, calls: simulator.callsTo('images').length - before }
}

/** Polls `check` until it holds (bounded by `tries` × `everyMs`); resolves whether it held. */
async function eventually(check: () => boolean, tries = 200, everyMs = 25): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (check()) return true
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return check()
}

function assertClearProblem(t: Test, res: LightMyRequestResponse, codes: string[], what: string): void {
  t.ok([502, 503].includes(res.statusCode), `${what}: a 502 or 503 (got ${res.statusCode})`)
  t.equal(problemFlaw(res), undefined, `${what}: problem+json`)
  t.ok(codes.includes(codeOf(res)), `${what}: code ${codes.join(' or ')} (got ${codeOf(res)})`)
}

void t.test(
  '(a) log-in failing: session-token requests are all served, partners get a clear error',
  async (t) => {
    const clock = fakeClock()
    const { app, simulator } = await build(t, { env: ENV, now: clock.now })
    const token = simulator.sessionToken(small)
    simulator.setFaults({ loginFailure: true })

    // As partners do: a few requests in a row (which alone would open a shared breaker), then the
    // frontends' requests, round after round. Each round a back-off step passes, so that failed
    // log-ins reach the breaker threshold: they must open the log-in's breaker only.
    const ROUNDS = 8
    const PARTNERS_PER_ROUND = 6
    let served = 0
    let frontends = 0
    let partners = 0
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PARTNERS_PER_ROUND; i++) {
        const res = await app.inject(partner(`/v1/sessions/${small}/images`, ['signature']))
        partners++
        assertClearProblem(
          t,
          res,
          ['UPSTREAM_500', 'UPSTREAM_CIRCUIT_OPEN'],
          `round ${round + 1}, partner ${i + 1}`,
        )
      }
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          app.inject(frontend(token, i % 2 === 0 ? ['signature'] : ['selfie', 'signature'])),
        ),
      )
      for (const res of answers) {
        frontends++
        if (res.statusCode === 200) served++
      }
      clock.advance(LOGIN_BACKOFF_BASE_MS * 2 ** round)
    }
    const links = await app.inject(partner(`/v1/sessions/${small}/image-links`, ['selfie']))
    assertClearProblem(t, links, ['UPSTREAM_500', 'UPSTREAM_CIRCUIT_OPEN'], 'partner links')

    t.comment(`frontend requests served while the log-in fails: ${served}/${frontends}`)
    t.equal(served, frontends, 'every session-token request was served (200)')
    t.equal(app.incode.breakerState('images'), 'closed', "the image endpoint's breaker stayed closed")
    const logins = simulator.callsTo('adminLogin').length
    t.ok(
      logins >= 1 && logins <= ROUNDS + 1,
      `no log-in storm: ${logins} log-ins for ${partners + 1} partner requests, one per back-off step at most`,
    )
  },
)

void t.test(
  '(b) token within the refresh margin, log-in failing: partners served with the current token',
  async (t) => {
    const clock = fakeClock()
    const { app, simulator } = await build(t, {
      env: { ...ENV, ADMIN_TOKEN_REFRESH_MARGIN_MS: String(10 * 60_000) },
      now: clock.now,
      simulator: { now: clock.now, adminTokenTtlMs: 24 * 3_600_000 },
    })
    const request = partner(`/v1/sessions/${small}/images`, ['signature'])
    t.equal((await app.inject(request)).statusCode, 200, 'served with a fresh admin token')
    t.equal(simulator.callsTo('adminLogin').length, 1, 'one log-in')

    simulator.setFaults({ loginFailure: true })
    clock.advance(24 * 3_600_000 - 5 * 60_000) // 5 min left: inside the refresh margin
    let step = LOGIN_BACKOFF_BASE_MS
    for (let steps = 0; steps < 4; steps++) {
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(Array.from({ length: 5 }, () => app.inject(request)))
        t.same(
          answers.map((res) => res.statusCode),
          [200, 200, 200, 200, 200],
          `back-off step ${steps + 1}, round ${round + 1}: every partner request served`,
        )
        await app.adminTokens?.settled()
      }
      const logins = simulator.callsTo('adminLogin').length
      t.equal(logins, 2 + steps, `back-off step ${steps + 1}: one log-in at most (${logins} in all)`)
      clock.advance(step)
      step *= 2
    }
    t.ok(
      simulator.callsTo('adminLogin').every((call, i) => i === 0 || call.status === 500),
      'the renewals were tried and failed',
    )
  },
)

void t.test(
  '(c) a 502 storm: few calls, the breaker opens, not IMAGE_TOO_LARGE; the plan is unchanged afterwards',
  async (t) => {
    // A reset time the three storm requests fit in on a busy machine (at 300 ms, a storm request
    // slowed by the load let the breaker half-open between them); the recovery is waited for.
    const { app, simulator } = await build(t, { env: { ...ENV, BREAKER_RESET_MS: '3000' } })
    const fullSet = partner(`/v1/sessions/${full}/images`, IMAGE_TYPES)
    const before = await imageCallsOf(simulator, () => app.inject(fullSet))
    t.equal(before.res.statusCode, 200, 'before the storm: the full set is served')
    const planned = before.calls
    t.equal(planned, 4, 'before the storm: 4 upstream calls for the full set')

    simulator.setFaults({ errorRate: 1, errorStatus: 502 })
    const stormCalls: number[] = []
    for (let i = 0; i < 3; i++) {
      const { res, calls } = await imageCallsOf(simulator, () => app.inject(fullSet))
      stormCalls.push(calls)
      assertClearProblem(t, res, ['UPSTREAM_502', 'UPSTREAM_CIRCUIT_OPEN'], `storm request ${i + 1}`)
      t.notMatch(res.body, /IMAGE_TOO_LARGE/, `storm request ${i + 1}: nothing is called too large`)
      t.ok(calls <= 2 * planned, `storm request ${i + 1}: ${calls} upstream calls, at most ${2 * planned}`)
    }
    t.comment(`upstream calls per full-set request during the storm: ${stormCalls.join(', ')}`)
    t.equal(app.incode.breakerState('images'), 'open', 'the breaker opened')
    t.equal(stormCalls[2], 0, 'once open, a request makes no upstream call')
    t.equal(app.sizeEstimator.isMarkedTooLarge('fullFrameFrontID'), false, 'no type was marked too large')

    simulator.setFaults(undefined)
    t.ok(await eventually(() => app.incode.breakerState('images') !== 'open', 800), 'the reset time passes')
    const probe = await app.inject(partner(`/v1/sessions/${small}/images`, ['signature']))
    t.equal(probe.statusCode, 200, 'the half-open probe succeeds')
    const after = await imageCallsOf(simulator, () => app.inject(fullSet))
    t.equal(after.res.statusCode, 200, 'after the storm: the full set is served')
    t.same(parseJson(after.res.body)?.errors, {}, 'after the storm: no errors')
    t.comment(`upstream calls per full-set request after the storm: ${after.calls}`)
    t.equal(after.calls, planned, `after the storm: the planned ${planned} upstream calls again`)
  },
)

void t.test('(d) HTML or cut-off JSON in a 200 counts as a failure: the breaker opens', async (t) => {
  for (const [what, endpoint, request] of [
    ['base64 images', 'images', partner(`/v1/sessions/${small}/images`, ['signature'])],
    ['image links', 'imageLinks', partner(`/v1/sessions/${small}/image-links`, ['selfie'])],
  ] as const) {
    const { app, simulator, config } = await build(t, { env: { ...ENV, RETRY_MAX: '0' } })
    await app.adminTokens?.get({ deadlineAt: Date.now() + 10_000 })
    simulator.setFaults({ malformedRate: 1 })
    for (let i = 0; i < config.BREAKER_FAILURE_THRESHOLD; i++) {
      const res = await app.inject(request)
      assertClearProblem(t, res, ['UPSTREAM_BAD_RESPONSE'], `${what}: malformed answer ${i + 1}`)
    }
    t.equal(app.incode.breakerState(endpoint), 'open', `${what}: the breaker opened`)
    const refused = await app.inject(request)
    assertClearProblem(t, refused, ['UPSTREAM_CIRCUIT_OPEN'], `${what}: then refused fast`)

    // Readiness names the open breaker; only the base64 endpoint's makes the service not ready.
    const ready = await app.inject({ method: 'GET', url: '/readyz' })
    const check = parseJson(ready.body)?.checks?.imageEndpoints
    t.match(check?.detail, new RegExp(`circuit open: ${endpoint}`), `${what}: readiness names it`)
    t.equal(check?.ok, endpoint !== 'images', `${what}: the image endpoints check`)
    t.equal(ready.statusCode, endpoint === 'images' ? 503 : 200, `${what}: readiness status`)
  }
})
