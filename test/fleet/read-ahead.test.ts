import { connect } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { PARTNER_KEY, partnerHeaders } from '../helpers/build.js'
import { NO_REDIS } from '../helpers/redis.js'
import { post, warmSeededSessions } from '../routes/fixtures/helpers.js'
import { linksAhead } from '../../src/services/linkLookup.js'
import { at, rawRedis, replicas } from './fixtures/replicas.js'

// Fleet mode reads Redis for the partner links route as soon as the caller is authenticated and
// counted, before the request's body is read, when the replica holds nothing of the interview:
// the round trip overlaps reading, parsing and validating the body. Each case holds the body back
// on a raw socket and looks at what Redis was asked (INFO commandstats) in between.

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS
const TYPES = ['selfie', 'fullFrameFrontID', 'signature']
const BODY = JSON.stringify({ images: TYPES })
const path = (interviewId: string) => `/v1/sessions/${interviewId}/image-links`

async function mgets(redis: Redis): Promise<number> {
  const text = await redis.info('commandstats')
  return Number(/^cmdstat_mget:calls=(\d+)/m.exec(text)?.[1] ?? 0)
}

/** Polls Redis until `check` holds (a bounded wait on a condition, never a timed assertion). */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  const until = Date.now() + 30_000
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return false
}

interface Answer {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * A request on a raw socket whose head goes out now and whose body goes out on `sendBody()`; the
 * answer may come before the body (a refusal answered ahead of it).
 */
async function heldBody(
  t: Test,
  app: FastifyInstance,
  url: string,
  headers: Record<string, string>,
  body: string,
) {
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('the app is not listening')
  const socket = connect({ host: '127.0.0.1', port: address.port })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  let text = ''
  const answer = new Promise<Answer>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return
      const lines = text.slice(0, end).split('\r\n')
      const found: Record<string, string> = {}
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':')
        found[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      const length = Number(found['content-length'] ?? 0)
      if (text.length - end - 4 < length) return
      resolve({
        status: Number(lines[0]?.split(' ')[1]),
        headers: found,
        body: text.slice(end + 4, end + 4 + length),
      })
    })
  })
  const head = {
    ...headers,
    host: '127.0.0.1',
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  }
  socket.write(
    `POST ${url} HTTP/1.1\r\n` +
      Object.entries(head)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      '\r\n',
  )
  return { answer, sendBody: () => socket.write(body) }
}

async function fleetOfTwo(t: Test, env: Record<string, string> = {}) {
  const { apps, redis, simulator } = await replicas(t, 2, { env })
  const [a, b] = [at(apps, 0), at(apps, 1)]
  await b.listen({ host: '127.0.0.1', port: 0 })
  return { a, b, raw: rawRedis(t, redis.url), simulator }
}

/**
 * Two replicas; A fills Redis for `interviewId` (a MISS); then B gets a request for it whose body
 * is held back, once Redis has been asked (by B's read ahead: nothing else can have asked it).
 */
async function heldOnColdReplica(t: Test, interviewId: string) {
  const fleet = await fleetOfTwo(t)
  const { a, b, raw } = fleet
  const filled = await post(a, path(interviewId), { images: TYPES }, partnerHeaders())
  t.equal(filled.headers['x-cache'], 'MISS', 'A fills Redis')
  const before = await mgets(raw)
  const request = await heldBody(t, b, path(interviewId), { 'x-api-key': PARTNER_KEY }, BODY)
  t.ok(
    await eventually(async () => (await mgets(raw)) > before),
    'B asked Redis with the body still held back',
  )
  return { ...fleet, before, request }
}

t.test(
  'a cold replica reads Redis before the body arrives, and answers from that one read',
  { skip: NO_REDIS },
  async (t) => {
    const { a, b, raw, simulator, before, request } = await heldOnColdReplica(t, small)
    request.sendBody()
    const res = await request.answer
    t.equal(res.status, 200, '200')
    t.equal(res.headers['x-cache'], 'HIT', 'an L2 hit')
    t.equal(res.body, (await post(a, path(small), { images: TYPES }, partnerHeaders())).body, "A's links")
    t.equal((await mgets(raw)) - before, 1, 'one MGET for the request: the read made ahead was used')
    t.equal(simulator.callsTo('imageLinks').length, 1, 'Incode asked once, by A')

    // Now warm in B's L1: nothing is read ahead of the next request, whatever its body.
    const warm = await mgets(raw)
    const again = await heldBody(t, b, path(small), { 'x-api-key': PARTNER_KEY }, BODY)
    again.sendBody()
    t.equal((await again.answer).headers['x-cache'], 'HIT', 'an L1 hit')
    t.equal(await mgets(raw), warm, 'an L1 hit sends Redis nothing')
  },
)

t.test(
  'refused callers make Redis read nothing, nor does a malformed interview ID',
  { skip: NO_REDIS },
  async (t) => {
    const { b, raw } = await fleetOfTwo(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '600000' })
    const before = await mgets(raw)
    for (const [what, headers] of [
      ['no key', {}],
      ['a wrong key', { 'x-api-key': 'not-a-key-0123456789abcdef' }],
    ] as const) {
      // The refusal is answered before the body is read: the route's hooks after auth never ran.
      const refused = await heldBody(t, b, path(full), headers, BODY)
      t.equal((await refused.answer).status, 401, `${what}: 401 with the body held back`)
    }
    // A malformed ID: the read ahead is skipped, validation answers 400 once the body is in.
    const malformed = await heldBody(t, b, path('not%20an%20id'), { 'x-api-key': PARTNER_KEY }, BODY)
    malformed.sendBody()
    t.equal((await malformed.answer).status, 400, 'a malformed interview ID: 400')
    // The key's limit of 2 (the malformed request counted one): one more passes, the next is refused.
    const counted = await heldBody(t, b, path(full), { 'x-api-key': PARTNER_KEY }, '{"images": 7}')
    counted.sendBody()
    t.equal((await counted.answer).status, 400, 'an invalid body after the read ahead: 400, not a 5xx')
    t.equal(
      (await mgets(raw)) - before,
      1,
      'only the authenticated, counted request with a valid ID read Redis',
    )
    const limited = await heldBody(t, b, path(full), { 'x-api-key': PARTNER_KEY }, BODY)
    t.equal((await limited.answer).status, 429, 'over the limit: 429 with the body held back')
    t.equal((await mgets(raw)) - before, 1, 'a rate-limited request read nothing')
  },
)

t.test(
  'a DELETE between the read ahead and the body: the answer is not kept in L1, the next one is a MISS',
  { skip: NO_REDIS },
  async (t) => {
    const { b, simulator, request } = await heldOnColdReplica(t, full)
    const dropped = await b.inject({
      method: 'DELETE',
      url: path(full),
      headers: { 'x-api-key': PARTNER_KEY },
    })
    t.equal(dropped.statusCode, 200, 'DELETE on B: 200')
    request.sendBody()
    const res = await request.answer
    // The request began before the DELETE ended: answered from what it read, as any request that
    // read Redis just before a DELETE is.
    t.equal(res.status, 200, 'the held request: 200')
    const next = await post(b, path(full), { images: TYPES }, partnerHeaders())
    t.equal(
      next.headers['x-cache'],
      'MISS',
      'the next request on B: MISS (nothing read before the DELETE was kept)',
    )
    t.equal(simulator.callsTo('imageLinks').length, 2, 'Incode asked again after the DELETE')
  },
)

t.test(
  'requests arriving together on a cold replica share one read ahead, unless an invalidation came between',
  { skip: NO_REDIS },
  async (t) => {
    const { a, b, raw } = await fleetOfTwo(t)
    t.equal(
      (await post(a, path(full), { images: TYPES }, partnerHeaders())).headers['x-cache'],
      'MISS',
      'A fills Redis',
    )
    const caller = { kind: 'admin', interviewId: full } as const
    const before = await mgets(raw)
    const first = linksAhead(b.linkDeps, caller)
    const second = linksAhead(b.linkDeps, caller)
    t.ok(first, 'a cold replica reads ahead')
    t.equal(second?.fetched, first?.fetched, 'the second request shares the read in flight')
    b.linkDeps.linkCache.invalidate(small)
    const third = linksAhead(b.linkDeps, caller)
    t.not(third?.fetched, first?.fetched, 'after an invalidation (any interview) a read of its own')
    await Promise.all([first?.fetched, third?.fetched])
    t.equal((await mgets(raw)) - before, 2, 'two MGETs for the three')
    const fourth = linksAhead(b.linkDeps, caller)
    t.not(fourth?.fetched, third?.fetched, 'once answered, a read is not shared any more')
    await fourth?.fetched
  },
)
