import t from 'tap'

import { SECOND_ID_IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import {
  assertIncodeError,
  attemptsOf,
  call,
  fetchImages,
  lastAttempt,
  latestBytes,
  seeded,
  startSim,
} from './fixtures/helpers.js'

const { secondId, small } = SEEDED_INTERVIEW_IDS

void t.test('second-ID images come from the second document', async (t) => {
  const sim = await startSim(t)
  const session = seeded(sim, secondId)
  t.ok(session.secondId, 'the seeded session has a second ID')
  const reply = await fetchImages(
    sim,
    secondId,
    [...SECOND_ID_IMAGE_TYPES, 'selfie'],
    sim.paths.secondIdImages,
  )
  t.equal(reply.status, 200, 'answers 200')
  for (const type of SECOND_ID_IMAGE_TYPES) {
    const latest = lastAttempt(attemptsOf(session.secondId, type))
    t.ok(
      Buffer.from(reply.json[type], 'base64').equals(latest.bytes),
      `${type} is the second document's image`,
    )
  }
  t.notOk(
    Buffer.from(reply.json.fullFrameFrontID, 'base64').equals(latestBytes(sim, secondId, 'fullFrameFrontID')),
    'the second front ID differs from the first',
  )
  t.equal(reply.json.selfie, null, 'a type the second document lacks is missing (null)')

  const first = await fetchImages(sim, secondId, ['fullFrameFrontID'])
  t.ok(
    Buffer.from(first.json.fullFrameFrontID, 'base64').equals(latestBytes(sim, secondId, 'fullFrameFrontID')),
    'the plain endpoint still answers the first document',
  )
})

void t.test('a session without a second ID answers every type missing', async (t) => {
  const sim = await startSim(t, { missingAs: 'empty' })
  const reply = await fetchImages(
    sim,
    small,
    ['fullFrameFrontID', 'croppedSecondIDFace'],
    sim.paths.secondIdImages,
  )
  t.equal(reply.status, 200, 'answers 200')
  t.same(reply.json, { fullFrameFrontID: '', croppedSecondIDFace: '' }, 'every type is missing (empty)')
  const zero = await call(sim, `/0${sim.paths.secondIdImages}`, {
    apiKey: null,
    token: sim.sessionToken(secondId),
    body: { images: ['croppedSecondIDFace'] },
  })
  t.equal(zero.status, 200, 'the /0 form answers with a session token')
  t.type(zero.json.croppedSecondIDFace, 'string', 'with the second-ID face')
  const capped = await startSim(t, { responseCapBytes: 1_000_000 })
  const big = await fetchImages(capped, secondId, ['fullFrameFrontID'], capped.paths.secondIdImages)
  assertIncodeError(t, big, 502, capped.paths.secondIdImages, 'second-ID answer over the cap')
})
