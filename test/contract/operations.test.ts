/**
 * The contract, held against the running service: every operation of the generated document is
 * called with its documented example (which must work against the demo's seeded sessions) and
 * with requests the document says are refused; every answer's status, media type, headers and
 * body must be what the document lists. The operations come from the document, so a route added
 * later is called too, or fails here if the document does not say enough to call it.
 */
import t, { type Test } from 'tap'
import { build, type Harness } from '../helpers/build.js'
import { ContractChecker, operationsOf, type Answer, type Document, type Operation } from './document.js'
import { credentials, invalidCases, send, validRequest, type Request } from './requests.js'

/**
 * Operations with no request a caller can get wrong (no credential, parameter or body), each with
 * why. Every other operation must be refused at least once.
 */
const NOTHING_TO_GET_WRONG: Record<string, string> = {
  getLiveness: 'a probe: no credential, parameter or body',
  getReadiness: 'a probe: no credential, parameter or body',
}

/** Further cases the generic ones do not cover, by operationId: behaviour the document states. */
const STATED: Record<string, { name: string; change: (r: Request) => Request; status: number }[]> = {}
const noBody = (request: Request): Request => {
  const { 'content-type': _type, ...headers } = request.headers
  return { method: request.method, url: request.url, headers }
}
for (const id of [
  'getSessionConcatenatedImage',
  'incodeGetConcatenatedImages',
  'incodeGetConcatenatedImagesZero',
]) {
  STATED[id] = [{ name: 'no body (documented as optional)', change: noBody, status: 200 }]
}

/**
 * What a /v1 example must show a person pressing Execute in Swagger UI: some image, and a link
 * for every type a links example asks for (a 200 with everything missing works, but shows nothing).
 */
function exampleShows(t: Test, operation: Operation, request: Request, answer: Answer): void {
  if (!operation.path.startsWith('/v1/') || answer.status !== 200) return
  if (!String(answer.headers['content-type']).startsWith('application/json')) return
  const body = JSON.parse(answer.body) as { images?: Record<string, { url?: unknown } | string> }
  if (body.images === undefined) return
  const asked = (JSON.parse(request.payload ?? '{}') as { images?: string[] }).images ?? []
  if (/Links$/.test(operation.id)) {
    t.same(
      asked.filter((type) => typeof (body.images?.[type] as { url?: unknown } | undefined)?.url !== 'string'),
      [],
      `${operation.id}: the example's every type has a link`,
    )
  } else {
    t.ok(Object.keys(body.images).length > 0, `${operation.id}: the example serves images`)
  }
}

async function documentOf(harness: Harness): Promise<{ document: Document; operations: Operation[] }> {
  const document = harness.app.swagger() as unknown as Document
  return { document, operations: operationsOf(document) }
}

t.test('every operation: its example works, refusals are the documented ones', async (t) => {
  const harness = await build(t)
  const { document, operations } = await documentOf(harness)
  const checker = new ContractChecker(document)
  const known = credentials(harness.simulator)
  t.ok(operations.length >= 17, `the document lists every operation (${operations.length})`)

  for (const operation of operations) {
    t.ok(operation.doc.operationId, `${operation.method} ${operation.path} has an operationId`)
    t.ok(operation.doc.description, `${operation.id} has a description`)
    for (const [status, response] of Object.entries(operation.doc.responses)) {
      t.not(response.description, 'Default Response', `${operation.id} ${status} has its own description`)
    }

    const valid = validRequest(document, operation, known)
    if (typeof valid === 'string') {
      t.fail(`${operation.id} can be called from the document alone: ${valid}`)
      continue
    }
    const answer = await send(harness.app, valid)
    t.ok(
      answer.status >= 200 && answer.status < 300,
      `${operation.id}: the documented example succeeds (${answer.status})`,
    )
    checker.check(t, operation, answer, 'the documented example')
    exampleShows(t, operation, valid, answer)

    const cases = invalidCases(document, operation, valid, {
      bodyLimitBytes: harness.config.BODY_LIMIT_BYTES,
    })
    const why = NOTHING_TO_GET_WRONG[operation.id]
    if (why === undefined) {
      t.ok(cases.length > 0, `${operation.id} is called with invalid requests`)
    } else {
      t.equal(cases.length, 0, `${operation.id} has nothing to get wrong (${why})`)
    }
    for (const { name, request, status } of cases) {
      const refused = await send(harness.app, request)
      t.equal(refused.status, status, `${operation.id}, ${name}: ${status}`)
      checker.check(t, operation, refused, name)
    }
    for (const { name, change, status } of STATED[operation.id] ?? []) {
      const stated = await send(harness.app, change(valid))
      t.equal(stated.status, status, `${operation.id}, ${name}: ${status}`)
      checker.check(t, operation, stated, name)
    }
  }
  for (const id of [...Object.keys(NOTHING_TO_GET_WRONG), ...Object.keys(STATED)]) {
    t.ok(
      operations.some((operation) => operation.id === id),
      `${id}, named by this test, is in the document`,
    )
  }
})

t.test('an unknown interview: 404, documented, and saying so', async (t) => {
  const harness = await build(t)
  const { document, operations } = await documentOf(harness)
  const checker = new ContractChecker(document)
  const unknown = '662f1a3b9c4e5d6f7a8b9cff'
  const byId = operations.filter(
    (operation) =>
      operation.method === 'POST' &&
      (operation.doc.parameters ?? []).some((parameter) => parameter.name === 'interviewId'),
  )
  t.ok(byId.length >= 4, 'interview-ID operations found')
  for (const operation of byId) {
    const request = validRequest(document, operation, credentials(harness.simulator), {
      interviewId: unknown,
    })
    if (typeof request === 'string') {
      t.fail(`${operation.id}: ${request}`)
      continue
    }
    const answer = await send(harness.app, request)
    t.equal(answer.status, 404, `${operation.id}: 404`)
    checker.check(t, operation, answer, 'an unknown interview')
    const problem = JSON.parse(answer.body) as { code: string; detail: string }
    if (operation.id !== 'getSessionConcatenatedImage') {
      t.equal(problem.code, 'INTERVIEW_NOT_FOUND', `${operation.id}: the code says the interview is unknown`)
      t.match(problem.detail, /^Interview not found/, `${operation.id}: so does the detail`)
    } else {
      // Incode's concatenated endpoint answers 404 for a known interview without images too.
      t.match(
        problem.detail,
        /no interview with this ID/,
        `${operation.id}: the detail names the unknown interview`,
      )
    }
  }
})

t.test('rate limited: 429 answers are documented on every limited operation', async (t) => {
  const harness = await build(t, { env: { RATE_LIMIT_MAX: '1' } })
  const { document, operations } = await documentOf(harness)
  const checker = new ContractChecker(document)
  const known = credentials(harness.simulator)
  for (const operation of operations) {
    const valid = validRequest(document, operation, known)
    if (typeof valid === 'string') {
      t.fail(`${operation.id}: ${valid}`)
      continue
    }
    // A caller's first calls may count against other buckets (its address, then its token once
    // Incode accepted it, see plugins/external/limits.ts): a few calls, bounded, reach the limit.
    let again = await send(harness.app, valid)
    for (let calls = 1; calls < 4 && again.status !== 429; calls++) again = await send(harness.app, valid)
    if (operation.doc.security?.length === 0) {
      t.not(again.status, 429, `${operation.id}: probes are not rate limited`)
      continue
    }
    t.equal(again.status, 429, `${operation.id}: over the limit, 429`)
    t.ok(again.headers['retry-after'], `${operation.id}: 429 says when to retry`)
    checker.check(t, operation, again, 'over the rate limit')
  }
})

t.test('a conditional request: 304 with no body, as documented', async (t) => {
  const harness = await build(t)
  const { document, operations } = await documentOf(harness)
  const checker = new ContractChecker(document)
  const conditional = operations.filter((operation) =>
    (operation.doc.parameters ?? []).some((parameter) => parameter.name.toLowerCase() === 'if-none-match'),
  )
  t.ok(conditional.length >= 2, `operations taking If-None-Match found (${conditional.length})`)
  for (const operation of conditional) {
    const valid = validRequest(document, operation, credentials(harness.simulator))
    if (typeof valid === 'string') {
      t.fail(`${operation.id}: ${valid}`)
      continue
    }
    const { 'if-none-match': _example, ...headers } = valid.headers
    const first = await send(harness.app, { ...valid, headers })
    t.equal(first.status, 200, `${operation.id}: 200 first`)
    const etag = String(first.headers.etag)
    const again = await send(harness.app, { ...valid, headers: { ...headers, 'if-none-match': etag } })
    t.equal(again.status, 304, `${operation.id}: If-None-Match with its ETag, 304`)
    checker.check(t, operation, again, 'If-None-Match with the current ETag')
  }
})

t.test('every documented JSON answer has an example, and the example matches its schema', async (t) => {
  const harness = await build(t)
  const { document, operations } = await documentOf(harness)
  const checker = new ContractChecker(document)
  let checked = 0
  for (const operation of operations) {
    for (const [status, response] of Object.entries(operation.doc.responses)) {
      for (const [mediaType, media] of Object.entries(response.content ?? {})) {
        // Bytes (the JPEG answers) have no example a document can hold.
        if (!/json$/.test(mediaType)) continue
        const where = `${operation.id} ${status} ${mediaType}`
        if (media.example === undefined) {
          t.fail(`${where} has an example`)
          continue
        }
        checker.checkExample(t, where, media)
        checked++
      }
    }
  }
  t.ok(checked > 100, `${checked} examples checked`)
})
