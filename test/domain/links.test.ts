import t from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import {
  incodeLinksAnswerJson,
  LINK_LIFETIME_MS,
  LinkAnswerError,
  linkExpiryMs,
  linksAnswerJson,
  normaliseLinks,
  toIncodeLinksShape,
} from '../../src/domain/links.js'
import type { LinkEntry } from '../../src/domain/links.js'
import { Rng, SEEDS } from './helpers.js'

const ISSUED = Date.UTC(2024, 5, 1, 12, 0, 0)
const HOUR_LATER = ISSUED + LINK_LIFETIME_MS
const at = (hh: number, mm: number, ss = 0, ms = 0) => Date.UTC(2024, 5, 1, hh, mm, ss, ms)
const BUCKET = 'https://bucket.s3.amazonaws.com/session/selfie.jpg'

void t.test('LINK_LIFETIME_MS is one hour', (t) => {
  t.equal(LINK_LIFETIME_MS, 3_600_000, 'documented lifetime')
  t.end()
})

void t.test('linkExpiryMs reads signed expiries, capped at issue time + 1 h', (t) => {
  const cases: Array<[string, string, number]> = [
    ['no query: the documented hour', BUCKET, HOUR_LATER],
    ['unrelated query parameters', `${BUCKET}?versionId=3&token=abc`, HOUR_LATER],
    [
      'SigV4 signed earlier: its own expiry wins',
      `${BUCKET}?X-Amz-Date=20240601T114500Z&X-Amz-Expires=900`,
      at(12, 0),
    ],
    [
      'SigV4 ending within the hour',
      `${BUCKET}?X-Amz-Date=20240601T120000Z&X-Amz-Expires=1800&X-Amz-Signature=ab`,
      at(12, 30),
    ],
    [
      'SigV4 longer than the hour: capped',
      `${BUCKET}?X-Amz-Date=20240601T120000Z&X-Amz-Expires=604800`,
      HOUR_LATER,
    ],
    ['SigV4 names in lower case', `${BUCKET}?x-amz-date=20240601T120000Z&x-amz-expires=600`, at(12, 10)],
    ['SigV4 names in upper case', `${BUCKET}?X-AMZ-DATE=20240601T120000Z&X-AMZ-EXPIRES=600`, at(12, 10)],
    [
      'SigV4 already expired when issued',
      `${BUCKET}?X-Amz-Date=20240601T100000Z&X-Amz-Expires=60`,
      at(10, 1),
    ],
    ['SigV4 date without expires', `${BUCKET}?X-Amz-Date=20240601T100000Z`, HOUR_LATER],
    ['SigV4 expires without date', `${BUCKET}?X-Amz-Expires=60`, HOUR_LATER],
    ['SigV4 month 13', `${BUCKET}?X-Amz-Date=20241301T100000Z&X-Amz-Expires=60`, HOUR_LATER],
    ['SigV4 February 30', `${BUCKET}?X-Amz-Date=20240230T100000Z&X-Amz-Expires=60`, HOUR_LATER],
    ['SigV4 hour 24', `${BUCKET}?X-Amz-Date=20240601T240000Z&X-Amz-Expires=60`, HOUR_LATER],
    [
      'SigV4 date in another format',
      `${BUCKET}?X-Amz-Date=2024-06-01T10:00:00Z&X-Amz-Expires=60`,
      HOUR_LATER,
    ],
    ['SigV4 negative expires', `${BUCKET}?X-Amz-Date=20240601T100000Z&X-Amz-Expires=-60`, HOUR_LATER],
    ['SigV4 non-numeric expires', `${BUCKET}?X-Amz-Date=20240601T100000Z&X-Amz-Expires=soon`, HOUR_LATER],
    [
      'SigV2 Expires within the hour',
      `${BUCKET}?AWSAccessKeyId=A&Expires=${at(12, 30) / 1000}&Signature=s`,
      at(12, 30),
    ],
    ['SigV2 Expires beyond the hour: capped', `${BUCKET}?Expires=${at(18, 0) / 1000}`, HOUR_LATER],
    [
      'CloudFront canned policy',
      `https://d1.cloudfront.net/a.jpg?Expires=${at(12, 5) / 1000}&Signature=s&Key-Pair-Id=K`,
      at(12, 5),
    ],
    ['expires in lower case', `${BUCKET}?expires=${at(12, 5) / 1000}`, at(12, 5)],
    ['Expires not a number', `${BUCKET}?Expires=tomorrow`, HOUR_LATER],
    ['Expires as a fraction', `${BUCKET}?Expires=1717245000.5`, HOUR_LATER],
    [
      'Google V4',
      `https://storage.googleapis.com/b/o?X-Goog-Date=20240601T120000Z&X-Goog-Expires=600`,
      at(12, 10),
    ],
    [
      'Google V4 lower case',
      `https://storage.googleapis.com/b/o?x-goog-date=20240601T115000Z&x-goog-expires=900`,
      at(12, 5),
    ],
    [
      'Google V4 beyond the hour: capped',
      `https://storage.googleapis.com/b/o?X-Goog-Date=20240601T120000Z&X-Goog-Expires=86400`,
      HOUR_LATER,
    ],
    [
      'Azure SAS date-time',
      `https://a.blob.core.windows.net/c/b?sv=2022&se=2024-06-01T12:20:00Z&sig=x`,
      at(12, 20),
    ],
    [
      'Azure SAS URL-encoded',
      `https://a.blob.core.windows.net/c/b?se=2024-06-01T12%3A20%3A00Z&sig=x`,
      at(12, 20),
    ],
    ['Azure SAS without seconds', `https://a.blob.core.windows.net/c/b?se=2024-06-01T12:20Z`, at(12, 20)],
    [
      'Azure SAS with fractional seconds',
      `https://a.blob.core.windows.net/c/b?se=2024-06-01T12:20:00.1234567Z`,
      at(12, 20, 0, 123),
    ],
    [
      'Azure SAS with an offset',
      `https://a.blob.core.windows.net/c/b?se=2024-06-01T14:20:00%2B02:00`,
      at(12, 20),
    ],
    [
      'Azure SAS with a negative offset',
      `https://a.blob.core.windows.net/c/b?se=2024-06-01T07:20:00-05:00`,
      at(12, 20),
    ],
    [
      'Azure SAS without a zone is UTC',
      `https://a.blob.core.windows.net/c/b?se=2024-06-01T12:20:00`,
      at(12, 20),
    ],
    ['Azure SAS date only', `https://a.blob.core.windows.net/c/b?se=2024-06-01`, at(0, 0)],
    [
      'Azure SAS beyond the hour: capped',
      `https://a.blob.core.windows.net/c/b?se=2024-06-02T00:00:00Z`,
      HOUR_LATER,
    ],
    ['Azure SAS February 30', `https://a.blob.core.windows.net/c/b?se=2024-02-30`, HOUR_LATER],
    ['Azure SAS garbage', `https://a.blob.core.windows.net/c/b?se=whenever`, HOUR_LATER],
    [
      'Azure SAS offset out of range',
      `https://a.blob.core.windows.net/c/b?se=2024-06-01T12:20:00%2B25:00`,
      HOUR_LATER,
    ],
    [
      'several signatures: the earliest wins',
      `${BUCKET}?X-Amz-Date=20240601T120000Z&X-Amz-Expires=1800&Expires=${at(12, 10) / 1000}`,
      at(12, 10),
    ],
    [
      'a repeated parameter: the first counts',
      `${BUCKET}?Expires=${at(12, 10) / 1000}&Expires=${at(12, 5) / 1000}`,
      at(12, 10),
    ],
    ['not a URL', 'not a url', HOUR_LATER],
    ['empty string', '', HOUR_LATER],
    ['relative URL', '/images/selfie.jpg?Expires=1', HOUR_LATER],
    ['scheme only', 'https://', HOUR_LATER],
  ]
  for (const [name, url, expected] of cases) {
    t.equal(linkExpiryMs(url, ISSUED), expected, `${name}: ${new Date(expected).toISOString()}`)
  }
  t.end()
})

void t.test('normaliseLinks refuses answers that are not plain objects', (t) => {
  const answers: unknown[] = [
    null,
    undefined,
    [],
    [{}],
    'text',
    42,
    true,
    new Date(),
    new Map(),
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- an instance of some class is the case
    new (class Answer {})(),
  ]
  for (const answer of answers) {
    t.throws(() => normaliseLinks(answer, ['selfie'], ISSUED), LinkAnswerError, `refuses ${String(answer)}`)
  }
  t.doesNotThrow(
    () => normaliseLinks(Object.create(null), ['selfie'], ISSUED),
    'a null-prototype object is fine',
  )
  t.doesNotThrow(() => normaliseLinks(JSON.parse('{}'), [], ISSUED), 'an empty object is fine')
  t.throws(() => normaliseLinks({}, ['selfie'], Number.NaN), RangeError, 'an invalid issue time')
  t.end()
})

void t.test('normaliseLinks: the Incode shape', (t) => {
  const signedEarly = `https://s3.example/selfie-1.jpg?X-Amz-Date=20240601T113000Z&X-Amz-Expires=900`
  const answer = JSON.parse(
    JSON.stringify({
      selfie: 'https://s3.example/selfie-3.jpg',
      selfie_prevAttempts: {
        '1717236000000': signedEarly,
        '1717242000000': 'https://s3.example/selfie-3.jpg',
        '1717239600000': 'https://s3.example/selfie-2.jpg',
      },
      document: 'https://s3.example/document.jpg',
      signature: null,
      fullFrameFrontID: '',
      fullFrameBackID: 42,
      addressStatement: 'https://s3.example/address.jpg',
      addressStatement_prevAttempts: {
        abc: 'https://s3.example/bad-key.jpg',
        '1.5': 'https://s3.example/fraction.jpg',
        '': 'https://s3.example/empty-key.jpg',
        '100': 5,
        '200': null,
        '300': '',
        '400': 'https://s3.example/address-old.jpg',
      },
      croppedFace: 'https://s3.example/not-requested.jpg',
      unknownField: 'x',
    }),
  )
  const requested: ImageType[] = [
    'selfie',
    'document',
    'signature',
    'fullFrameFrontID',
    'fullFrameBackID',
    'addressStatement',
    'croppedBackID',
    'selfie',
  ]
  const { entries, missing } = normaliseLinks(answer, requested, ISSUED)

  t.same([...entries.keys()], ['selfie', 'document', 'addressStatement'], 'entries for the types with a link')
  t.same(
    missing,
    ['signature', 'fullFrameFrontID', 'fullFrameBackID', 'croppedBackID'],
    'null, "", non-string and absent are missing, in request order',
  )
  t.notOk(entries.has('croppedFace'), 'an unrequested type is ignored')

  const selfie = entries.get('selfie')
  t.same(
    selfie?.entry,
    {
      url: 'https://s3.example/selfie-3.jpg',
      expiresAt: new Date(HOUR_LATER).toISOString(),
      attempts: [
        {
          capturedAt: new Date(1717242000000).toISOString(),
          url: 'https://s3.example/selfie-3.jpg',
          expiresAt: new Date(HOUR_LATER).toISOString(),
        },
        {
          capturedAt: new Date(1717239600000).toISOString(),
          url: 'https://s3.example/selfie-2.jpg',
          expiresAt: new Date(HOUR_LATER).toISOString(),
        },
        {
          capturedAt: new Date(1717236000000).toISOString(),
          url: signedEarly,
          expiresAt: new Date(at(11, 45)).toISOString(),
        },
      ],
    },
    'selfie: latest URL, attempts newest first with the latest repeated',
  )
  t.equal(selfie?.expiresAtMs, at(11, 45), 'selfie: expiresAtMs is the earliest among all its links')

  const document = entries.get('document')
  t.same(
    document?.entry,
    {
      url: 'https://s3.example/document.jpg',
      expiresAt: new Date(HOUR_LATER).toISOString(),
      attempts: [
        {
          capturedAt: new Date(ISSUED).toISOString(),
          url: 'https://s3.example/document.jpg',
          expiresAt: new Date(HOUR_LATER).toISOString(),
        },
      ],
    },
    'document: without prevAttempts, one attempt captured "at issue time"',
  )
  t.equal(document?.expiresAtMs, HOUR_LATER, 'document: expires an hour after issue')

  t.same(
    entries.get('addressStatement')?.entry.attempts.map((attempt) => [attempt.capturedAt, attempt.url]),
    [[new Date(400).toISOString(), 'https://s3.example/address-old.jpg']],
    'addressStatement: bad keys and non-string or empty URLs skipped; the latest is not invented',
  )
  t.end()
})

void t.test('normaliseLinks: the latest link sets expiresAt, any earlier link sets expiresAtMs', (t) => {
  const latest = `https://s3.example/l.jpg?X-Amz-Date=20240601T120000Z&X-Amz-Expires=1200`
  const older = `https://s3.example/o.jpg?Expires=${at(12, 5) / 1000}`
  const { entries } = normaliseLinks(
    { selfie: latest, selfie_prevAttempts: { '2': latest, '1': older } },
    ['selfie'],
    ISSUED,
  )
  t.equal(
    entries.get('selfie')?.entry.expiresAt,
    new Date(at(12, 20)).toISOString(),
    'the latest link expires 12:20',
  )
  t.equal(entries.get('selfie')?.expiresAtMs, at(12, 5), 'but an attempt expires at 12:05')
  t.end()
})

void t.test('normaliseLinks: prevAttempts that are unusable fall back to the latest link', (t) => {
  for (const prevAttempts of [{}, { x: 'u' }, 'not an object', ['https://s3.example/a.jpg'], null]) {
    const { entries } = normaliseLinks(
      { selfie: 'https://s3.example/a.jpg', selfie_prevAttempts: prevAttempts },
      ['selfie'],
      ISSUED,
    )
    t.same(
      entries.get('selfie')?.entry.attempts,
      [
        {
          capturedAt: new Date(ISSUED).toISOString(),
          url: 'https://s3.example/a.jpg',
          expiresAt: new Date(HOUR_LATER).toISOString(),
        },
      ],
      `prevAttempts ${JSON.stringify(prevAttempts)}: one attempt with the latest link`,
    )
  }
  t.end()
})

void t.test('normaliseLinks: capture keys', (t) => {
  const { entries } = normaliseLinks(
    {
      selfie: 'https://s3.example/a.jpg',
      selfie_prevAttempts: {
        '0': 'https://s3.example/zero.jpg',
        '-1000': 'https://s3.example/before-1970.jpg',
        '99999999999999999': 'https://s3.example/beyond-dates.jpg',
        '1e3': 'https://s3.example/exponent.jpg',
        ' 5': 'https://s3.example/space.jpg',
      },
    },
    ['selfie'],
    ISSUED,
  )
  t.same(
    entries.get('selfie')?.entry.attempts.map((attempt) => attempt.capturedAt),
    [new Date(0).toISOString(), new Date(-1000).toISOString()],
    'integers kept (newest first); exponents, spaces and out-of-range times skipped',
  )
  t.end()
})

void t.test('toIncodeLinksShape rebuilds what normaliseLinks read', (t) => {
  const answer = {
    selfie: 'https://s3.example/selfie-3.jpg',
    selfie_prevAttempts: {
      '1717236000000': 'https://s3.example/selfie-1.jpg',
      '1717242000000': 'https://s3.example/selfie-3.jpg',
    },
    document: 'https://s3.example/document.jpg',
    document_prevAttempts: { '1717242000001': 'https://s3.example/document.jpg' },
  }
  const { entries } = normaliseLinks(answer, ['selfie', 'document'], ISSUED)
  const shape = toIncodeLinksShape(
    [...entries].map(([type, { entry }]) => [type, entry] as [ImageType, LinkEntry]),
  )
  t.same(shape, answer, 'the same object back')
  t.same(toIncodeLinksShape([]), {}, 'no entries, empty object')
  const withoutPrev = normaliseLinks({ signature: 'https://s3.example/s.jpg' }, ['signature'], ISSUED)
  t.same(
    toIncodeLinksShape(
      [...withoutPrev.entries].map(([type, { entry }]) => [type, entry] as [ImageType, LinkEntry]),
    ),
    {
      signature: 'https://s3.example/s.jpg',
      signature_prevAttempts: { [String(ISSUED)]: 'https://s3.example/s.jpg' },
    },
    'an answer without prevAttempts gets one, dated at issue time',
  )
  t.same(
    toIncodeLinksShape([
      [
        'selfie',
        {
          url: 'u',
          expiresAt: 'x',
          attempts: [
            { capturedAt: 'not a date', url: 'v', expiresAt: 'x' },
            { capturedAt: new Date(5).toISOString(), url: 'w', expiresAt: 'x' },
          ],
        },
      ],
    ]),
    { selfie: 'u', selfie_prevAttempts: { '5': 'w' } },
    'attempts with an unreadable capture time are left out',
  )
  t.end()
})

void t.test('random answers: normalise then rebuild is the identity', (t) => {
  for (const seed of SEEDS) {
    const rng = new Rng(seed)
    const failures: string[] = []
    for (let round = 0; round < 100; round++) {
      const answer: Record<string, string | Record<string, string>> = {}
      const present = rng.subset(IMAGE_TYPES)
      for (const type of present) {
        const prevAttempts: Record<string, string> = {}
        let latest = ''
        let latestAt = -1
        for (let i = rng.int(1, 5); i > 0; i--) {
          const capturedAt = rng.int(1_600_000_000_000, ISSUED)
          const signed = rng.bool()
            ? `?X-Amz-Date=20240601T${String(rng.int(10, 12)).padStart(2, '0')}0000Z&X-Amz-Expires=${rng.int(0, 7200)}`
            : ''
          const url = `https://s3.example/${type}/${capturedAt}.jpg${signed}`
          prevAttempts[String(capturedAt)] = url
          if (capturedAt > latestAt) {
            latestAt = capturedAt
            latest = url
          }
        }
        answer[type] = latest
        answer[`${type}_prevAttempts`] = prevAttempts
      }
      const requested = rng.shuffle(rng.subset(IMAGE_TYPES))
      const { entries, missing } = normaliseLinks(answer, requested, ISSUED)
      const expected = Object.fromEntries(
        Object.entries(answer).filter(([key]) =>
          requested.some((type) => key === type || key === `${type}_prevAttempts`),
        ),
      )
      const rebuilt = toIncodeLinksShape(
        [...entries].map(([type, { entry }]) => [type, entry] as [ImageType, LinkEntry]),
      )
      if (JSON.stringify(sortKeys(rebuilt)) !== JSON.stringify(sortKeys(expected))) {
        failures.push(`round ${round}: rebuilt answer differs`)
      }
      if (JSON.stringify(missing) !== JSON.stringify(requested.filter((type) => !present.includes(type)))) {
        failures.push(`round ${round}: missing ${missing.join(',')}`)
      }
      for (const [type, { entry, expiresAtMs }] of entries) {
        const times = entry.attempts.map((attempt) => Date.parse(attempt.capturedAt))
        if (times.some((time, i) => i > 0 && time > (times[i - 1] ?? Infinity))) {
          failures.push(`round ${round}: ${type} attempts not newest first`)
        }
        if (entry.attempts[0]?.url !== entry.url)
          failures.push(`round ${round}: ${type} newest attempt is not the latest`)
        const expiries = [entry.expiresAt, ...entry.attempts.map((attempt) => attempt.expiresAt)].map(
          Date.parse,
        )
        if (expiresAtMs !== Math.min(...expiries))
          failures.push(`round ${round}: ${type} expiresAtMs not the earliest`)
        if (expiresAtMs > HOUR_LATER)
          failures.push(`round ${round}: ${type} expires after the documented hour`)
      }
    }
    t.same(failures, [], `seed ${seed}: 100 random answers survive the round trip`)
  }
  t.end()
})

function sortKeys(value: Record<string, unknown>): Array<[string, unknown]> {
  return Object.entries(value)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, item]) => [
      key,
      typeof item === 'object' && item !== null ? sortKeys(item as Record<string, unknown>) : item,
    ])
}

t.test('answers put together from cached entries equal the serialised objects', async (t) => {
  const entry = (n: number): LinkEntry =>
    Object.freeze({
      url: `https://s3.example/${n}?sig=${n}`,
      expiresAt: '2026-11-25T21:00:00.000Z',
      attempts: Object.freeze([
        Object.freeze({
          capturedAt: '2026-11-25T19:00:00.000Z',
          url: `https://s3.example/${n}?sig=${n}`,
          expiresAt: '2026-11-25T21:00:00.000Z',
        }),
        Object.freeze({
          capturedAt: '2026-11-25T18:59:00.000Z',
          url: `https://s3.example/old${n}`,
          expiresAt: '2026-11-25T21:00:00.000Z',
        }),
      ]) as LinkEntry['attempts'],
    })
  const frozen = entry(1)
  const loose: LinkEntry = {
    url: 'https://s3.example/2',
    expiresAt: '2026-11-25T21:00:00.000Z',
    attempts: [],
  }
  const entries = new Map<ImageType, LinkEntry>([
    ['selfie', frozen],
    ['document', loose],
  ])
  const missing: ImageType[] = ['signature']
  for (let round = 0; round < 2; round++) {
    t.equal(
      linksAnswerJson(entries, missing),
      JSON.stringify({ images: Object.fromEntries(entries), missing }),
      `/v1 answer, round ${round + 1} (the second from the remembered text)`,
    )
    t.equal(
      incodeLinksAnswerJson(entries),
      JSON.stringify(toIncodeLinksShape(entries)),
      `Incode's shape, round ${round + 1}`,
    )
  }
  // The same frozen entry under another type is written under that type, never the remembered one.
  t.same(
    JSON.parse(incodeLinksAnswerJson([['document', frozen]])),
    toIncodeLinksShape([['document', frozen]]),
    'the remembered text is tied to its type',
  )
  // An entry that is not frozen may change: its text is not remembered.
  loose.url = 'https://s3.example/changed'
  t.match(linksAnswerJson(entries, []), /changed/, 'a changed loose entry is written as it is now')
  t.equal(linksAnswerJson([], []), '{"images":{},"missing":[]}', 'empty')
  t.equal(incodeLinksAnswerJson([]), '{}', 'empty, Incode shape')
})
