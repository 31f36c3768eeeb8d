import t from 'tap'
import { errors } from 'undici'
import {
  ClientClosedError,
  UpstreamBadResponseError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../../src/errors.js'
import { toUpstreamError } from '../../src/upstream/transport.js'

function netError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code })
}

void t.test('timeouts of every phase → UpstreamTimeoutError', (t) => {
  const cases: [string, Error][] = [
    ['connect timeout', new errors.ConnectTimeoutError()],
    ['headers timeout', new errors.HeadersTimeoutError()],
    ['body timeout', new errors.BodyTimeoutError()],
  ]
  for (const [name, cause] of cases) {
    for (const phase of ['before-headers', 'body'] as const) {
      const err = toUpstreamError(cause, phase)
      t.ok(err instanceof UpstreamTimeoutError, `${name} (${phase}) is a timeout`)
      t.equal(err.cause, cause, `${name} (${phase}) keeps its cause`)
    }
  }
  t.end()
})

void t.test(
  'unreachable before headers → UpstreamUnavailableError; after headers → UpstreamBadResponseError',
  (t) => {
    const causes: Error[] = [
      netError('ECONNREFUSED'),
      netError('ECONNRESET'),
      netError('EPIPE'),
      netError('ENOTFOUND'),
      netError('EAI_AGAIN'),
      new errors.SocketError('other side closed'),
      new errors.ClientClosedError(),
      new errors.ClientDestroyedError(),
    ]
    for (const cause of causes) {
      const code = (cause as { code?: string }).code ?? '?'
      const before = toUpstreamError(cause, 'before-headers')
      t.ok(before instanceof UpstreamUnavailableError, `${code} before headers is unavailable`)
      t.equal(before.statusCode, 503, `${code} before headers is 503`)
      t.equal(before.cause, cause, `${code} keeps its cause`)
      const during = toUpstreamError(cause, 'body')
      t.ok(during instanceof UpstreamBadResponseError, `${code} mid-body is a bad response`)
      t.equal(during.statusCode, 502, `${code} mid-body is 502`)
      t.equal(during.cause, cause, `${code} mid-body keeps its cause`)
    }
    t.end()
  },
)

void t.test('codes are found inside AggregateError and cause chains', (t) => {
  const aggregate = new AggregateError([netError('ECONNREFUSED'), netError('ECONNREFUSED')], 'all failed')
  t.ok(toUpstreamError(aggregate, 'before-headers') instanceof UpstreamUnavailableError, 'AggregateError')
  const wrapped = new TypeError('fetch failed', { cause: new errors.HeadersTimeoutError() })
  t.ok(toUpstreamError(wrapped, 'before-headers') instanceof UpstreamTimeoutError, 'wrapped cause')
  t.end()
})

void t.test('unknown errors → UpstreamBadResponseError with the cause', (t) => {
  const causes: [string, unknown][] = [
    ['an Error', new Error('strange')],
    ['a string', 'a string'],
    ['undefined', undefined],
    ['a non-string code', { code: 42 }],
  ]
  for (const [name, cause] of causes) {
    const err = toUpstreamError(cause, 'before-headers')
    t.ok(err instanceof UpstreamBadResponseError, `${name} is a bad response`)
    t.equal(err.code, 'UPSTREAM_BAD_RESPONSE', `${name} has the generic code`)
    t.equal(err.cause, cause, `${name} is kept as cause`)
  }
  t.end()
})

void t.test('typed errors pass through unchanged', (t) => {
  const closed = new ClientClosedError()
  t.equal(toUpstreamError(closed, 'body'), closed, 'the same error comes back')
  t.end()
})
