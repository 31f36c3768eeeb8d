import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build } from '../helpers/build.js'
import { assertIncodeError, assertProblem, HARDENING_ENV, parseJson } from './helpers.js'

/**
 * Random Incode tokens must not buy requests: a token Incode has not accepted counts against its
 * address (and its own bucket), and a token Incode refused is answered from memory for a while.
 */

const { small, full } = SEEDED_INTERVIEW_IDS
const BODY = JSON.stringify({ images: ['selfie'] })
/** The drop-in base64 path (INCODE_PATH_IMAGES's default). */
const DROP_IN_PATH = '/omni/get/images'

function randomToken(): string {
  return `${randomBytes(12).toString('base64url')}.${randomBytes(24).toString('base64url')}`
}

/** A frontend call on /v1 with a session token, or a drop-in call with X-Incode-Hardware-Id. */
function tokenRequest(
  app: FastifyInstance,
  route: 'v1' | 'drop-in',
  token: string,
  remoteAddress = '127.0.0.1',
) {
  return app.inject({
    method: 'POST',
    url: route === 'v1' ? '/v1/session/images' : DROP_IN_PATH,
    headers: {
      'content-type': 'application/json',
      [route === 'v1' ? 'x-incode-session-token' : 'x-incode-hardware-id']: token,
    },
    payload: BODY,
    remoteAddress,
  })
}

for (const route of ['v1', 'drop-in'] as const) {
  t.test(`${route}: 700 random tokens from one address stop at the address limit`, async (t) => {
    const max = 50
    const { app, simulator } = await build(t, { env: { ...HARDENING_ENV, RATE_LIMIT_MAX: String(max) } })
    const statuses = new Map<number, number>()
    let first429 = -1
    for (let i = 0; i < 700; i++) {
      const res = await tokenRequest(app, route, randomToken())
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      if (res.statusCode === 429 && first429 < 0) {
        first429 = i
        if (route === 'v1')
          assertProblem(t, res, 429, 'RATE_LIMITED', 'the first random token over the limit')
        else assertIncodeError(t, res, 429, DROP_IN_PATH, 'the first random token over the limit')
      }
    }
    const summary = JSON.stringify(Object.fromEntries(statuses))
    t.equal(first429, max, `429s begin right after the address limit of ${max} (statuses ${summary})`)
    t.equal(statuses.get(429), 700 - max, `every request past the address limit is 429 (${summary})`)
    t.equal(statuses.get(401), max, `the requests within the limit are Incode's 401 (${summary})`)
    const upstream = simulator.calls.length
    t.ok(upstream <= max, `upstream calls (${upstream}) stay within the address limit (${max})`)
    t.comment(`${route}: 700 random-token requests from one address made ${upstream} upstream calls`)
  })

  t.test(`${route}: a refused token repeated is answered without calling Incode`, async (t) => {
    let clock = Date.now()
    const { app, simulator, config } = await build(t, { env: HARDENING_ENV, now: () => clock })
    const token = randomToken()
    const first = await tokenRequest(app, route, token)
    const calls = simulator.calls.length
    t.equal(first.statusCode, 401, 'Incode refuses the token: 401')
    t.equal(calls, 1, 'the first try asks Incode')

    const again = await tokenRequest(app, route, token)
    t.equal(simulator.calls.length, calls, 'the repeat makes no upstream call')
    t.equal(again.statusCode, 401, 'the repeat is 401 too')
    const withoutRequestId = (text: string): Record<string, unknown> => ({
      ...(parseJson(text) as Record<string, unknown>),
      requestId: undefined,
    })
    t.same(
      withoutRequestId(again.body),
      withoutRequestId(first.body),
      'with the same body as the first refusal',
    )
    t.equal(again.headers['content-type'], first.headers['content-type'], 'and the same content type')

    // The memory lasts TOKEN_REFUSAL_TTL_MS: then Incode is asked again.
    clock += config.TOKEN_REFUSAL_TTL_MS + 1
    const later = await tokenRequest(app, route, token)
    t.equal(later.statusCode, 401, 'after the refusal is forgotten: 401 again')
    t.equal(simulator.calls.length, calls + 1, 'Incode is asked again once it is forgotten')
  })
}

t.test('an accepted token has its own bucket: one over its limit leaves another unthrottled', async (t) => {
  const max = 5
  const { app, simulator } = await build(t, { env: { ...HARDENING_ENV, RATE_LIMIT_MAX: String(max) } })
  const busy = simulator.sessionToken(small)
  const other = simulator.sessionToken(full)
  const busyStatuses: number[] = []
  for (let i = 0; i < max + 4; i++) busyStatuses.push((await tokenRequest(app, 'v1', busy)).statusCode)
  t.ok(busyStatuses.includes(429), `a token past its limit is throttled (${busyStatuses.join(',')})`)
  t.equal(busyStatuses[0], 200, 'its first request is served')

  const otherStatuses: number[] = []
  for (let i = 0; i < max; i++) otherStatuses.push((await tokenRequest(app, 'v1', other)).statusCode)
  t.same(
    otherStatuses,
    Array<number>(max).fill(200),
    `another accepted token from the same address is not throttled (${otherStatuses.join(',')})`,
  )
})

t.test('an accepted token is not starved by random-token noise from other addresses', async (t) => {
  const max = 10
  const { app, simulator } = await build(t, {
    // A small verdict memory: the noise overflows it, the accepted token's verdict must survive.
    env: { ...HARDENING_ENV, RATE_LIMIT_MAX: String(max), TOKEN_MEMORY_MAX_ENTRIES: '8' },
  })
  const token = simulator.sessionToken(small)
  t.equal((await tokenRequest(app, 'v1', token, '192.0.2.1')).statusCode, 200, 'the token is accepted')

  let noise429 = 0
  for (let address = 1; address <= 20; address++) {
    for (let i = 0; i < max + 5; i++) {
      const res = await tokenRequest(app, 'v1', randomToken(), `198.51.100.${address}`)
      if (res.statusCode === 429) noise429++
    }
  }
  t.equal(noise429, 20 * 5, `every noisy address is throttled past its own limit (${noise429} × 429)`)

  const statuses: number[] = []
  for (let i = 0; i < max - 1; i++)
    statuses.push((await tokenRequest(app, 'v1', token, '192.0.2.1')).statusCode)
  t.same(
    statuses,
    Array<number>(max - 1).fill(200),
    `the accepted token is served up to its own limit (${statuses.join(',')})`,
  )
})

t.test('a token not accepted yet is limited by its own bucket too, from any address', async (t) => {
  const max = 5
  const { app, simulator } = await build(t, { env: { ...HARDENING_ENV, RATE_LIMIT_MAX: String(max) } })
  const token = randomToken()
  const statuses: number[] = []
  for (let i = 0; i <= max; i++) {
    statuses.push((await tokenRequest(app, 'drop-in', token, `203.0.113.${i + 1}`)).statusCode)
  }
  t.same(
    statuses,
    [...Array<number>(max).fill(401), 429],
    `one unaccepted token from ${max + 1} addresses: ${max} answered, then 429 (${statuses.join(',')})`,
  )
  t.equal(simulator.calls.length, 1, 'and Incode was asked once: the refusal is remembered')
})

t.test('a token Incode refuses for one interview is still served for its own', async (t) => {
  const { app, simulator } = await build(t, { env: HARDENING_ENV })
  const token = simulator.sessionToken(small)
  const call = (id: string) =>
    app.inject({
      method: 'POST',
      url: `${DROP_IN_PATH}?id=${id}`,
      headers: { 'content-type': 'application/json', 'x-incode-hardware-id': token },
      payload: BODY,
    })
  const elsewhere = await call(full)
  t.equal(elsewhere.statusCode, 403, "another interview's images: Incode's 403")
  t.equal((await call(full)).statusCode, 403, 'asked again: 403, from memory')
  t.equal(simulator.calls.length, 1, 'the repeated 403 made no upstream call')
  t.equal((await call(small)).statusCode, 200, 'its own interview is still served')
})
