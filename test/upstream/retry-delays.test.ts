import t from 'tap'
import { backoffMs, parseRetryAfterMs } from '../../src/upstream/retry.js'

void t.test('Retry-After: delta seconds or an HTTP date', (t) => {
  const now = Date.parse('2025-01-01T00:00:00Z')
  t.equal(parseRetryAfterMs('1', now), 1000, 'seconds')
  t.equal(parseRetryAfterMs(' 120 ', now), 120_000, 'seconds, with spaces')
  t.equal(parseRetryAfterMs('0', now), 0, 'zero')
  t.equal(parseRetryAfterMs('Wed, 01 Jan 2025 00:00:03 GMT', now), 3000, 'an HTTP date')
  t.equal(parseRetryAfterMs('Tue, 31 Dec 2024 23:59:00 GMT', now), 0, 'a past date: no wait')
  t.equal(parseRetryAfterMs(['2', '5'], now), 2000, 'the first of repeated headers')
  t.equal(parseRetryAfterMs(undefined, now), undefined, 'absent')
  t.equal(parseRetryAfterMs('soon', now), undefined, 'unreadable')
  t.equal(parseRetryAfterMs('-1', now), undefined, 'negative')
  t.end()
})

void t.test('backoff: full jitter under base × 2^(n−1), capped', (t) => {
  const top = () => 0.999_999
  t.equal(backoffMs(1, 100, 2000, top), 99, 'first retry: under 100 ms')
  t.equal(backoffMs(2, 100, 2000, top), 199, 'second: under 200 ms')
  t.equal(backoffMs(3, 100, 2000, top), 399, 'third: under 400 ms')
  t.equal(backoffMs(10, 100, 2000, top), 1999, 'capped at the maximum delay')
  t.equal(
    backoffMs(3, 100, 2000, () => 0),
    0,
    'the jitter reaches down to no wait',
  )
  t.equal(
    backoffMs(3, 100, 2000, () => 0.5),
    200,
    'and anywhere in between',
  )
  t.end()
})
