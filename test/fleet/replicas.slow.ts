import { existsSync } from 'node:fs'
import { Redis } from 'ioredis'
import t from 'tap'
import { BUNDLE, findRedisServer, startFleet, type RunningFleet } from '../../scripts/fleet/launch.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { PARTNER_KEY, TEST_API_KEYS } from '../helpers/build.js'

// Fleet mode as it runs: three real `node dist/server.js` processes sharing one simulator and one
// redis-server of their own. Requests go to the replicas directly, round robin, as a balancer would.

const skip = !existsSync(BUNDLE)
  ? `${BUNDLE} is not built (npm run build)`
  : findRedisServer() === undefined
    ? 'redis-server is not installed'
    : false

// Redis commands get 2 s here, not the default 100 ms: three replicas, a simulator and a Redis
// share a busy 2-core machine, and these tests are about coordination, not Redis latency (the
// fallback on a slow Redis is tested in test/fleet/*.test.ts).
const ENV = {
  API_KEYS: TEST_API_KEYS,
  LOG_LEVEL: 'silent',
  SHED_EVENT_LOOP_DELAY_MS: '60000',
  REDIS_COMMAND_TIMEOUT_MS: '2000',
  REDIS_BREAKER_RESET_MS: '500',
}

async function links(
  base: string,
  interviewId: string,
  types: string[],
): Promise<{ status: number; cache: string | null; body: string }> {
  const res = await fetch(`${base}/v1/sessions/${interviewId}/image-links`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
    body: JSON.stringify({ images: types }),
  })
  return { status: res.status, cache: res.headers.get('x-cache'), body: await res.text() }
}

async function forget(base: string, interviewId: string): Promise<number> {
  const res = await fetch(`${base}/v1/sessions/${interviewId}/image-links`, {
    method: 'DELETE',
    headers: { 'x-api-key': PARTNER_KEY },
  })
  await res.arrayBuffer()
  return res.status
}

/** Waits until every replica says it runs on shared state again. */
async function shared(fleet: RunningFleet): Promise<void> {
  for (const replica of fleet.replicas) {
    for (;;) {
      const body = await fetch(`${replica.url}/readyz`).then((r) => r.text())
      if (body.includes('shared state in Redis')) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

t.test('three replicas, one simulator, one Redis', { skip }, async (t) => {
  const fleet = await startFleet({ replicas: 3, env: ENV, loadBalancer: false })
  t.teardown(() => fleet.stop())
  const { simulator, replicas } = fleet
  const [a, b, c] = replicas.map((r) => r.url) as [string, string, string]
  const redis = fleet.redis
  if (!redis) throw new Error('the fleet has a Redis')

  await t.test('three cold replicas make one executive log-in', async (t) => {
    const answers = await Promise.all(
      [a, b, c].map((base) => links(base, SEEDED_INTERVIEW_IDS.small, ['selfie'])),
    )
    t.same(
      answers.map((x) => x.status),
      [200, 200, 200],
      'each replica serves a partner request',
    )
    t.equal(simulator.callsTo('adminLogin').length, 1, 'one executive log-in for the fleet')
  })

  await t.test('300 concurrent cold link requests over the replicas make one upstream call', async (t) => {
    simulator.resetCalls()
    simulator.setLatency({ fixedMs: 300, perMiBMs: 0 })
    t.teardown(() => simulator.setLatency({ fixedMs: 0, perMiBMs: 0 }))
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        links(replicas[i % 3]?.url ?? a, SEEDED_INTERVIEW_IDS.full, ['selfie']),
      ),
    )
    t.equal(answers.filter((x) => x.status === 200).length, 300, 'all 300 answered 200')
    t.equal(new Set(answers.map((x) => x.body)).size, 1, 'all with the same links')
    t.equal(simulator.callsTo('imageLinks').length, 1, 'exactly one upstream links call')
  })

  await t.test(
    'an entry written by one replica is read by another, and Redis holds no plain text',
    async (t) => {
      simulator.resetCalls()
      const first = await links(a, SEEDED_INTERVIEW_IDS.full, ['fullFrameFrontID'])
      t.equal(first.cache, 'MISS', 'A: a miss, from Incode')
      const second = await links(b, SEEDED_INTERVIEW_IDS.full, ['fullFrameFrontID'])
      t.equal(second.cache, 'HIT', 'B: a hit, from Redis')
      t.equal(second.body, first.body, 'the same links')
      t.equal(simulator.callsTo('imageLinks').length, 1, 'one upstream call for both')
      const raw = new Redis(redis.url)
      t.teardown(() => raw.disconnect())
      const keys = await raw.keys('*')
      t.ok(keys.length > 0, 'Redis holds entries')
      const url =
        (JSON.parse(first.body) as { images: Record<string, { url: string }> }).images.fullFrameFrontID
          ?.url ?? ''
      t.ok(url.startsWith('http'), 'the answer carries a link')
      for (const key of keys) {
        t.notOk(key.includes(SEEDED_INTERVIEW_IDS.full), `key ${key} does not name the interview`)
        const type = await raw.type(key)
        const values =
          type === 'string'
            ? [await raw.getBuffer(key)]
            : type === 'hash'
              ? Object.values(await raw.hgetallBuffer(key))
              : type === 'set'
                ? await raw.smembersBuffer(key)
                : []
        for (const value of values) {
          if (!value) continue
          t.notOk(value.includes(Buffer.from(url)), `${key}: the link is not readable`)
          t.notOk(value.includes(Buffer.from('https://')), `${key}: no URL in clear`)
        }
      }
    },
  )

  await t.test('DELETE on one replica: the next request on the others is a MISS', async (t) => {
    const warm = await Promise.all(
      [a, b, c].map((base) => links(base, SEEDED_INTERVIEW_IDS.full, ['selfie'])),
    )
    t.same(
      warm.map((x) => x.cache),
      ['HIT', 'HIT', 'HIT'],
      'warm on every replica',
    )
    t.equal(await forget(a, SEEDED_INTERVIEW_IDS.full), 200, 'A forgets the interview')
    simulator.resetCalls()
    t.equal((await links(b, SEEDED_INTERVIEW_IDS.full, ['selfie'])).cache, 'MISS', 'B: MISS')
    await forget(a, SEEDED_INTERVIEW_IDS.full)
    t.equal((await links(c, SEEDED_INTERVIEW_IDS.full, ['selfie'])).cache, 'MISS', 'C: MISS')
  })

  await t.test('Redis killed under load: no failed request; restarted: shared hits again', async (t) => {
    const total = 600
    let sent = 0
    let killed = false
    const statuses: number[] = []
    const worker = async (): Promise<void> => {
      while (sent < total) {
        const i = sent++
        const base = replicas[i % 3]?.url ?? a
        const types = i % 2 === 0 ? ['selfie'] : ['fullFrameFrontID', 'selfie']
        statuses.push((await links(base, SEEDED_INTERVIEW_IDS.full, types)).status)
        if (!killed && statuses.length >= 100) {
          killed = true
          await redis.kill()
        }
      }
    }
    await Promise.all(Array.from({ length: 20 }, worker))
    t.ok(killed, 'Redis was killed during the load')
    t.equal(statuses.length, total, 'every request answered')
    t.same([...new Set(statuses)], [200], 'all of them 200')

    await redis.restart()
    await shared(fleet)
    const first = await links(b, SEEDED_INTERVIEW_IDS.small, ['fullFrameFrontID'])
    t.equal(first.status, 200, 'served after the restart')
    const second = await links(c, SEEDED_INTERVIEW_IDS.small, ['fullFrameFrontID'])
    t.equal(second.cache, 'HIT', 'another replica hits what B wrote to the restarted Redis')
  })
})

/** Sum of the fleet's rate-limit counters in Redis: every count the replicas have sent. */
async function countedInRedis(raw: Redis): Promise<number> {
  const keys = await raw.keys('*rate-limit*')
  const values = keys.length > 0 ? await raw.mget(...keys) : []
  return values.reduce((sum, v) => sum + Number(v ?? 0), 0)
}

t.test('a rate limit of N per window holds over the fleet, within its stated bound', { skip }, async (t) => {
  const N = 12
  const R = 3
  const fleet = await startFleet({
    replicas: R,
    env: {
      ...ENV,
      RATE_LIMIT_MAX: String(N),
      RATE_LIMIT_WINDOW_MS: '600000',
      RATE_LIMIT_SYNC_MS: '20',
    },
    loadBalancer: false,
  })
  t.teardown(() => fleet.stop())
  if (!fleet.redis) throw new Error('the fleet has a Redis')
  const raw = new Redis(fleet.redis.url)
  t.teardown(() => raw.disconnect())
  // Every replica on Redis first (a replica still connecting counts alone, as when Redis is down).
  await shared(fleet)
  const statuses: number[] = []
  let counted = 0
  for (let i = 0; i < 3 * N; i++) {
    statuses.push(
      (await links(fleet.replicas[i % R]?.url ?? '', SEEDED_INTERVIEW_IDS.small, ['selfie'])).status,
    )
    // Wait (no clock: a bounded number of looks) until the replica's sync has sent this count;
    // the same sync read the fleet's total back. So each replica admits at most one request
    // between two of its syncs, and what it cannot have seen is the R - 1 requests since.
    for (let look = 0; look < 2_000 && counted < i + 1; look++) {
      counted = await countedInRedis(raw)
      if (counted < i + 1) await new Promise((resolve) => setTimeout(resolve, 5))
    }
    if (counted !== i + 1) break
  }
  t.equal(counted, 3 * N, 'every request was counted in Redis, one after another')
  const served = statuses.filter((s) => s === 200).length
  t.ok(
    served >= N,
    `at least N (${String(N)}) of ${String(3 * N)} served: none refused early (${String(served)})`,
  )
  t.ok(
    served <= N + (R - 1),
    `at most N + (R - 1) = ${String(N + R - 1)} served over ${String(R)} replicas (${String(served)})`,
  )
  t.same(
    statuses.slice(N + R - 1),
    Array(3 * N - (N + R - 1)).fill(429),
    'every request after the first N + (R - 1) refused with 429',
  )
})

t.test(
  'npm run fleet: the balancer in front spreads requests and the fleet answers through it',
  { skip },
  async (t) => {
    const fleet = await startFleet({ replicas: 3, env: ENV })
    t.teardown(() => fleet.stop())
    if (fleet.url === undefined) {
      t.comment('nginx is not installed: no balancer to test')
      return
    }
    const answers = []
    for (let i = 0; i < 6; i++) answers.push(await links(fleet.url, SEEDED_INTERVIEW_IDS.small, ['selfie']))
    t.same(
      answers.map((x) => x.status),
      [200, 200, 200, 200, 200, 200],
      'answered through the balancer',
    )
    t.equal(answers.filter((x) => x.cache === 'MISS').length, 1, 'one MISS, then hits on whichever replica')
    t.equal(fleet.simulator.callsTo('imageLinks').length, 1, 'one upstream call')
  },
)
