/**
 * Incode failing, held against the document: every operation's answer to Incode's 500, 429 and
 * to a malformed 200 is one the document lists. The drop-in paths pass Incode's own 500 and 429
 * through; a success Incode botched is never passed on as a success (502), the concatenated
 * drop-in paths included.
 */
import t from 'tap'
import { build } from '../helpers/build.js'
import { ContractChecker, operationsOf, type Document } from './document.js'
import { credentials, send, validRequest } from './requests.js'

const FAULTS = [
  { what: 'Incode answers 500', faults: { errorRate: 1, errorStatus: 500 }, v1: 502, dropIn: 500 },
  { what: 'Incode answers 429', faults: { errorRate: 1, errorStatus: 429 }, v1: 503, dropIn: 429 },
  { what: 'Incode answers a 200 that is not JSON', faults: { malformedRate: 1 }, v1: 502, dropIn: 502 },
] as const

for (const { what, faults, v1, dropIn } of FAULTS) {
  t.test(`${what}: every operation answers as documented`, async (t) => {
    // No retries: each call reaches Incode once, and the test does not wait out retry delays.
    // Every operation meets the same fault in turn: the breaker must not open half-way through.
    const harness = await build(t, { env: { RETRY_MAX: '0', BREAKER_FAILURE_THRESHOLD: '1000' } })
    const document = harness.app.swagger() as unknown as Document
    const checker = new ContractChecker(document)
    const known = credentials(harness.simulator)
    harness.simulator.setFaults(faults)
    let called = 0
    for (const operation of operationsOf(document)) {
      // Probes and the cache's DELETE do not call Incode.
      if (operation.doc.security?.length === 0 || operation.method === 'DELETE') continue
      const request = validRequest(document, operation, known)
      if (typeof request === 'string') {
        t.fail(`${operation.id}: ${request}`)
        continue
      }
      const answer = await send(harness.app, request)
      const expected = operation.path.startsWith('/v1/') ? v1 : dropIn
      t.equal(answer.status, expected, `${operation.id}: ${expected}`)
      checker.check(t, operation, answer, what)
      called++
    }
    t.ok(called >= 14, `every operation that calls Incode was called (${called})`)
  })
}
