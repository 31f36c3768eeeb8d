import t from 'tap'
import { ByteBudget } from '../../src/services/byteBudget.js'
import { WeightedQueue } from '../../src/services/weightedQueue.js'

t.test('waiters are admitted in order, a large head holding back smaller ones behind it', async (t) => {
  const queue = new WeightedQueue(10)
  const order: string[] = []
  const first = await queue.acquire(6)
  const big = queue.acquire(8).then((release) => (order.push('big'), release))
  const small = queue.acquire(1).then((release) => (order.push('small'), release))
  await Promise.resolve()
  t.same(order, [], 'with 4 free, the 8 at the head waits and the 1 behind it too')
  t.equal(queue.getValue(), 4, 'nothing was taken by the waiters')
  first()
  const releaseBig = await big
  const releaseSmall = await small
  t.same(order, ['big', 'small'], 'admitted in the order they asked')
  t.equal(queue.getValue(), 1, '8 and 1 taken of 10')
  releaseBig()
  releaseBig()
  t.equal(queue.getValue(), 9, 'a second release of the same reservation gives nothing back')
  releaseSmall()
  t.equal(queue.getValue(), 10, 'all given back')
})

t.test('weights that are not positive integers are refused', async (t) => {
  const queue = new WeightedQueue(4)
  t.throws(() => queue.acquire(0), RangeError, 'zero')
  t.throws(() => queue.acquire(1.5), RangeError, 'a fraction')
  t.throws(
    () => queue.acquire(queue.getValue() + 1),
    RangeError,
    'more than the whole capacity (it would wait forever)',
  )
  t.throws(() => new WeightedQueue(0), RangeError, 'no capacity')
})

// The semaphore before (async-mutex) walked every weight from the free amount down to 1 on each
// acquire and release: with a budget of 1 TB (about 10^9 KiB) this loop would not end in the
// test's time. The work per reservation must not grow with the budget.
t.test('a budget of a terabyte reserves and releases as a small one does', async (t) => {
  const budget = new ByteBudget(1024 ** 4)
  for (let i = 0; i < 200; i++) {
    const release = await budget.reserve(3 * 1024 * 1024)
    release()
  }
  t.equal(budget.available(), 1024 ** 4, 'every reservation was given back')
})
