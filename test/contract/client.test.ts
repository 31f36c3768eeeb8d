/**
 * The README's typed client works against the service over loopback, Incode simulated. That it
 * compiles, and its mistakes do not, is client-compile.slow.ts (a tsc run: 15-20 s of CPU).
 */
import t from 'tap'
import { DEMO_INTERVIEW_ID } from '../../src/schemas.js'
import { build, PARTNER_KEY } from '../helpers/build.js'
import { latestOf, sessionOf } from '../routes/fixtures/helpers.js'
import { partnerCall } from './client-example.js'

t.test('the example client against the service', async (t) => {
  const { url, simulator } = await build(t, { listen: true })
  const view = await partnerCall(url, PARTNER_KEY, DEMO_INTERVIEW_ID)
  const selfie = latestOf(sessionOf(simulator, DEMO_INTERVIEW_ID).images, 'selfie')
  t.ok(selfie && view.selfie?.equals(selfie.bytes), "the selfie's bytes, decoded from base64")
  t.match(view.frontIdLink, /^https?:\/\//, 'a link for the front of the ID')
  t.equal(view.unknownInterviewCode, 'INTERVIEW_NOT_FOUND', "an error's code")
})
