import t from 'tap'
import { LINK_LIFETIME_MS, linkExpiryMs, normaliseLinks } from '../../src/domain/links.js'

// linkExpiryMs splits a plain URL's query itself (the links miss path) and leaves every other URL
// to URLSearchParams: both must read the same parameters. The reference below is that reading.

const ISSUED = Date.UTC(2026, 10, 30, 1, 0, 0)
const HOUR_LATER = ISSUED + LINK_LIFETIME_MS
/** A signed expiry (unix seconds) earlier than the documented hour, so that reading it shows. */
const SOON = 1_795_000_000

function reference(url: string): number {
  let query: URLSearchParams
  try {
    query = new URL(url).searchParams
  } catch {
    return HOUR_LATER
  }
  for (const [name, value] of query) {
    if (name.toLowerCase() !== 'expires') continue
    return /^\d{1,15}$/.test(value) ? Math.min(HOUR_LATER, Number(value) * 1000) : HOUR_LATER
  }
  return HOUR_LATER
}

void t.test('linkExpiryMs reads a query as URLSearchParams does, plain or not', (t) => {
  const expires = `Expires=${SOON}`
  const urls = [
    `https://h/p?${expires}`,
    `https://h/p?EXPIRES=${SOON}&expires=1`,
    `https://h/p?a&=x&&${expires}`,
    `https://h/p#frag?${expires}`,
    `https://h/p?${expires}#frag`,
    `https://h/p?%45xpires=${SOON}`,
    `https://h/p?Expires=${String(SOON).slice(0, 4)}%20${String(SOON).slice(4)}`,
    `https://h/p?Expires=${String(SOON).slice(0, 4)}+${String(SOON).slice(4)}`,
    `https://h/p?\t${expires}`,
    `https://h/p?Exp\nires=${SOON}`,
    ` https://h/p?${expires} `,
    `https://h/p?é=1&${expires}`,
    `not a url?${expires}`,
    `foo:bar?${expires}`,
    `https://h\\p?${expires}`,
  ]
  for (const url of urls) {
    t.equal(
      linkExpiryMs(url, ISSUED),
      reference(url),
      `${JSON.stringify(url)} reads as URLSearchParams reads it`,
    )
  }
  t.end()
})

void t.test('normaliseLinks gives the same texts when asked twice (its kept dates are the same)', (t) => {
  const url = `https://h/s.jpg?X-Amz-Date=20261130T005000Z&X-Amz-Expires=3600`
  const answer = {
    selfie: url,
    selfie_prevAttempts: { '1713571248671': url, '1713571228416': `https://h/t.jpg?Expires=${SOON}` },
  }
  const first = normaliseLinks(answer, ['selfie'], ISSUED)
  const second = normaliseLinks(answer, ['selfie'], ISSUED + 1)
  t.same(
    second.entries.get('selfie')?.entry.attempts.map((a) => a.capturedAt),
    [new Date(1713571248671).toISOString(), new Date(1713571228416).toISOString()],
    'capture times, newest first',
  )
  t.same(first.entries.get('selfie')?.entry, second.entries.get('selfie')?.entry, 'the same entry both times')
  t.equal(
    first.entries.get('selfie')?.entry.expiresAt,
    new Date(Date.UTC(2026, 10, 30, 1, 50, 0)).toISOString(),
    'the signed expiry of the latest link',
  )
  t.end()
})
