import t from 'tap'
import { UpstreamStatusError } from '../../src/errors.js'
import {
  dropInPassThrough,
  upstreamStatusAnswer,
  type Credential,
  type UpstreamStatusFacts,
} from '../../src/upstreamAnswers.js'

const incodeBody = { timestamp: 1, status: 403, error: 'Forbidden', message: 'Access denied', path: '/omni' }

function facts(status: number, credential: Credential, body: unknown = incodeBody): UpstreamStatusFacts {
  return { status, body, endpoint: credential === 'service-key/login' ? 'adminLogin' : 'images', credential }
}

void t.test("one mapper: Incode's status and the credential used decide the answer", async (t) => {
  // [Incode's status, credential, this service's status]
  const table: [number, Credential, number][] = [
    [400, 'caller-token', 400],
    [400, 'admin-token', 400],
    [401, 'caller-token', 401],
    [401, 'admin-token', 502],
    [403, 'caller-token', 403],
    [403, 'admin-token', 502],
    [404, 'caller-token', 404],
    [404, 'admin-token', 404],
    [413, 'admin-token', 413],
    [429, 'caller-token', 503],
    [500, 'admin-token', 502],
    [502, 'caller-token', 502],
    [503, 'admin-token', 503],
    [504, 'caller-token', 504],
    [418, 'caller-token', 502],
    [401, 'service-key/login', 502],
    [403, 'service-key/login', 502],
    [500, 'service-key/login', 502],
  ]
  for (const [status, credential, expected] of table) {
    const answer = upstreamStatusAnswer(facts(status, credential))
    t.equal(answer.status, expected, `Incode ${status} with the ${credential} → ${expected}`)
    const code = status === 404 ? 'INTERVIEW_NOT_FOUND' : `UPSTREAM_${status}`
    t.equal(answer.code, code, `Incode ${status} with the ${credential}: the code names it`)
  }
})

void t.test('a 404 on an interview endpoint says the interview was not found', async (t) => {
  for (const endpoint of ['images', 'imageLinks', 'secondIdImages']) {
    for (const credential of ['caller-token', 'admin-token'] as const) {
      const answer = upstreamStatusAnswer({ status: 404, body: incodeBody, endpoint, credential })
      t.equal(answer.code, 'INTERVIEW_NOT_FOUND', `${endpoint}, ${credential}: the code says not found`)
      t.match(answer.message, /^Interview not found/, `${endpoint}, ${credential}: so does the detail`)
    }
  }
  // Incode's concatenated endpoint also answers 404 for a known interview without images.
  const concatenated = upstreamStatusAnswer({
    status: 404,
    body: incodeBody,
    endpoint: 'concatenatedImages',
    credential: 'admin-token',
  })
  t.equal(concatenated.code, 'UPSTREAM_404', 'the concatenated endpoint keeps the general code')
  t.match(
    concatenated.message,
    /^Not found: Incode knows no interview with this ID, or it holds none of the images to combine/,
    'the concatenated detail says what its 404 means, not that Incode failed',
  )
})

void t.test('the messages name the endpoint, or the failed log-in', async (t) => {
  t.equal(
    upstreamStatusAnswer(facts(500, 'admin-token')).message,
    'Incode answered 500 on images',
    'endpoint',
  )
  t.equal(
    upstreamStatusAnswer(facts(401, 'service-key/login')).message,
    'Incode admin log-in failed with status 401',
    'log-in',
  )
})

void t.test('400, 401, 403 and 404 concern the whole request; the others one part of it', async (t) => {
  for (const status of [400, 401, 403, 404]) {
    t.ok(upstreamStatusAnswer(facts(status, 'caller-token')).wholeRequest, `${status}: the whole request`)
  }
  for (const status of [413, 429, 500, 502, 503, 504]) {
    t.notOk(upstreamStatusAnswer(facts(status, 'caller-token')).wholeRequest, `${status}: one part`)
  }
})

void t.test('UpstreamStatusError carries the facts and takes its answer from the mapper', async (t) => {
  const err = new UpstreamStatusError(facts(403, 'admin-token'))
  t.match(
    err,
    {
      statusCode: 502,
      code: 'UPSTREAM_403',
      upstreamStatus: 403,
      upstreamBody: incodeBody,
      wholeRequest: true,
    },
    "the service's own credentials failing: 502, Incode's facts kept",
  )
  t.match(
    err.facts,
    { endpoint: 'images', credential: 'admin-token' },
    'the endpoint and credential are kept',
  )
})

void t.test("drop-in paths pass Incode's own error answer on for the caller's token only", async (t) => {
  t.same(
    dropInPassThrough(facts(403, 'caller-token')),
    { status: 403, body: incodeBody },
    "Incode's status and body, as it gave them",
  )
  t.equal(dropInPassThrough(facts(502, 'caller-token', '<html>bad gateway</html>')), undefined, 'not a page')
  t.equal(dropInPassThrough(facts(403, 'admin-token')), undefined, "not the service's own credentials")
  t.equal(dropInPassThrough(facts(500, 'service-key/login')), undefined, 'not a failed log-in')
})
