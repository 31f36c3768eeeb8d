import t from 'tap'

import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { call, fakeClock, fetchImages, startSim } from './fixtures/helpers.js'

const { small, full } = SEEDED_INTERVIEW_IDS

void t.test(
  'every request is logged with endpoint, interview, images, token kind, status and size',
  async (t) => {
    const clock = fakeClock()
    const sim = await startSim(t, { now: clock.now })
    const a = await fetchImages(sim, small, ['selfie', 'signature'])
    clock.advance(1000)
    const b = await call(sim, `${sim.paths.imageLinks}?id=${full}`, {
      token: sim.adminToken(),
      body: { images: ['selfie'] },
    })
    await call(sim, '/nowhere', { body: {} })
    await call(sim, `/0${sim.paths.images}`, { apiKey: null, body: { images: ['selfie'] } })
    await call(sim, sim.paths.start, { body: { interviewId: small } })

    t.equal(sim.calls.length, 5, 'five calls logged')
    const [first, second, third, fourth, fifth] = sim.calls
    t.same(
      first,
      {
        endpoint: 'images',
        method: 'POST',
        path: sim.paths.images,
        interviewId: small,
        images: ['selfie', 'signature'],
        tokenKind: 'session',
        status: 200,
        responseBytes: a.bytes.length,
        at: clock.now() - 1000,
      },
      'the first call in full',
    )
    t.equal(second?.endpoint, 'imageLinks', 'the second is a links call')
    t.equal(second?.tokenKind, 'admin', 'made with an admin token')
    t.equal(second?.interviewId, full, 'for the full session')
    t.equal(second?.responseBytes, b.bytes.length, 'its size is logged')
    t.equal(second?.at, clock.now(), 'at follows the injected clock')
    t.equal(third?.endpoint, 'unknown', 'an unknown path is logged as unknown')
    t.equal(third?.status, 404, 'with its 404')
    t.equal(fourth?.status, 401, 'a refused call is logged with its status')
    t.same(fourth?.images, ['selfie'], 'and the images it asked for')
    t.equal(fifth?.endpoint, 'start', 'start is logged')
    t.equal(fifth?.interviewId, small, 'with the interview it opened')

    t.equal(sim.callsTo('images').length, 2, 'callsTo filters by endpoint (including /0 calls)')
    sim.resetCalls()
    t.equal(sim.calls.length, 0, 'resetCalls empties the log')
    await fetchImages(sim, small, ['signature'])
    t.equal(sim.calls.length, 1, 'logging goes on after a reset')
  },
)

void t.test('many calls are counted', async (t) => {
  const sim = await startSim(t)
  await Promise.all(Array.from({ length: 12 }, () => fetchImages(sim, small, ['signature', 'croppedFace'])))
  const calls = sim.callsTo('images')
  t.equal(calls.length, 12, 'twelve concurrent calls logged')
  t.ok(
    calls.every((c) => c.status === 200 && c.images?.join() === 'signature,croppedFace'),
    'each with its status and images',
  )
})
