import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { PARTNER_KEY, partnerHeaders } from '../helpers/build.js'
import { NO_REDIS } from '../helpers/redis.js'
import { post, warmSeededSessions } from '../routes/fixtures/helpers.js'
import { at, rawRedis, replicas } from './fixtures/replicas.js'

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS
const TYPES: ImageType[] = ['selfie', 'fullFrameFrontID', 'signature']

const adminLinks = (app: FastifyInstance, interviewId: string, images: ImageType[] = TYPES) =>
  post(app, `/v1/sessions/${interviewId}/image-links`, { images }, partnerHeaders())
const deleteLinks = (app: FastifyInstance, interviewId: string) =>
  app.inject({
    method: 'DELETE',
    url: `/v1/sessions/${interviewId}/image-links`,
    headers: { 'x-api-key': PARTNER_KEY },
  })

t.test(
  'a cold herd spread over 3 replicas makes exactly one upstream links call',
  { skip: NO_REDIS },
  async (t) => {
    // Upstream latency keeps the first load in flight while the others arrive.
    const { apps, simulator } = await replicas(t, 3, {
      simulator: { latency: { fixedMs: 300, perMiBMs: 0 } },
    })
    const answers = await Promise.all(Array.from({ length: 90 }, (_, i) => adminLinks(at(apps, i % 3), full)))
    t.ok(
      answers.every((res) => res.statusCode === 200),
      'every answer is 200',
    )
    const first = answers[0]?.body
    t.equal(answers.filter((res) => res.body === first).length, 90, 'all 90 answers carry the same links')
    t.equal(simulator.callsTo('imageLinks').length, 1, 'exactly one upstream links call for the fleet')
    const after = await Promise.all(apps.map((app) => adminLinks(app, full)))
    t.ok(
      after.every((res) => res.headers['x-cache'] === 'HIT'),
      'afterwards every replica answers HIT',
    )
  },
)

t.test(
  'a crashed holder (lock set, no value): the others fetch once the lock expires',
  { skip: NO_REDIS },
  async (t) => {
    const lockTtlMs = 400
    const { apps, simulator, redis } = await replicas(t, 3, { env: { FLEET_LOCK_POLL_MS: '20' } })
    const store = at(apps, 0).linkDeps.linkStore
    if (!store) throw new Error('fleet mode should be on')
    const raw = rawRedis(t, redis.url)
    // A replica that took the locks and died: nobody will write or release them.
    // All six in one MULTI, so that they expire together: set one by one on a busy machine, they
    // expired milliseconds apart, and a replica claiming in between rightly fetched the expired
    // types alone, then another the rest (two calls, no type fetched twice).
    const lockedAt = Date.now()
    const multi = raw.multi()
    for (const type of TYPES) multi.set(store.lockKey('admin', small, type), 'crashed', 'PX', lockTtlMs)
    await multi.exec()

    const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => adminLinks(at(apps, i % 3), small)))
    t.ok(
      answers.every((res) => res.statusCode === 200),
      'every answer is 200',
    )
    const calls = simulator.callsTo('imageLinks')
    t.equal(calls.length, 1, 'one upstream call in all, once the lock had expired')
    t.ok((calls[0]?.at ?? 0) >= lockedAt + lockTtlMs, 'made after the dead holder’s lock expired, not before')
  },
)

t.test(
  'DELETE on replica A: Redis entries gone, every replica’s L1 dropped, the next request is a MISS',
  { skip: NO_REDIS },
  async (t) => {
    const { apps, simulator, redis } = await replicas(t, 3)
    const [a, b, c] = [at(apps, 0), at(apps, 1), at(apps, 2)]
    const store = a.linkDeps.linkStore
    if (!store) throw new Error('fleet mode should be on')
    const token = simulator.sessionToken(small)
    const tokenLinks = (app: FastifyInstance) =>
      post(
        app,
        '/v1/session/image-links',
        { images: TYPES },
        {
          'content-type': 'application/json',
          'x-incode-session-token': token,
        },
      )
    // Warm every replica's L1 and Redis, in the admin scope and a token's scope.
    for (const app of apps) {
      t.equal((await adminLinks(app, small)).statusCode, 200, 'warming: 200')
      t.equal((await tokenLinks(app)).statusCode, 200, 'warming (token): 200')
    }
    for (const app of apps) t.equal((await adminLinks(app, small)).headers['x-cache'], 'HIT', 'warm: HIT')
    const calls = simulator.callsTo('imageLinks').length
    t.equal(calls, 2, 'one upstream call per scope while warming')

    const res = await deleteLinks(a, small)
    t.equal(res.statusCode, 200, 'DELETE: 200')
    t.equal(res.json().dropped, 6, 'DELETE: the 6 shared entries (2 scopes × 3 types)')
    const raw = rawRedis(t, redis.url)
    t.equal(
      await raw.exists(...TYPES.map((type) => store.valueKey('admin', small, type))),
      0,
      'the admin entries are gone from Redis',
    )
    for (const [name, app] of [
      ['B', b],
      ['C', c],
    ] as const) {
      const slot = { scope: 'admin', interviewId: small }
      t.same(
        app.linkCache.peek(slot, TYPES).misses,
        TYPES,
        `${name}: its L1 entries were dropped before DELETE answered`,
      )
    }
    const next = await adminLinks(b, small)
    t.equal(next.headers['x-cache'], 'MISS', 'B: the next request is a MISS')
    t.equal((await tokenLinks(c)).headers['x-cache'], 'MISS', 'C: the token scope too is a MISS')
    t.equal(simulator.callsTo('imageLinks').length, calls + 2, 'each fetched anew from Incode')
  },
)

t.test(
  'a load in flight during a DELETE does not write its pre-DELETE answer to Redis',
  { skip: NO_REDIS },
  async (t) => {
    const { apps, simulator, redis } = await replicas(t, 2, {
      simulator: { latency: { fixedMs: 1500, perMiBMs: 0 } },
    })
    const [a, b] = [at(apps, 0), at(apps, 1)]
    const store = a.linkDeps.linkStore
    if (!store) throw new Error('fleet mode should be on')
    const raw = rawRedis(t, redis.url)
    const lock = store.lockKey('admin', small, 'selfie')
    const inFlight = adminLinks(b, small, ['selfie'])
    // B holds the lock while its upstream call runs.
    t.ok(await waitUntilAsync(async () => (await raw.exists(lock)) === 1), 'B took the lock')
    t.equal((await deleteLinks(a, small)).statusCode, 200, 'DELETE on A while B loads')
    t.equal((await inFlight).statusCode, 200, 'B still answers its caller')
    t.equal(simulator.callsTo('imageLinks').length, 1, 'one upstream call so far')
    t.equal(
      await raw.exists(store.valueKey('admin', small, 'selfie')),
      0,
      'nothing written to Redis after the DELETE',
    )
    t.equal(await raw.exists(lock), 0, 'and the lock released')
    t.equal(
      (await adminLinks(b, small, ['selfie'])).headers['x-cache'],
      'MISS',
      'B did not keep it in L1 either',
    )
  },
)

t.test('Redis killed mid-way: every request still 200, from Incode or L1', { skip: NO_REDIS }, async (t) => {
  const { apps, redis, simulator } = await replicas(t, 3, { env: { REDIS_BREAKER_RESET_MS: '200' } })
  const [a, b, c] = [at(apps, 0), at(apps, 1), at(apps, 2)]
  t.equal((await adminLinks(a, full)).headers['x-cache'], 'MISS', 'A warms its L1 and Redis')
  t.equal((await adminLinks(b, full)).headers['x-cache'], 'HIT', 'B reads Redis')
  await redis.kill()
  const answers = []
  for (let i = 0; i < 30; i++) {
    const interviewId = i % 2 === 0 ? full : small
    answers.push(await adminLinks(at(apps, i % 3), interviewId))
  }
  t.same(
    answers.filter((res) => res.statusCode !== 200).map((res) => res.statusCode),
    [],
    'no request failed',
  )
  t.equal(answers[0]?.headers['x-cache'], 'HIT', 'A: its own L1 still serves')
  t.equal(answers[2]?.headers['x-cache'], 'MISS', 'C: cold, served from Incode')
  t.equal(answers[7]?.headers['x-cache'], 'HIT', 'B: what it fetched itself without Redis is in its L1')
  // Before: A's one call. Without Redis: B small, C full, A small, C small; all else from L1.
  t.equal(simulator.callsTo('imageLinks').length, 5, 'each replica fetched each interview once')
  t.equal((await deleteLinks(a, full)).statusCode, 200, 'a DELETE without Redis still answers')

  await redis.start()
  // ioredis reconnects by itself; the breaker lets a probe through after its reset time.
  for (const app of apps) {
    const fleet = app.fleet
    t.ok(
      await waitUntilAsync(async () => (await fleet?.run((r) => r.ping())) === 'PONG', 30_000),
      'each replica is back on Redis',
    )
  }
  t.equal((await adminLinks(c, full, ['document'])).headers['x-cache'], 'MISS', 'C writes to Redis again')
  t.equal((await adminLinks(b, full, ['document'])).headers['x-cache'], 'HIT', 'B reads it from Redis again')
})

async function waitUntilAsync(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() >= until) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
