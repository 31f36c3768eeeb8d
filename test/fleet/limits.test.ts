import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { replicas } from './fixtures/replicas.js'
import { partnerHeaders } from '../helpers/build.js'
import { NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js'

/** Three cold apps (replicas) on one simulator and the test's Redis (fixtures/replicas.ts). */
const fleetOfThree = (t: Test, redis: RedisServer, env: Record<string, string> = {}) =>
  // A busy test machine must not make Redis look slow: these tests are about sharing.
  replicas(t, 3, { redis, env: { REDIS_COMMAND_TIMEOUT_MS: '5000', ...env } })

function app(apps: FastifyInstance[], i: number): FastifyInstance {
  const found = apps[i % apps.length]
  if (!found) throw new Error('no app')
  return found
}

const links = (target: FastifyInstance, interviewId: string = SEEDED_INTERVIEW_IDS.small) =>
  target.inject({
    method: 'POST',
    url: `/v1/sessions/${interviewId}/image-links`,
    headers: partnerHeaders(),
    payload: { images: ['selfie'] },
  })

/** Counts answers by status. */
function tally(statuses: number[]): Map<number, number> {
  const counts = new Map<number, number>()
  for (const status of statuses) counts.set(status, (counts.get(status) ?? 0) + 1)
  return counts
}

t.test(
  'rate limit N per window over 3 replicas: 3N requests spread over them are served N times',
  { skip: NO_REDIS },
  async (t) => {
    const N = 6
    const redis = await startRedis(t)
    const { apps } = await fleetOfThree(t, redis, {
      RATE_LIMIT_MAX: String(N),
      RATE_LIMIT_WINDOW_MS: '600000',
    })
    const statuses: number[] = []
    // One after another, round-robin, so that each replica alone stays well under N.
    for (let i = 0; i < 3 * N; i++) statuses.push((await links(app(apps, i))).statusCode)
    const counts = tally(statuses)
    t.equal(counts.get(200), N, `N (${N}) of 3N requests are served (${JSON.stringify([...counts])})`)
    t.equal(counts.get(429), 2 * N, 'the other 2N are refused with 429')

    const raw = new Redis(redis.url)
    t.teardown(() => raw.disconnect())
    const keys = await raw.keys('*rate-limit*')
    t.ok(keys.length > 0, 'the counts are in Redis')
    t.notOk(
      keys.some((key) => /partner|test-partner|127\.0\.0\.1|token:/.test(key)),
      `no rate-limit key names the caller (${keys.join(', ')})`,
    )
  },
)

t.test(
  'Redis killed: local limits apply in each replica, and no request fails',
  { skip: NO_REDIS },
  async (t) => {
    const N = 5
    const redis = await startRedis(t)
    const { apps } = await fleetOfThree(t, redis, {
      RATE_LIMIT_MAX: String(N),
      RATE_LIMIT_WINDOW_MS: '600000',
      REDIS_BREAKER_RESET_MS: '600000',
    })
    // Warm the seeded session's links in every replica, within the limit (N ≥ 3).
    for (let i = 0; i < 3; i++) t.equal((await links(app(apps, i))).statusCode, 200, `warm-up ${i + 1}: 200`)
    await redis.kill()

    // Each replica now counts on its own: 2N more requests on each, N of them already spent in
    // Redis but only one in the replica's own count.
    const byReplica: Map<number, number>[] = []
    for (let r = 0; r < 3; r++) {
      const statuses: number[] = []
      for (let i = 0; i < 2 * N; i++) statuses.push((await links(app(apps, r))).statusCode)
      byReplica.push(tally(statuses))
    }
    for (const [r, counts] of byReplica.entries()) {
      t.same(
        [...counts.keys()].sort(),
        [200, 429],
        `replica ${r + 1}: only 200s and 429s (${JSON.stringify([...counts])})`,
      )
      t.equal(counts.get(200), N - 1, `replica ${r + 1}: its local limit (N, one spent before) holds`)
    }
    for (const a of apps) t.ok(a.fleet?.degraded, 'each replica says it runs on local state')
  },
)

t.test(
  'upstream budget shared: 3 replicas together stay within the fleet-wide budget',
  { skip: NO_REDIS },
  async (t) => {
    const RATE = 4
    const PER_REPLICA = 2 * RATE
    const redis = await startRedis(t)
    const { apps, simulator } = await fleetOfThree(t, redis, {
      UPSTREAM_RATE_PER_SEC: String(RATE),
      REQUEST_DEADLINE_MS: '60000',
    })
    simulator.resetCalls()
    // Cold links for distinct interviews (unknown ones too: each is one upstream call).
    const answers = await Promise.all(
      Array.from({ length: 3 * PER_REPLICA }, (_, i) =>
        links(app(apps, i), randomBytes(12).toString('hex')).then((res) => res.statusCode),
      ),
    )
    t.notOk(
      answers.some((status) => status >= 500),
      `no request failed (${JSON.stringify([...tally(answers)])})`,
    )
    const arrivals = simulator
      .callsTo('imageLinks')
      .map((call) => call.at)
      .sort((a, b) => a - b)
    t.equal(arrivals.length, 3 * PER_REPLICA, 'every request made its one upstream call')
    // Windows of one second in Redis: any second of time overlaps at most two of them.
    let busiest = 0
    for (const [i, at] of arrivals.entries()) {
      busiest = Math.max(busiest, arrivals.slice(i).filter((later) => later < at + 1000).length)
    }
    t.ok(
      busiest <= 2 * RATE,
      `at most 2 × ${RATE} calls in any second (busiest: ${busiest}); each replica alone spaces at ${RATE}/s`,
    )
    const first = arrivals[0] ?? 0
    const last = arrivals.at(-1) ?? 0
    const windows = Math.ceil((last - first + 1) / 1000)
    t.ok(
      arrivals.length <= RATE * (windows + 1),
      `${arrivals.length} calls over ${last - first} ms fit ${RATE} per second`,
    )
  },
)

t.test(
  'Redis down: the upstream budget falls back to each replica, and calls go on',
  { skip: NO_REDIS },
  async (t) => {
    const RATE = 5
    const redis = await startRedis(t)
    const { apps, simulator } = await fleetOfThree(t, redis, {
      UPSTREAM_RATE_PER_SEC: String(RATE),
      REQUEST_DEADLINE_MS: '60000',
    })
    await redis.kill()
    simulator.resetCalls()
    const answers = await Promise.all(
      Array.from({ length: 3 * RATE }, (_, i) =>
        links(app(apps, i), randomBytes(12).toString('hex')).then((res) => res.statusCode),
      ),
    )
    t.notOk(
      answers.some((status) => status >= 500),
      `no request failed (${JSON.stringify([...tally(answers)])})`,
    )
    t.equal(simulator.callsTo('imageLinks').length, 3 * RATE, 'every request made its upstream call')
  },
)
