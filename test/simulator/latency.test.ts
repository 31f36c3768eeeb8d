import t from 'tap'

import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { call, fetchImages, startSim } from './fixtures/helpers.js'

const { small } = SEEDED_INTERVIEW_IDS

void t.test('fixedMs delays image answers but not start', async (t) => {
  const sim = await startSim(t)
  await fetchImages(sim, small, ['signature'])
  // A delay far above what a busy machine adds by itself, so that comparisons hold under load.
  sim.setLatency({ fixedMs: 1_500, perMiBMs: 0 })
  const started = performance.now()
  const reply = await fetchImages(sim, small, ['signature'])
  const elapsed = performance.now() - started
  t.equal(reply.status, 200, 'the answer is 200')
  t.ok(elapsed >= 1_200, `the call took at least 80% of 1.5 s (${Math.round(elapsed)} ms)`)
  const begin = performance.now()
  await call(sim, sim.paths.start, { body: {} })
  const startElapsed = performance.now() - begin
  t.ok(startElapsed < elapsed, `start is not delayed (${Math.round(startElapsed)} ms)`)
})

void t.test('perMiBMs scales with the answer size; setLatency changes the model', async (t) => {
  const sim = await startSim(t)
  await fetchImages(sim, small, ['fullFrameFrontID'])
  sim.setLatency({ fixedMs: 0, perMiBMs: 1_000 })
  const started = performance.now()
  const reply = await fetchImages(sim, small, ['fullFrameFrontID'])
  const elapsed = performance.now() - started
  const expected = (1_000 * reply.bytes.length) / 2 ** 20
  t.ok(reply.bytes.length > 2 ** 20, 'the answer is over 1 MiB')
  t.ok(
    elapsed >= expected * 0.8,
    `a ${reply.bytes.length} B answer took ${Math.round(elapsed)} ms (>= 80% of ${Math.round(expected)})`,
  )
  const tinyStart = performance.now()
  await fetchImages(sim, small, ['signature'])
  const tiny = performance.now() - tinyStart
  t.ok(tiny < elapsed, `a small answer is faster (${Math.round(tiny)} ms)`)

  const links = await fetchImages(sim, small, ['fullFrameFrontID'], sim.paths.imageLinks)
  sim.setLatency({ fixedMs: 200, perMiBMs: 0 })
  const fileStart = performance.now()
  const file = await fetch(links.json.fullFrameFrontID)
  await file.arrayBuffer()
  t.ok(performance.now() - fileStart >= 160, 'link files are delayed too')
})
