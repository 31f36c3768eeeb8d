import t from 'tap'
import { Metrics } from '../../src/metrics.js'
import { RETRY_BUDGET_MIN_PER_SEC, RetryBudget } from '../../src/upstream/retry.js'
import { inMs, metricValue, startServer, testConfig, upstreamPolicy } from './helpers.js'
import { fakeClock } from './withSimulator.js'

function spend(budget: RetryBudget, tries: number): number {
  let granted = 0
  for (let i = 0; i < tries; i++) if (budget.tryRetry()) granted++
  return granted
}

void t.test('a quiet service may still retry a few times per second', (t) => {
  const clock = fakeClock(0)
  const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 3, now: clock.now })
  t.equal(spend(budget, 10), 3, 'three retries at first')
  t.equal(spend(budget, 10), 0, 'then none')
  clock.advance(1000)
  t.equal(spend(budget, 10), 3, 'three more a second later')
  clock.advance(500)
  t.equal(spend(budget, 10), 1, 'one and a half tokens after half a second: one retry')
  t.end()
})

void t.test('each call earns `ratio` of a retry', (t) => {
  const clock = fakeClock(0)
  const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0, now: clock.now })
  t.equal(spend(budget, 5), 0, 'nothing to spend before any call (no minimum here)')
  for (let i = 0; i < 50; i++) budget.recordCall()
  t.equal(spend(budget, 50), 5, '50 calls at 0.1 earn 5 retries')
  t.end()
})

void t.test('savings are capped, so a long quiet spell does not buy a retry storm', (t) => {
  const clock = fakeClock(0)
  const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 3, maxSaved: 10, now: clock.now })
  for (let i = 0; i < 1000; i++) budget.recordCall()
  clock.advance(3_600_000)
  t.equal(spend(budget, 100), 10, 'no more than maxSaved at once')
  t.end()
})

void t.test(
  'a burst against an always-503 Incode makes far fewer retries than calls × RETRY_MAX',
  async (t) => {
    const upstream = await startServer(t, (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' })
      res.end('{"status":503}')
    })
    const ratio = 0.1
    const retryMax = 3
    const calls = 40
    const metrics = new Metrics()
    const policy = upstreamPolicy(
      t,
      testConfig(upstream.url, {
        RETRY_BUDGET_RATIO: String(ratio),
        RETRY_MAX: String(retryMax),
        RETRY_BASE_MS: '5',
        RETRY_MAX_DELAY_MS: '20',
      }),
      { metrics },
    )

    const started = performance.now()
    const answers = await Promise.all(
      Array.from({ length: calls }, () =>
        policy.request({ method: 'POST', path: '/p', headers: {}, body: '{}', deadlineAt: inMs(10_000) }),
      ),
    )
    const seconds = (performance.now() - started) / 1000
    t.ok(
      answers.every((a) => a.status === 503),
      'every call ends with the 503',
    )

    const retries = upstream.requests.length - calls
    // What the budget can hold: the starting minimum, what the calls earned, the trickle meanwhile.
    const bound = Math.ceil(RETRY_BUDGET_MIN_PER_SEC + calls * ratio + RETRY_BUDGET_MIN_PER_SEC * seconds)
    t.ok(retries <= bound, `${retries} retries, within the budget's ${bound}`)
    t.ok(retries < (calls * retryMax) / 4, `far fewer than the ${calls * retryMax} retries without a budget`)
    t.equal(
      await metricValue(metrics.upstreamRetries, { outcome: 'retried' }),
      retries,
      'retries are counted',
    )
    const exhausted = await metricValue(metrics.upstreamRetries, { outcome: 'budget_exhausted' })
    // A call ends either after RETRY_MAX retries or when the budget refuses one.
    t.ok(
      exhausted >= calls - retries / retryMax,
      `the refusals are counted as budget_exhausted (${exhausted})`,
    )
  },
)
