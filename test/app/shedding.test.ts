import t, { type Test } from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders } from '../helpers/build.js'

/** Blocks this thread for `ms` without using the CPU: the event loop stalls, as on a starved machine. */
function stallEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/**
 * Lets every timer that fell due during a stall run first (Node runs due timers in order of their
 * due time, and this one falls due last), so that the load-shedding sampler has taken its sample.
 */
function afterDueTimers(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1))
}

async function callAfterStall(t: Test, shedAfterMs: string, stallMs: number) {
  const { app } = await build(t, { env: { SHED_EVENT_LOOP_DELAY_MS: shedAfterMs } })
  // A stall longer than a sampling interval, starting before the sampler saw the loop turn: the
  // sample then holds no measurement at all.
  stallEventLoop(stallMs)
  await afterDueTimers()
  // Health probes are never shed: a partner call with an invalid body (400 unless shed) is.
  return app.inject({
    method: 'POST',
    url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`,
    headers: partnerHeaders(),
    payload: '{}',
  })
}

void t.test('a stall shorter than SHED_EVENT_LOOP_DELAY_MS sheds nothing', async (t) => {
  const res = await callAfterStall(t, '60000', 1_200)
  t.equal(
    res.statusCode,
    400,
    'a 1.2 s stall is far below the 60 s threshold: not shed (the 400 of the body)',
  )
})

void t.test('a stall longer than SHED_EVENT_LOOP_DELAY_MS sheds with 503 OVERLOADED', async (t) => {
  const res = await callAfterStall(t, '200', 2_500)
  t.equal(res.statusCode, 503, 'a 2.5 s stall is past the 200 ms threshold: shed')
  t.equal(res.json<{ code?: string }>().code, 'OVERLOADED', 'with the code OVERLOADED')
  t.equal(res.headers['retry-after'], '1', 'and Retry-After: 1')
})
