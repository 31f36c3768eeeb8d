import t from 'tap'

import { IMAGE_TYPE_INFO, IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import {
  attemptsOf,
  call,
  fakeClock,
  fetchImages,
  lastAttempt,
  latestBytes,
  seeded,
  startSim,
} from './fixtures/helpers.js'

const { full, small } = SEEDED_INTERVIEW_IDS

void t.test('links: latest URL, every attempt keyed by capture ms, cropped types omitted', async (t) => {
  const sim = await startSim(t)
  const session = seeded(sim, full)
  const reply = await fetchImages(sim, full, [...IMAGE_TYPES], sim.paths.imageLinks)
  t.equal(reply.status, 200, 'all types of the full session as links answer 200')
  for (const type of IMAGE_TYPES) {
    const attempts = attemptsOf(session.images, type)
    if (!IMAGE_TYPE_INFO[type].linkable) {
      t.notOk(type in reply.json, `${type} (cropped) is omitted`)
      t.notOk(`${type}_prevAttempts` in reply.json, `${type}_prevAttempts is omitted`)
      continue
    }
    const latest = reply.json[type]
    t.match(
      latest,
      new RegExp(`^${sim.url}/files/${full}/${type}/\\d+\\.jpg\\?`),
      `${type} is a simulator link`,
    )
    const prev = reply.json[`${type}_prevAttempts`]
    t.same(
      Object.keys(prev),
      attempts.map((a) => String(a.capturedAt)).sort((a, b) => Number(b) - Number(a)),
      `${type}_prevAttempts keys are the capture times in ms, latest first (as Incode's guide shows)`,
    )
    t.equal(Object.values(prev)[0], latest, `${type}: the first attempt listed is the latest, with its URL`)
    t.equal(
      prev[String(lastAttempt(attempts).capturedAt)],
      latest,
      `${type}: the latest appears with the identical URL`,
    )
    t.equal(new Set(Object.values(prev)).size, attempts.length, `${type}: each attempt has its own URL`)
  }
  const expectedKeys = IMAGE_TYPES.filter((x) => IMAGE_TYPE_INFO[x].linkable).flatMap((x) => [
    x,
    `${x}_prevAttempts`,
  ])
  t.same(Object.keys(reply.json).sort(), expectedKeys.sort(), 'no other keys')
})

void t.test('links: types without images are omitted', async (t) => {
  const sim = await startSim(t)
  const reply = await fetchImages(
    sim,
    small,
    ['selfie', 'fullFrameBackID', 'document', 'croppedFace'],
    sim.paths.imageLinks,
  )
  t.equal(reply.status, 200, 'answers 200')
  t.same(Object.keys(reply.json).sort(), ['selfie', 'selfie_prevAttempts'], 'only the selfie is there')
  t.equal(Object.keys(reply.json.selfie_prevAttempts).length, 1, 'a single attempt')
})

void t.test('a link returns the exact JPEG bytes of its attempt', async (t) => {
  const sim = await startSim(t)
  const session = seeded(sim, full)
  const reply = await fetchImages(sim, full, ['fullFrameFrontID', 'selfie'], sim.paths.imageLinks)
  for (const type of ['fullFrameFrontID', 'selfie'] as ImageType[]) {
    for (const attempt of attemptsOf(session.images, type)) {
      const url = reply.json[`${type}_prevAttempts`][String(attempt.capturedAt)]
      const res = await fetch(url)
      t.equal(res.status, 200, `${type}@${attempt.capturedAt}: 200`)
      t.equal(res.headers.get('content-type'), 'image/jpeg', `${type}@${attempt.capturedAt}: image/jpeg`)
      const bytes = Buffer.from(await res.arrayBuffer())
      t.ok(bytes.equals(attempt.bytes), `${type}@${attempt.capturedAt}: exact bytes`)
    }
  }
})

void t.test('links expire after linkTtlMs; bad signatures are refused', async (t) => {
  const clock = fakeClock()
  const sim = await startSim(t, { now: clock.now, linkTtlMs: 600_000 })
  const reply = await fetchImages(sim, small, ['selfie'], sim.paths.imageLinks)
  const url = new URL(reply.json.selfie)
  t.equal(url.searchParams.get('X-Amz-Expires'), '600', 'X-Amz-Expires is the TTL in seconds')
  t.equal(url.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256', 'the algorithm is named')
  t.equal(url.searchParams.get('X-Amz-SignedHeaders'), 'host', 'signed headers: host')
  t.match(url.searchParams.get('X-Amz-Signature'), /^[0-9a-f]{64}$/, 'the signature is 64 hex chars')

  clock.advance(599_000)
  t.equal((await fetch(url)).status, 200, 'still valid just before the TTL')
  clock.advance(2_000)
  const expired = await fetch(url)
  t.equal(expired.status, 403, 'expired link: 403')
  t.match(await expired.text(), /Request has expired/, 'the body says the request has expired')

  const fresh = new URL((await fetchImages(sim, small, ['selfie'], sim.paths.imageLinks)).json.selfie)
  const badSig = new URL(fresh)
  badSig.searchParams.set('X-Amz-Signature', '0'.repeat(64))
  const bad = await fetch(badSig)
  t.equal(bad.status, 403, 'bad signature: 403')
  t.match(await bad.text(), /SignatureDoesNotMatch/, 'the body says SignatureDoesNotMatch')
  const noSig = new URL(fresh)
  noSig.searchParams.delete('X-Amz-Signature')
  const missing = await fetch(noSig)
  t.equal(missing.status, 403, 'missing signature: 403')
  t.match(await missing.text(), /SignatureDoesNotMatch/, 'missing signature: SignatureDoesNotMatch')
  const longer = new URL(fresh)
  longer.searchParams.set('X-Amz-Expires', '999999')
  t.equal((await fetch(longer)).status, 403, 'a lengthened expiry breaks the signature')
  const otherFile = new URL(fresh)
  otherFile.pathname = otherFile.pathname.replace('/selfie/', '/signature/')
  t.equal((await fetch(otherFile)).status, 403, 'the signature does not transfer to another file')
  t.equal((await fetch(fresh)).status, 200, 'the untouched fresh link works')
  const post = await fetch(fresh, { method: 'POST' })
  t.equal(post.status, 405, 'POST on a file: 405')
})

void t.test('linkSignedAgoMs shows in X-Amz-Date and shortens the link life', async (t) => {
  const clock = fakeClock(Date.UTC(2025, 4, 6, 10, 30, 15))
  const sim = await startSim(t, { now: clock.now, linkSignedAgoMs: 20 * 60_000 })
  const reply = await fetchImages(sim, small, ['signature'], sim.paths.imageLinks)
  const url = new URL(reply.json.signature)
  t.equal(url.searchParams.get('X-Amz-Date'), '20250506T101015Z', 'X-Amz-Date is 20 minutes before hand-out')
  t.equal(url.searchParams.get('X-Amz-Expires'), '3600', 'the default TTL is one hour')
  clock.advance(39 * 60_000)
  t.equal((await fetch(url)).status, 200, 'valid 39 minutes after hand-out')
  clock.advance(2 * 60_000)
  t.equal((await fetch(url)).status, 403, 'expired 41 minutes after hand-out, well before the hour')
})

void t.test('link files need no API key or token and are logged as file calls', async (t) => {
  const sim = await startSim(t)
  const reply = await call(sim, sim.paths.imageLinks, {
    token: sim.sessionToken(small),
    body: { images: ['signature'] },
  })
  sim.resetCalls()
  const res = await fetch(reply.json.signature)
  t.equal(res.status, 200, 'a bare GET works')
  await res.arrayBuffer()
  const calls = sim.callsTo('file')
  t.equal(calls.length, 1, 'one file call logged')
  t.equal(calls[0]?.interviewId, small, 'with the interview')
  t.same(calls[0]?.images, ['signature'], 'and the type')
  t.equal(calls[0]?.responseBytes, latestBytes(sim, small, 'signature').length, 'and the size')
})
