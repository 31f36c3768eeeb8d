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
  t.throws(() => new ByteBudget(10), RangeError, 'the budget')
  t.throws(() => new ByteBudget(100 * KiB, 10), RangeError, 'the per-caller share')
})

/** Lets every settled promise's callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve))

t.test("one caller's waiters never hold up another caller", async (t) => {
  // Room for three shares; one caller may hold one.
  const budget = new ByteBudget(300 * KiB, 100 * KiB)
  t.equal(budget.perCallerBytes, 100 * KiB, 'the share')
  const hog = [
    await budget.reserve(60 * KiB, { caller: 'hog' }),
    await budget.reserve(40 * KiB, { caller: 'hog' }),
  ]
  t.equal(budget.heldBy('hog'), 100 * KiB, 'the hog holds its whole share')
  const order: string[] = []
  const hogMore = [1, 2, 3].map((i) =>
    budget.reserve(50 * KiB, { caller: 'hog' }).then((release) => (order.push(`hog+${i}`), release)),
  )
  await settle()
  t.same(order, [], "the hog's further reservations wait in its own queue")
  t.equal(budget.waiting, 3, 'all three of them')
  t.equal(budget.available(), 200 * KiB, 'taking nothing of the common budget meanwhile')

  const other = await budget.reserve(150 * KiB, { caller: 'other' })
  t.equal(
    budget.heldBy('other'),
    100 * KiB,
    'another caller is served at once; more than a share takes the whole share',
  )
  t.equal(budget.available(), 50 * KiB, 'while its full size counts against the common budget')
  t.equal(budget.callers, 2, 'two callers hold memory')

  hog[0]?.()
  await settle()
  t.same(order, ['hog+1'], "the hog's queue moves as its own reservations end, in order")
  t.equal(budget.heldBy('hog'), 90 * KiB, '40 + 50 KiB: the next one (50 KiB) does not fit its share')
  hog[1]?.()
  await settle()
  t.same(order, ['hog+1', 'hog+2'], 'and on')

  other()
  t.equal(budget.callers, 1, "a caller's entry goes once it holds and waits for nothing")
  for (const release of await Promise.all(hogMore.slice(0, 2))) release()
  const last = await hogMore[2]
  t.same(order, ['hog+1', 'hog+2', 'hog+3'], 'every waiter of the hog was served, in order')
  last?.()
  t.equal(budget.available(), 300 * KiB, 'everything given back')
  t.equal(budget.callers, 0, 'no caller entry is kept')
})

t.test('a caller admitted to its share waits in the common queue in arrival order', async (t) => {
  const budget = new ByteBudget(200 * KiB, 100 * KiB)
  const first = await budget.reserve(100 * KiB, { caller: 'a' })
  const second = await budget.reserve(100 * KiB, { caller: 'b' })
  const order: string[] = []
  const a = budget.reserve(100 * KiB, { caller: 'a' }).then((r) => (order.push('a'), r))
  const c = budget.reserve(100 * KiB, { caller: 'c' }).then((r) => (order.push('c'), r))
  await settle()
  t.equal(budget.waiting, 1, "a's second waits in its own queue, c's first in the common one")
  first()
  await settle()
  t.same(order, ['c'], 'the room a gave back goes to c, who was waiting for the common budget')
  ;(await c)()
  second()
  ;(await a)()
  t.equal(budget.available(), 200 * KiB, 'everything given back')
  t.equal(budget.callers, 0, 'no caller entry is kept')
})

t.test("a waiter that gives up leaves its caller's queue, and idle callers leave no entry", async (t) => {
  const budget = new ByteBudget(100 * KiB, 50 * KiB)
  const held = await budget.reserve(50 * KiB, { caller: 'hog' })
  const controller = new AbortController()
  const aborted = budget.reserve(10 * KiB, { caller: 'hog', signal: controller.signal })
  const late = budget.reserve(10 * KiB, { caller: 'hog', deadlineAt: Date.now() + 20 })
  await settle()
  t.equal(budget.waiting, 2, "both wait behind the hog's share")
  controller.abort()
  await t.rejects(aborted, ClientClosedError, 'the caller left: 499')
  const err = await late.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.type(err, OverloadedError, "the deadline passed in the caller's own queue: overloaded")
  t.equal((err as OverloadedError).code, 'MEMORY_BUDGET_EXHAUSTED', "with the budget's code")
  t.equal(budget.waiting, 0, 'neither waits any more')
  held()
  t.equal(budget.callers, 0, "the hog's entry is gone")

  // Many made-up keys, each reserving and releasing: no entry outlives its reservation.
  for (let i = 0; i < 1_000; i++) (await budget.reserve(KiB, { caller: `random-${i}` }))()
  t.equal(budget.callers, 0, 'random keys leave nothing behind')
  t.equal(budget.available(), 100 * KiB, 'and no memory')
})

t.test('without a share of its own, a caller may take the whole budget (the default)', async (t) => {
  const budget = new ByteBudget(100 * KiB)
  t.equal(budget.perCallerBytes, 100 * KiB, 'the share is the budget')
  const release = await budget.reserve(100 * KiB, { caller: 'a' })
  t.equal(budget.available(), 0, 'all of it')
  release()
  t.equal(new ByteBudget(100 * KiB, 1_000 * KiB).perCallerBytes, 100 * KiB, 'a share is at most the budget')
})
