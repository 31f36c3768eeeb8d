import t from 'tap'
import { Client } from 'undici'

import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { startSim } from './fixtures/helpers.js'

void t.test('keep-alive connections are reused and close() ends promptly with idle sockets', async (t) => {
  const sim = await startSim(t)
  const client = new Client(sim.url, { keepAliveTimeout: 60_000 })
  t.teardown(() => client.destroy())
  let connects = 0
  let disconnected = false
  client.on('connect', () => connects++)
  client.on('disconnect', () => (disconnected = true))
  const token = sim.sessionToken(SEEDED_INTERVIEW_IDS.small)
  for (let i = 0; i < 5; i++) {
    const res = await client.request({
      method: 'POST',
      path: sim.paths.images,
      headers: { 'x-api-key': sim.apiKey, 'X-Incode-Hardware-Id': token, 'content-type': 'application/json' },
      body: JSON.stringify({ images: ['signature', 'selfie'] }),
    })
    t.equal(res.statusCode, 200, `request ${i + 1} answers 200`)
    await res.body.arrayBuffer()
  }
  t.equal(connects, 1, 'five requests share one connection')
  const started = performance.now()
  await sim.close()
  const took = performance.now() - started
  t.ok(took < 2_000, `close() resolved in ${Math.round(took)} ms despite the idle keep-alive socket`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(disconnected, 'the client saw its connection closed')
  await sim.close()
  t.pass('close() can be called twice')
})

void t.test('close() does not wait for delayed answers', async (t) => {
  const sim = await startSim(t, { latency: { fixedMs: 30_000, perMiBMs: 0 } })
  const pending = fetch(`${sim.url}${sim.paths.images}`, {
    method: 'POST',
    headers: {
      'x-api-key': sim.apiKey,
      'X-Incode-Hardware-Id': sim.sessionToken(SEEDED_INTERVIEW_IDS.small),
    },
    body: JSON.stringify({ images: ['signature'] }),
  }).then(
    (res) => res.status,
    () => 'error',
  )
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = performance.now()
  await sim.close()
  t.ok(performance.now() - started < 2_000, 'close() resolved promptly')
  t.equal(await pending, 'error', 'the pending call failed instead of hanging')
})
