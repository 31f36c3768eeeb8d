import t from 'tap'
import { OverloadedError } from '../../src/errors.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders } from '../helpers/build.js'
import type { FastifyInstance } from 'fastify'

/** One sample's value on /metrics (NaN when the series is absent). */
async function sample(app: FastifyInstance, series: string): Promise<number> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: partnerHeaders() })
  const escaped = series.replace(/[{}"]/g, '\\$&')
  return Number(new RegExp(`^${escaped} (\\S+)$`, 'm').exec(res.body)?.[1])
}

void t.test('a failed admin log-in is counted, for the admin log-in alert', async (t) => {
  const { app } = await build(t, { env: { INCODE_ADMIN_PASSWORD: 'not-the-simulator-password' } })
  t.equal(await sample(app, 'gateway_admin_token_login_failures_total'), 0, 'no failure before any log-in')
  const res = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.full}/image-links`,
    headers: partnerHeaders(),
    payload: { images: ['selfie'] },
  })
  t.not(res.statusCode, 200, 'links need the admin token, which cannot be had')
  t.equal(await sample(app, 'gateway_admin_token_logins_total'), 1, 'one log-in was tried')
  t.equal(await sample(app, 'gateway_admin_token_login_failures_total'), 1, 'and counted as failed')
})

void t.test('a successful admin log-in is not counted as failed', async (t) => {
  const { app } = await build(t)
  const res = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.full}/image-links`,
    headers: partnerHeaders(),
    payload: { images: ['selfie'] },
  })
  t.equal(res.statusCode, 200, 'links fetched with the admin token')
  t.equal(await sample(app, 'gateway_admin_token_logins_total'), 1, 'one log-in')
  t.equal(await sample(app, 'gateway_admin_token_login_failures_total'), 0, 'no failure')
})

void t.test('the answer memory in use, its bound and its refusals are exported', async (t) => {
  const { app, config } = await build(t)
  t.equal(await sample(app, 'gateway_answer_memory_reserved_bytes'), 0, 'nothing reserved at start')
  t.equal(
    await sample(app, 'gateway_answer_memory_limit_bytes'),
    config.ANSWER_MEMORY_BYTES,
    'the bound is ANSWER_MEMORY_BYTES',
  )

  const release = await app.answerMemory.reserve(64 * 1024)
  t.equal(await sample(app, 'gateway_answer_memory_reserved_bytes'), 64 * 1024, 'a 64 KiB reservation shows')

  // The rest is asked for twice over: it cannot come before its (already near) deadline.
  const refused = await app.answerMemory
    .reserve(config.ANSWER_MEMORY_BYTES, { deadlineAt: Date.now() + 10 })
    .then(
      (give) => {
        give()
        return undefined
      },
      (err: unknown) => err,
    )
  t.ok(
    refused instanceof OverloadedError && refused.code === 'MEMORY_BUDGET_EXHAUSTED',
    'a reservation that cannot fit by its deadline is refused',
  )
  t.equal(
    await sample(app, 'gateway_shed_requests_total{reason="answer_memory"}'),
    1,
    'and counted as shed for the answer memory',
  )

  release()
  t.equal(await sample(app, 'gateway_answer_memory_reserved_bytes'), 0, 'given back: nothing reserved')
})
