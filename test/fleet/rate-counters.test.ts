import t, { type Test } from 'tap'
import { RateCounters } from '../../src/fleet/rateCounters.js'
import { NO_REDIS } from '../helpers/redis.js'
import { at, rawRedis, replicas } from './fixtures/replicas.js'

// RateCounters on a real Redis (a replica's Fleet), with the test's clock; its timer never fires
// here (a sync interval of 10 minutes): the test calls sync() when an interval ends.
const SYNC_MS = 600_000
const WINDOW_MS = 24 * 3_600_000

/** One replica's Fleet on its own Redis, counters on a clock the test moves, and a raw client. */
async function setUp(t: Test) {
  const { apps, redis } = await replicas(t, 1)
  const fleet = at(apps, 0).fleet
  if (!fleet) throw new Error('fleet mode should be on')
  const clock = { now: 1_000_000 }
  const counters = new RateCounters({ fleet, syncMs: SYNC_MS, now: () => clock.now })
  t.teardown(() => counters.close())
  return { counters, raw: rawRedis(t, redis.url), clock }
}

t.test(
  'a count is sent even when the next sync comes after its caller stopped being read back',
  { skip: NO_REDIS },
  async (t) => {
    const { counters, raw, clock } = await setUp(t)

    t.same(counters.incr('test:rate-limit:a', WINDOW_MS), { current: 1, ttl: WINDOW_MS }, 'counted here')
    // A stalled event loop or a late tick: more than ten intervals pass before the sync.
    clock.now += 11 * SYNC_MS
    await counters.sync()
    t.equal(await raw.get('test:rate-limit:a'), '1', 'the count reached Redis all the same')
    clock.now += 1
    t.equal(counters.incr('test:rate-limit:a', WINDOW_MS).current, 2, 'and is still counted here once')
  },
)

t.test(
  'totals are read back, windows follow Redis, and a new window starts afresh',
  { skip: NO_REDIS },
  async (t) => {
    const { counters, raw, clock } = await setUp(t)
    // Another replica's counts, already in Redis with 60 s of their window left.
    await raw.set('test:rate-limit:b', '5', 'PX', 60_000)

    t.equal(counters.incr('test:rate-limit:b', WINDOW_MS).current, 1, 'before a sync: only its own count')
    await counters.sync()
    t.equal(await raw.get('test:rate-limit:b'), '6', 'its count added to the fleet total')
    const seen = counters.incr('test:rate-limit:b', WINDOW_MS)
    t.equal(seen.current, 7, 'after the sync: the fleet total plus its new count')
    t.ok(
      seen.ttl <= 60_000 && seen.ttl > 50_000,
      `the window is the one in Redis (${String(seen.ttl)} ms left)`,
    )
    clock.now += 60_000
    t.equal(
      counters.incr('test:rate-limit:b', WINDOW_MS).current,
      1,
      'past the window: counting starts again',
    )
  },
)
