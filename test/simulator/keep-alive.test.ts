import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import t from 'tap'
import { Client, request } from 'undici'

import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { startSim } from './fixtures/helpers.js'

/** The simulator's keep-alive timeout: a close() that waited for idle sockets would take this long. */
const SIMULATOR_KEEP_ALIVE_MS = 30_000

/** Whether `promise` settles before a timer of `ms` fires. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([promise.then(() => true), late])
  } finally {
    clearTimeout(timer)
  }
}

void t.test('keep-alive connections are reused and close() ends promptly with idle sockets', async (t) => {
  const sim = await startSim(t)
  const client = new Client(sim.url, { keepAliveTimeout: 60_000 })
  t.teardown(() => client.destroy())
  let connects = 0
  client.on('connect', () => connects++)
  const disconnected = new Promise<void>((resolve) => client.once('disconnect', () => resolve()))
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
  // Not a speed test: only a close() that waited for the idle socket's keep-alive timeout fails it.
  t.ok(
    await settlesWithin(sim.close(), SIMULATOR_KEEP_ALIVE_MS * 0.8),
    'close() did not wait for the idle keep-alive socket to time out',
  )
  // The timer also keeps the loop alive: undici does not hold it open for an idle socket.
  t.ok(
    await settlesWithin(disconnected, SIMULATOR_KEEP_ALIVE_MS * 0.8),
    'the client saw its connection closed by the server',
  )
  await t.resolves(sim.close(), 'close() can be called twice')
})

void t.test('close() does not wait for delayed answers', async (t) => {
  const sim = await startSim(t, { latency: { fixedMs: 30_000, perMiBMs: 0 } })
  const sent = new Promise<void>((resolve) => {
    const onSent = () => {
      unsubscribe('undici:request:bodySent', onSent)
      resolve()
    }
    subscribe('undici:request:bodySent', onSent)
  })
  const pending = request(`${sim.url}${sim.paths.images}`, {
    method: 'POST',
    headers: {
      'x-api-key': sim.apiKey,
      'X-Incode-Hardware-Id': sim.sessionToken(SEEDED_INTERVIEW_IDS.small),
    },
    body: JSON.stringify({ images: ['signature'] }),
  }).then(
    (res) => res.statusCode,
    () => 'error',
  )
  await sent
  await sim.close()
  // A close() that waited would have let the answer out after its 30 s delay: a 200.
  t.equal(await pending, 'error', 'the pending call failed instead of hanging')
})
