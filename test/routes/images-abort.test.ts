import t, { type Test } from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { planSplit } from '../../src/domain/planChunks.js'
import type { Config } from '../../src/config.js'
import { SizeEstimator } from '../../src/domain/sizeEstimator.js'
import { SEEDED_INTERVIEW_IDS, type Simulator } from '../../src/simulator/index.js'
import { partnerHeaders } from '../helpers/build.js'
import { buildForRoutes, waitUntil, warmSeededSessions } from './fixtures/helpers.js'

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS
const LATENCY_MS = 3_000

/**
 * The simulator's clock, counting its reads: it is read when a request arrives (the call log's
 * `at`) and when its token is checked, so the reads show requests arriving before the call log
 * does (an entry is written when the answer goes out, after the latency).
 */
function countingClock() {
  const clock = { reads: 0, now: () => (clock.reads++, Date.now()) }
  return clock
}

async function abortMidway(
  t: Test,
  options: { url: (base: string) => string; headers: Record<string, string>; upstreamCalls: number },
  harness: Awaited<ReturnType<typeof buildForRoutes>> & { clock: ReturnType<typeof countingClock> },
) {
  const { app, simulator, clock } = harness
  const before = app.incode.callCount
  const readsBefore = clock.reads
  const controller = new AbortController()
  const pending = fetch(options.url(harness.url), {
    method: 'POST',
    headers: options.headers,
    body: JSON.stringify({ images: IMAGE_TYPES }),
    signal: controller.signal,
  }).then(
    () => 'answered',
    (err: unknown) => (err instanceof Error ? err.name : String(err)),
  )

  const sent = await waitUntil(() => app.incode.callCount - before >= options.upstreamCalls, 2_000)
  t.ok(sent, `the app sent its ${options.upstreamCalls} upstream calls`)
  // Arrival of each call (two clock reads each); bounded, the assertions below are what count.
  await waitUntil(() => clock.reads - readsBefore >= 2 * options.upstreamCalls, 1_000)
  t.equal(simulator.callsTo('images').length, 0, 'no upstream call has been answered yet (latency)')
  const abortedAt = Date.now()
  controller.abort()
  t.equal(await pending, 'AbortError', 'the caller’s fetch was aborted')

  const logged = () => simulator.callsTo('images')
  const settled = await waitUntil(() => logged().length >= options.upstreamCalls, LATENCY_MS + 5_000, 25)
  t.ok(settled, 'the simulator logged every upstream call')
  const calls = logged()
  t.equal(calls.length, options.upstreamCalls, `${options.upstreamCalls} upstream calls in the log`)
  t.ok(
    calls.every((call) => call.at <= abortedAt),
    'each of them arrived before the caller aborted',
  )
  t.same(
    calls.map((call) => call.status),
    calls.map(() => 0),
    'each was cancelled: the simulator found its client gone (status 0), none was answered',
  )
}

function plannedChunks(config: Config): number {
  const estimator = new SizeEstimator()
  return planSplit(IMAGE_TYPES, (type) => estimator.estimate(type), {
    budgetBytes: config.CHUNK_BUDGET_BYTES,
    slots: config.FANOUT_CONCURRENCY,
    plan: config.SPLIT_PLAN,
  }).length
}

async function servesAfterwards(t: Test, url: string, simulator: Simulator) {
  simulator.setLatency({ fixedMs: 0, perMiBMs: 0 })
  const res = await fetch(`${url}/v1/sessions/${small}/images`, {
    method: 'POST',
    headers: partnerHeaders(),
    body: JSON.stringify({ images: ['selfie', 'signature'] }),
  })
  const body = (await res.json()) as { images: Record<string, string> }
  t.equal(res.status, 200, 'the app keeps serving after the abort')
  t.same(Object.keys(body.images).sort(), ['selfie', 'signature'], 'with the images')
}

t.test('a caller aborting the /v1 images route cancels its upstream calls', async (t) => {
  const clock = countingClock()
  const harness = await buildForRoutes(t, {
    listen: true,
    simulator: { now: clock.now, latency: { fixedMs: LATENCY_MS, perMiBMs: 0 } },
  })
  // Log in first, so that only image calls are in flight when the caller leaves.
  await harness.app.adminTokens?.get({ deadlineAt: Date.now() + 5_000 })
  const chunks = plannedChunks(harness.config)
  t.ok(chunks >= 2, `the full session is planned as ${chunks} parallel calls`)
  await abortMidway(
    t,
    {
      url: (base) => `${base}/v1/sessions/${full}/images`,
      headers: partnerHeaders(),
      upstreamCalls: chunks,
    },
    { ...harness, clock },
  )
  await servesAfterwards(t, harness.url, harness.simulator)
})

t.test('a caller aborting a drop-in path cancels its upstream calls', async (t) => {
  const clock = countingClock()
  const harness = await buildForRoutes(t, {
    listen: true,
    simulator: { now: clock.now, faults: { extraLatencyMs: LATENCY_MS, endpoints: ['images'] } },
  })
  const chunks = plannedChunks(harness.config)
  await abortMidway(
    t,
    {
      url: (base) => `${base}/omni/get/images?id=${full}`,
      headers: {
        'content-type': 'application/json',
        'api-version': '1.0',
        'x-incode-hardware-id': harness.simulator.sessionToken(full),
      },
      upstreamCalls: chunks,
    },
    { ...harness, clock },
  )
  harness.simulator.setFaults(undefined)
  await servesAfterwards(t, harness.url, harness.simulator)
})
