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

/**
 * Every replica syncs twice, one after another: after the first pass Redis holds every count, and
 * the second pass reads those totals back into every replica.
 */
async function syncAll(apps: FastifyInstance[]): Promise<void> {
  for (let pass = 0; pass < 2; pass++) for (const a of apps) await a.fleet?.rateCounters.sync()
}

/** Redis's counters of the rate limits: total counted by the fleet, and the key names. */
async function redisCounts(url: string, t: Test): Promise<{ total: number; keys: string[] }> {
  const raw = new Redis(url)
  t.teardown(() => raw.disconnect())
  const keys = await raw.keys('*rate-limit*')
  const values = keys.length > 0 ? await raw.mget(...keys) : []
  return { total: values.reduce((sum, v) => sum + Number(v ?? 0), 0), keys }
}

/** Scripts Redis has run (INFO commandstats: EVAL and EVALSHA calls). */
async function scriptsRun(raw: Redis): Promise<number> {
  const text = await raw.info('commandstats')
  let calls = 0
  for (const m of text.matchAll(/^cmdstat_(eval|evalsha):calls=(\d+)/gm)) calls += Number(m[2])
  return calls
}

// The replicas' sync timers never fire in these tests (RATE_LIMIT_SYNC_MS of 10 minutes): the
// tests say when a sync interval ends by calling each replica's rateCounters.sync().
const LIMITS = { RATE_LIMIT_WINDOW_MS: '600000', RATE_LIMIT_SYNC_MS: '600000' }

t.test(
  'rate limit N per window over 3 replicas, every replica synced between requests: exactly N of 3N served',
  { skip: NO_REDIS },
  async (t) => {
    const N = 6
    const redis = await startRedis(t)
    const { apps } = await fleetOfThree(t, redis, { ...LIMITS, RATE_LIMIT_MAX: String(N) })
    const statuses: number[] = []
    for (let i = 0; i < 3 * N; i++) {
      statuses.push((await links(app(apps, i))).statusCode)
      await syncAll(apps)
    }
    const counts = tally(statuses)
    t.equal(counts.get(200), N, `N (${N}) of 3N requests are served (${JSON.stringify([...counts])})`)
    t.equal(counts.get(429), 2 * N, 'the other 2N are refused with 429')
    t.same(statuses.slice(0, N), Array(N).fill(200), 'the first N are the ones served')

    const { total, keys } = await redisCounts(redis.url, t)
    t.equal(total, 3 * N, 'Redis holds the fleet count of every request, refused ones included')
    t.notOk(
      keys.some((key) => /partner|test-partner|127\.0\.0\.1|token:/.test(key)),
      `no rate-limit key names the caller (${keys.join(', ')})`,
    )
  },
)

t.test(
  'rate limit N over 3 replicas, one request per replica per sync interval: at most N + (R - 1) served',
  { skip: NO_REDIS },
  async (t) => {
    // The stated bound: the fleet admits at most N plus what the other replicas admitted since
    // the totals a replica last read. Here each replica admits one request per interval and reads
    // every count up to the previous interval, so the others' unseen admissions are R - 1.
    const N = 7
    const R = 3
    const redis = await startRedis(t)
    const { apps } = await fleetOfThree(t, redis, { ...LIMITS, RATE_LIMIT_MAX: String(N) })
    const rounds: number[][] = []
    for (let round = 0; round < N; round++) {
      const statuses: number[] = []
      for (let r = 0; r < R; r++) statuses.push((await links(app(apps, r))).statusCode)
      rounds.push(statuses)
      await syncAll(apps)
    }
    const all = rounds.flat()
    const served = all.filter((s) => s === 200).length
    t.ok(served >= N, `at least N (${N}) served: no replica refuses before the fleet reached N (${served})`)
    t.ok(
      served <= N + (R - 1),
      `at most N + (R - 1) = ${N + R - 1} served when each replica admits one per interval (${served})`,
    )
    t.same(
      all.filter((s) => s !== 200 && s !== 429),
      [],
      'only 200s and 429s',
    )
    t.same(rounds.at(-1), [429, 429, 429], 'once synced past N, every replica refuses')
  },
)

t.test('no Redis round trip on a request: the counts wait for the sync', { skip: NO_REDIS }, async (t) => {
  const N = 50
  const redis = await startRedis(t)
  const { apps } = await fleetOfThree(t, redis, { ...LIMITS, RATE_LIMIT_MAX: String(N) })
  // Warm the links in the first replica (its L1), and send that request's count.
  t.equal((await links(app(apps, 0))).statusCode, 200, 'warm-up: 200')
  await syncAll(apps)
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const before = await scriptsRun(raw)
  for (let i = 0; i < 10; i++) t.equal((await links(app(apps, 0))).statusCode, 200, `L1 hit ${i + 1}: 200`)
  t.equal(await scriptsRun(raw), before, '10 L1 hits ran no script in Redis')
  t.equal((await redisCounts(redis.url, t)).total, 1, 'and their counts are not in Redis yet')
  await app(apps, 0).fleet?.rateCounters.sync()
  t.equal(await scriptsRun(raw), before + 1, 'one sync: one script for all the counts')
  t.equal((await redisCounts(redis.url, t)).total, 11, 'after the sync Redis holds all 11')
})

t.test(
  'Redis killed: each replica counts on from the last fleet total it saw, and no request fails',
  { skip: NO_REDIS },
  async (t) => {
    const N = 5
    const redis = await startRedis(t)
    const { apps } = await fleetOfThree(t, redis, {
      ...LIMITS,
      RATE_LIMIT_MAX: String(N),
      REDIS_BREAKER_RESET_MS: '600000',
    })
    // Warm the seeded session's links in every replica, within the limit (N ≥ 3), and sync: each
    // replica has seen the fleet's 3.
    for (let i = 0; i < 3; i++) t.equal((await links(app(apps, i))).statusCode, 200, `warm-up ${i + 1}: 200`)
    await syncAll(apps)
    await redis.kill()

    // Each replica now counts on its own, on top of the 3 it saw: N - 3 more each, never more.
    const byReplica: Map<number, number>[] = []
    for (let r = 0; r < 3; r++) {
      const statuses: number[] = []
      for (let i = 0; i < 2 * N; i++) statuses.push((await links(app(apps, r))).statusCode)
      byReplica.push(tally(statuses))
      // A sync against the dead Redis keeps the counts (nothing resets the local view).
      await app(apps, r).fleet?.rateCounters.sync()
    }
    for (const [r, counts] of byReplica.entries()) {
      t.same(
        [...counts.keys()].sort(),
        [200, 429],
        `replica ${r + 1}: only 200s and 429s (${JSON.stringify([...counts])})`,
      )
      t.equal(counts.get(200), N - 3, `replica ${r + 1}: the limit holds on the last known total (3)`)
    }
    t.equal((await links(app(apps, 0))).statusCode, 429, 'after a failed sync the replica still refuses')
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
