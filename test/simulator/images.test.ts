import t from 'tap'

import {
  base64Length,
  IMAGE_TYPES,
  INCODE_RESPONSE_CAP_BYTES,
  type ImageType,
} from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import {
  assertIncodeError,
  attemptsOf,
  call,
  fetchImages,
  lastAttempt,
  seeded,
  startSim,
} from './fixtures/helpers.js'

const { full, small, empty } = SEEDED_INTERVIEW_IDS

void t.test('base64 answers are byte-identical to the latest seeded attempt', async (t) => {
  const sim = await startSim(t)
  const session = seeded(sim, small)
  const types = Object.keys(session.images)
  const reply = await fetchImages(sim, small, types)
  t.equal(reply.status, 200, 'the small session answers 200')
  t.equal(reply.headers.get('content-type')?.split(';')[0], 'application/json', 'the answer is JSON')
  t.match(reply.headers.get('processing-time'), /^\d+$/, 'Processing-Time is an integer number of ms')
  t.same(Object.keys(reply.json), types, 'one key per requested type, in request order')
  for (const type of types) {
    const latest = lastAttempt(attemptsOf(session.images, type as ImageType))
    t.notOk(reply.json[type].startsWith('data:'), `${type} has no data: prefix`)
    t.ok(Buffer.from(reply.json[type], 'base64').equals(latest.bytes), `${type} decodes to the seeded bytes`)
  }
})

void t.test('only the latest attempt is returned', async (t) => {
  const sim = await startSim(t)
  const selfies = attemptsOf(seeded(sim, full).images, 'selfie')
  t.ok(selfies.length >= 2, 'the full session has several selfie attempts')
  const reply = await fetchImages(sim, full, ['selfie'])
  const got = Buffer.from(reply.json.selfie, 'base64')
  t.ok(got.equals(lastAttempt(selfies).bytes), 'the answer is the last attempt')
  t.notOk(got.equals(selfies[0]?.bytes ?? Buffer.alloc(0)), 'not the first one')
})

void t.test('duplicates are answered once; admin tokens work with id', async (t) => {
  const sim = await startSim(t)
  const reply = await call(sim, `${sim.paths.images}?id=${small}`, {
    token: sim.adminToken(),
    body: { images: ['signature', 'signature', 'selfie'] },
  })
  t.equal(reply.status, 200, 'admin token with id answers 200')
  t.same(Object.keys(reply.json), ['signature', 'selfie'], 'each type appears once')
})

void t.test('missing types follow missingAs', async (t) => {
  const wanted = ['selfie', 'fullFrameBackID', 'document']
  const expectations = [
    { missingAs: undefined, value: null, present: true, label: 'default (null)' },
    { missingAs: 'null' as const, value: null, present: true, label: 'null' },
    { missingAs: 'empty' as const, value: '', present: true, label: 'empty' },
    { missingAs: 'omit' as const, value: undefined, present: false, label: 'omit' },
  ]
  for (const e of expectations) {
    const sim = await startSim(t, e.missingAs ? { missingAs: e.missingAs } : {})
    const reply = await fetchImages(sim, small, wanted)
    t.equal(reply.status, 200, `${e.label}: 200`)
    t.type(reply.json.selfie, 'string', `${e.label}: the present type is a string`)
    for (const type of ['fullFrameBackID', 'document']) {
      t.equal(type in reply.json, e.present, `${e.label}: ${type} key ${e.present ? 'present' : 'absent'}`)
      t.equal(reply.json[type], e.value, `${e.label}: ${type} is ${JSON.stringify(e.value)}`)
    }
    const none = await fetchImages(sim, empty, ['selfie'])
    t.equal(none.status, 200, `${e.label}: the empty session answers 200`)
    t.same(none.json, e.present ? { selfie: e.value } : {}, `${e.label}: the empty session has nothing`)
  }
})

void t.test('an answer over the cap is a 502; a subset under it is a 200', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.images
  const all = await fetchImages(sim, full, [...IMAGE_TYPES])
  assertIncodeError(t, all, 502, path, 'all types of the full session')
  t.equal(all.json.error, 'Bad Gateway', 'the error is Bad Gateway')
  t.ok(all.bytes.length < 10_000, 'the big body is not sent')
  const session = seeded(sim, full)
  const total = Object.values(session.images).reduce(
    (n, a) => n + base64Length(lastAttempt(a).bytes.length),
    0,
  )
  t.ok(total > INCODE_RESPONSE_CAP_BYTES, 'the full session is over the cap as base64')

  const ids = await fetchImages(sim, full, ['fullFrameFrontID', 'fullFrameBackID'])
  t.equal(ids.status, 200, 'front and back ID together are under the cap')
  t.ok(ids.bytes.length <= INCODE_RESPONSE_CAP_BYTES, 'the answer is within the cap')
  t.ok(ids.bytes.length > 5_000_000, 'and it is a big answer')

  const capped = await startSim(t, { responseCapBytes: 100_000 })
  const selfie = await fetchImages(capped, small, ['selfie'])
  assertIncodeError(t, selfie, 502, path, 'a custom cap')
  const signature = await fetchImages(capped, small, ['signature'])
  t.equal(signature.status, 200, 'an answer under a custom cap is 200')
})
