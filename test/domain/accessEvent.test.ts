import t from 'tap'
import {
  accessEventLine,
  buildAccessEvent,
  newAccessRecord,
  recordAnswerTypes,
  traceIdOf,
  type AccessFacts,
} from '../../src/domain/accessEvent.js'
import { scanFlatJsonObject } from '../../src/domain/flatJson.js'

function facts(over: Partial<AccessFacts> = {}): AccessFacts {
  return {
    endedAtMs: Date.UTC(2026, 10, 29, 12, 0, 0, 250),
    startedAtMs: Date.UTC(2026, 10, 29, 12, 0, 0, 0),
    requestId: 'req-1',
    traceparent: undefined,
    method: 'POST',
    routeUrl: '/v1/sessions/:interviewId/images',
    caller: 'partner:acme',
    ip: '127.0.0.1',
    interviewIds: ['662f1a3b9c4e5d6f7a8b9c02'],
    askedImages: ['selfie'],
    record: newAccessRecord(),
    status: 200,
    finished: true,
    headersSent: true,
    bytes: 1234,
    ...over,
  }
}

void t.test('the trace ID comes from a valid W3C traceparent only', async (t) => {
  const id = '4bf92f3577b34da6a3ce929d0e0e4736'
  t.equal(traceIdOf(`00-${id}-00f067aa0ba902b7-01`), id, 'a valid header')
  t.equal(traceIdOf([`00-${id}-00f067aa0ba902b7-01`]), id, 'the first of repeated headers')
  t.equal(traceIdOf(`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`), undefined, 'the all-zero ID is invalid')
  t.equal(traceIdOf('00-xyz-00f067aa0ba902b7-01'), undefined, 'malformed')
  t.equal(traceIdOf(`00-${id.toUpperCase()}-00f067aa0ba902b7-01`), undefined, 'upper-case hex is invalid')
  t.equal(traceIdOf(undefined), undefined, 'absent')
})

void t.test('a complete answer: the fields, in the one type order, folded', async (t) => {
  const record = newAccessRecord()
  recordAnswerTypes(
    record,
    ['signature', 'document'],
    scanFlatJsonObject(Buffer.from('{"signature":"QUJD","document":null}')),
  )
  recordAnswerTypes(record, ['selfie'], scanFlatJsonObject(Buffer.from('{"selfie":""}')))
  record.failed.push('croppedFace')
  const event = buildAccessEvent(
    facts({ record, askedImages: ['signature', 'selfie', 'signature', 'document', 'croppedFace'] }),
  )
  t.same(
    event,
    {
      log: 'access',
      time: '2026-11-29T12:00:00.250Z',
      requestId: 'req-1',
      route: 'POST /v1/sessions/:interviewId/images',
      caller: 'partner:acme',
      ip: '127.0.0.1',
      interviewId: '662f1a3b9c4e5d6f7a8b9c02',
      asked: ['selfie', 'croppedFace', 'document', 'signature'],
      served: ['signature'],
      missing: ['selfie', 'document'],
      failed: ['croppedFace'],
      status: 200,
      outcome: 'served',
      bytes: 1234,
      ms: 250,
    },
    'every field; an empty image counts as missing',
  )
  t.equal(accessEventLine(event), `${JSON.stringify(event)}\n`, 'one JSON line')
})

void t.test('outcomes: refused, failed, cut, disconnected', async (t) => {
  const withCode = (code: string) => Object.assign(newAccessRecord(), { code })
  t.match(
    buildAccessEvent(facts({ status: 401, record: withCode('API_KEY_MISSING') })),
    { status: 401, outcome: 'refused', code: 'API_KEY_MISSING' },
    '4xx: refused',
  )
  t.match(
    buildAccessEvent(facts({ status: 503, record: withCode('OVERLOADED') })),
    { outcome: 'refused' },
    'shedding: refused',
  )
  t.match(
    buildAccessEvent(facts({ status: 503, record: withCode('UPSTREAM_UNAVAILABLE') })),
    { outcome: 'failed' },
    "Incode's 503: failed",
  )
  t.match(buildAccessEvent(facts({ status: 502 })), { outcome: 'failed' }, '5xx: failed')
  t.match(
    buildAccessEvent(facts({ finished: false })),
    { status: 200, outcome: 'cut' },
    'status line sent, answer not finished: cut',
  )
  t.match(
    buildAccessEvent(facts({ finished: false, headersSent: false })),
    { status: 499, outcome: 'disconnected' },
    'caller gone before the status line: 499',
  )
})

void t.test('caller input reaches the event only in a closed form', async (t) => {
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'
  const event = buildAccessEvent(
    facts({
      interviewIds: [token, 'https://evil.example/x', '662f1a3b9c4e5d6f7a8b9c03'],
      askedImages: ['selfie', 'https://evil.example/x', token, { selfie: 1 }],
      traceparent: `00-${token}-01`,
    }),
  )
  const line = accessEventLine(event)
  t.equal(event.interviewId, '662f1a3b9c4e5d6f7a8b9c03', 'the first candidate of an interview ID form')
  t.same(event.asked, ['selfie'], 'only known image types are listed')
  t.notOk('traceId' in event, 'a malformed traceparent gives no trace ID')
  t.notOk(line.includes('evil') || line.includes('eyJ'), 'neither the link nor the token is in the line')
  t.notOk(
    'asked' in buildAccessEvent(facts({ askedImages: 'selfie' })),
    'a body that is not a list asks nothing',
  )
  t.notOk(
    'asked' in buildAccessEvent(facts({ askedImages: Array(10_000).fill('selfie') })),
    'an over-long list is not walked',
  )
})

void t.test('a request ID is withheld exactly when it has a credential shape', async (t) => {
  const event = (requestId: string) => buildAccessEvent(facts({ requestId })).requestId
  t.equal(
    event('7d9d742f-a849-4dcd-ba3f-bfdb19b16e88'),
    '7d9d742f-a849-4dcd-ba3f-bfdb19b16e88',
    'a UUID is kept',
  )
  t.equal(event('a'.repeat(39)), 'a'.repeat(39), 'a 39-character key-like run is kept')
  t.equal(event('a'.repeat(40)), 'withheld', 'a 40-character key-like run is withheld')
  t.equal(event(`x.${'a'.repeat(40)}.y`), 'withheld', 'a run inside a longer ID is withheld')
  t.equal(event('req-eyJ'), 'withheld', 'a short ID holding a JWT header start is withheld')
})

void t.test('the line is the event as JSON, fields in one order whatever is present', async (t) => {
  const record = newAccessRecord()
  record.served.push('selfie')
  record.cache = 'HIT'
  record.code = 'RATE_LIMITED'
  const full = buildAccessEvent(
    facts({ record, traceparent: `00-${'a'.repeat(32)}-00f067aa0ba902b7-01`, status: 429 }),
  )
  const line = accessEventLine(full)
  t.equal(line, `${JSON.stringify(JSON.parse(line))}\n`, 'one JSON line')
  t.same(
    Object.keys(full),
    [
      'log',
      'time',
      'requestId',
      'traceId',
      'route',
      'caller',
      'ip',
      'interviewId',
      'asked',
      'served',
      'missing',
      'failed',
      'status',
      'code',
      'outcome',
      'bytes',
      'cache',
      'ms',
    ],
    'every field present, in the documented order',
  )
  const bare = buildAccessEvent(facts({ interviewIds: [], askedImages: undefined, bytes: undefined }))
  t.same(
    Object.keys(bare),
    [
      'log',
      'time',
      'requestId',
      'route',
      'caller',
      'ip',
      'served',
      'missing',
      'failed',
      'status',
      'outcome',
      'ms',
    ],
    'absent fields are left out, not written as null or undefined',
  )
})

void t.test(
  'lists already in the type order are taken as they are; others are folded and ordered',
  async (t) => {
    const asked = ['selfie', 'document', 'signature']
    const record = newAccessRecord()
    record.served.push('selfie', 'document')
    record.missing.push('signature', 'signature')
    const event = buildAccessEvent(facts({ record, askedImages: asked }))
    t.same(event.asked, ['selfie', 'document', 'signature'], 'an ordered list is kept')
    t.same(event.served, ['selfie', 'document'], 'ordered served types are kept')
    t.same(event.missing, ['signature'], 'a repeated type is folded even when in order')
    asked.push('croppedFace')
    record.served.push('croppedFace')
    t.same(event.asked, ['selfie', 'document', 'signature'], 'the event holds its own copy of asked')
    t.same(event.served, ['selfie', 'document'], 'and of served')
    const same = buildAccessEvent(facts({ askedImages: ['document', 'selfie', 'nope'] }))
    t.same(
      same.asked,
      ['selfie', 'document'],
      'an unordered list with an unknown item is ordered and cleaned',
    )
    const again = buildAccessEvent(facts())
    t.equal(again.time, event.time, 'the same millisecond reads as the same time')
    const later = buildAccessEvent(facts({ endedAtMs: Date.UTC(2026, 10, 29, 12, 0, 1, 0) }))
    t.equal(later.time, '2026-11-29T12:00:01.000Z', 'another millisecond has its own time')
  },
)
