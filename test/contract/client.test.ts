/**
 * The README's typed client: it compiles against the generated types (its mistakes do not: each
 * `@ts-expect-error` line in client-example.ts must be an error, or tsc fails), and it works
 * against the service over loopback, Incode simulated.
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { DEMO_INTERVIEW_ID } from '../../src/schemas.js'
import { build, PARTNER_KEY } from '../helpers/build.js'
import { latestOf, sessionOf } from '../routes/fixtures/helpers.js'
import { partnerCall } from './client-example.js'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const project = fileURLToPath(new URL('tsconfig.client.json', import.meta.url))

t.test('the example client compiles, and its mistakes do not', async (t) => {
  const run = await promisify(execFile)(process.execPath, [tsc, '-p', project], {
    encoding: 'utf8',
  }).then(
    () => ({ code: 0, output: '' }),
    (err: unknown) => {
      const failed = err as { code?: number; stdout?: string }
      return { code: failed.code ?? 1, output: failed.stdout ?? '' }
    },
  )
  t.equal(run.code, 0, `tsc accepts client-example.ts, every @ts-expect-error an error:\n${run.output}`)
})

t.test('the example client against the service', async (t) => {
  const { url, simulator } = await build(t, { listen: true })
  const view = await partnerCall(url, PARTNER_KEY, DEMO_INTERVIEW_ID)
  const selfie = latestOf(sessionOf(simulator, DEMO_INTERVIEW_ID).images, 'selfie')
  t.ok(selfie && view.selfie?.equals(selfie.bytes), "the selfie's bytes, decoded from base64")
  t.match(view.frontIdLink, /^https?:\/\//, 'a link for the front of the ID')
  t.equal(view.unknownInterviewCode, 'INTERVIEW_NOT_FOUND', "an error's code")
})
