import { performance } from 'node:perf_hooks'
import t from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders } from '../helpers/build.js'
import { assertProblem, HARDENING_ENV, parseJson, sleep } from './helpers.js'

/**
 * While the event loop lags, requests are shed with 503; the health probes are not, so that an
 * orchestrator does not restart or unlist an instance that is only busy (at start-up, say).
 */

/** Busy work on the event loop, ms at a time: holds it, whatever the machine's speed. */
function holdEventLoop(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // spin
  }
}

t.test('under event-loop pressure, /v1 is shed and the probes still answer', async (t) => {
  const { app, simulator } = await build(t, {
    env: { ...HARDENING_ENV, SHED_EVENT_LOOP_DELAY_MS: '5' },
  })
  // 100 ms of busy work every 20 ms: every one-second sample of the event-loop delay reads tens
  // of milliseconds, far beyond the 5 ms limit, for as long as this runs.
  const pressure = setInterval(() => holdEventLoop(100), 20)
  t.teardown(() => clearInterval(pressure))
  for (let i = 0; i < 100 && !app.isUnderPressure(); i++) await sleep(50)
  t.ok(app.isUnderPressure(), 'the service sees the event loop lag')

  const imagesBefore = simulator.callsTo('images').length
  for (let round = 1; round <= 3; round++) {
    const shed = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/images`,
      headers: partnerHeaders(),
      payload: JSON.stringify({ images: ['selfie'] }),
    })
    assertProblem(t, shed, 503, 'OVERLOADED', `round ${round}: a /v1 request`)
    t.equal(shed.headers['retry-after'], '1', `round ${round}: the shed answer carries Retry-After`)

    const live = await app.inject({ method: 'GET', url: '/healthz' })
    t.equal(live.statusCode, 200, `round ${round}: /healthz answers 200 while load is shed`)
    t.same(parseJson(live.body), { status: 'ok' }, `round ${round}: /healthz says ok`)

    const ready = await app.inject({ method: 'GET', url: '/readyz' })
    t.equal(ready.statusCode, 200, `round ${round}: /readyz answers 200 while load is shed`)
    t.equal(parseJson(ready.body)?.status, 'ready', `round ${round}: /readyz says ready`)
  }
  t.ok(app.isUnderPressure(), 'the pressure lasted through every round')
  t.equal(simulator.callsTo('images').length, imagesBefore, 'shed requests never reached Incode')
})
