import t from 'tap'
import { ClientClosedError, OverloadedError } from '../../src/errors.js'
import { ByteBudget } from '../../src/services/byteBudget.js'

const KiB = 1024

t.test('reservations wait for room and are served in order', async (t) => {
  const budget = new ByteBudget(100 * KiB)
  const first = await budget.reserve(60 * KiB)
  t.equal(budget.available(), 40 * KiB, '60 KiB reserved')
  const order: string[] = []
  const second = budget.reserve(50 * KiB).then((release) => (order.push('second'), release))
  const third = budget.reserve(10 * KiB).then((release) => (order.push('third'), release))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(order, [], 'the 50 KiB waits, and the 10 KiB behind it does not jump the queue')
  first()
  first()
  const releases = await Promise.all([second, third])
  t.same(order, ['second', 'third'], 'served in arrival order once room is back')
  t.equal(budget.available(), 40 * KiB, 'a release counts once, however often it is called')
  for (const release of releases) release()
  t.equal(budget.available(), 100 * KiB, 'everything given back')
})

t.test('a reservation larger than the whole budget takes all of it, and so runs alone', async (t) => {
  const budget = new ByteBudget(100 * KiB)
  const release = await budget.reserve(10_000 * KiB)
  t.equal(budget.available(), 0, 'all of it')
  release()
  t.equal(budget.available(), 100 * KiB, 'and back')
})

t.test('an abort or the deadline ends the wait, and nothing leaks', async (t) => {
  const budget = new ByteBudget(100 * KiB)
  const held = await budget.reserve(100 * KiB)

  const controller = new AbortController()
  const aborted = budget.reserve(10 * KiB, { signal: controller.signal })
  controller.abort()
  await t.rejects(aborted, ClientClosedError, 'the caller left: 499')

  const late = budget.reserve(10 * KiB, { deadlineAt: Date.now() + 20 })
  const err = (await late.then(
    () => undefined,
    (e: unknown) => e,
  )) as OverloadedError
  t.type(err, OverloadedError, 'the deadline passed: overloaded')
  t.equal(err.statusCode, 503, '503')
  t.equal(err.code, 'MEMORY_BUDGET_EXHAUSTED', 'with its own code')
  t.equal(err.retryAfterSeconds, 1, 'and a Retry-After')

  const alreadyAborted = new AbortController()
  alreadyAborted.abort()
  await t.rejects(budget.reserve(1, { signal: alreadyAborted.signal }), ClientClosedError, 'aborted before')

  held()
  // The given-up reservations were granted and handed straight back.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(budget.available(), 100 * KiB, 'no reservation leaked')
})

t.test('a budget below 1 KiB is refused', async (t) => {
  t.throws(() => new ByteBudget(10), RangeError)
})
