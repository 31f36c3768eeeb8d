import http from 'node:http'

import t from 'tap'

import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import type { Simulator } from '../../src/simulator/index.js'
import { assertIncodeError, call, fetchImages, latestBytes, startSim } from './fixtures/helpers.js'

const { small } = SEEDED_INTERVIEW_IDS

/** POST with node:http, reporting how many body bytes arrived before the connection ended. */
function rawImages(
  sim: Simulator,
  images: string[],
): Promise<{ status: number; contentLength: number; received: number; complete: boolean }> {
  const body = JSON.stringify({ images })
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${sim.url}${sim.paths.images}`,
      {
        method: 'POST',
        agent: false,
        headers: {
          'x-api-key': sim.apiKey,
          'X-Incode-Hardware-Id': sim.sessionToken(small),
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let received = 0
        res.on('data', (chunk: Buffer) => (received += chunk.length))
        const done = (): void =>
          resolve({
            status: res.statusCode ?? 0,
            contentLength: Number(res.headers['content-length']),
            received,
            complete: res.complete,
          })
        res.on('end', done)
        res.on('error', done)
        res.on('close', done)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

void t.test('resetRate 1: the client sees a socket error', async (t) => {
  const sim = await startSim(t, { faults: { resetRate: 1 } })
  await t.rejects(fetchImages(sim, small, ['signature']), 'fetch fails on a reset connection')
  const calls = sim.callsTo('images')
  t.equal(calls.at(-1)?.status, 0, 'the call is logged with status 0')
  const start = await call(sim, sim.paths.start, { body: {} })
  t.equal(start.status, 200, 'start is not affected by default')
})

void t.test('truncateRate 1: headers and half the body, then the socket closes', async (t) => {
  const sim = await startSim(t, { faults: { truncateRate: 1 } })
  const raw = await rawImages(sim, ['selfie'])
  t.equal(raw.status, 200, 'the status line says 200')
  t.notOk(raw.complete, 'the body is incomplete')
  t.ok(
    raw.received < raw.contentLength,
    `fewer bytes (${raw.received}) than Content-Length (${raw.contentLength})`,
  )
  t.ok(raw.received > 0, 'some of the body arrived')
  const res = await fetch(`${sim.url}${sim.paths.images}`, {
    method: 'POST',
    headers: { 'x-api-key': sim.apiKey, 'X-Incode-Hardware-Id': sim.sessionToken(small) },
    body: JSON.stringify({ images: ['signature'] }),
  })
  await t.rejects(
    res.text().then((text) => JSON.parse(text) as unknown),
    'reading or parsing the truncated body fails',
  )
})

void t.test('malformedRate 1: 200 with a body that is not JSON', async (t) => {
  const sim = await startSim(t, { faults: { malformedRate: 1 } })
  const reply = await fetchImages(sim, small, ['signature'])
  t.equal(reply.status, 200, 'the status is 200')
  t.equal(reply.json, undefined, 'the body does not parse as JSON')
  t.ok(reply.text.length > 0, 'the body is not empty')
})

void t.test('errorRate 1 with errorStatus 503 answers 503 with an Incode error body', async (t) => {
  const sim = await startSim(t, { faults: { errorRate: 1, errorStatus: 503 } })
  for (const key of ['images', 'imageLinks', 'secondIdImages', 'concatenatedImages'] as const) {
    const reply = await fetchImages(sim, small, ['signature'], sim.paths[key])
    assertIncodeError(t, reply, 503, sim.paths[key], `${key} with errorRate 1`)
  }
  const login = await call(sim, sim.paths.adminLogin, {
    body: { email: sim.adminEmail, password: sim.adminPassword },
  })
  t.equal(login.status, 200, 'admin log-in is not a default fault endpoint')
  sim.setFaults({ errorRate: 1 })
  const fiveHundred = await fetchImages(sim, small, ['signature'])
  t.equal(fiveHundred.status, 500, 'errorStatus defaults to 500')
  sim.setFaults(undefined)
  t.equal((await fetchImages(sim, small, ['signature'])).status, 200, 'setFaults(undefined) clears faults')
})

void t.test('faults apply only to the listed endpoints', async (t) => {
  const sim = await startSim(t, { faults: { errorRate: 1, endpoints: ['imageLinks', 'start'] } })
  t.equal((await fetchImages(sim, small, ['signature'])).status, 200, 'images is not listed: 200')
  t.equal(
    (await fetchImages(sim, small, ['signature'], sim.paths.imageLinks)).status,
    500,
    'imageLinks is listed: 500',
  )
  t.equal((await call(sim, sim.paths.start, { body: {} })).status, 500, 'start is listed: 500')
})

void t.test('errorRate 0.5 is deterministic for a seed', async (t) => {
  const statuses = async (seed: number): Promise<number[]> => {
    const sim = await startSim(t, { seed, faults: { errorRate: 0.5 } })
    const out: number[] = []
    for (let i = 0; i < 16; i++) out.push((await fetchImages(sim, small, ['signature'])).status)
    return out
  }
  const a = await statuses(7)
  const b = await statuses(7)
  t.same(a, b, 'the same seed gives the same sequence')
  t.ok(a.includes(200) && a.includes(500), `both outcomes occur (${a.join(',')})`)
})

void t.test('extraLatencyMs delays matching calls', async (t) => {
  // A delay far above what a busy machine adds by itself, so that comparisons hold under load.
  const sim = await startSim(t, { faults: { extraLatencyMs: 1_500 } })
  const started = performance.now()
  const reply = await fetchImages(sim, small, ['signature'])
  const elapsed = performance.now() - started
  t.equal(reply.status, 200, 'the answer is still 200')
  t.ok(elapsed >= 1_200, `the call took at least 80% of 1.5 s (${Math.round(elapsed)} ms)`)
  t.ok(Number(reply.headers.get('processing-time')) >= 1_200, 'Processing-Time includes the delay')
  const begin = performance.now()
  await call(sim, sim.paths.start, { body: {} })
  const startElapsed = performance.now() - begin
  t.ok(startElapsed < elapsed, `start is not delayed (${Math.round(startElapsed)} ms)`)
})

void t.test('slowBodyMs trickles the body out', async (t) => {
  const sim = await startSim(t, { faults: { slowBodyMs: 400 } })
  const started = performance.now()
  const res = await fetch(`${sim.url}${sim.paths.images}`, {
    method: 'POST',
    headers: { 'x-api-key': sim.apiKey, 'X-Incode-Hardware-Id': sim.sessionToken(small) },
    body: JSON.stringify({ images: ['selfie'] }),
  })
  const json = (await res.json()) as { selfie: string }
  const elapsed = performance.now() - started
  t.equal(res.status, 200, 'the answer is 200')
  t.ok(Buffer.from(json.selfie, 'base64').equals(latestBytes(sim, small, 'selfie')), 'the body is whole')
  t.ok(elapsed >= 320, `the body took at least 80% of 400 ms (${Math.round(elapsed)} ms)`)
})

void t.test('loginFailure makes admin log-in answer 500', async (t) => {
  const sim = await startSim(t, { faults: { loginFailure: true } })
  const path = sim.paths.adminLogin
  const reply = await call(sim, path, { body: { email: sim.adminEmail, password: sim.adminPassword } })
  assertIncodeError(t, reply, 500, path, 'admin log-in with loginFailure')
  t.equal((await fetchImages(sim, small, ['signature'])).status, 200, 'image endpoints still work')
})
