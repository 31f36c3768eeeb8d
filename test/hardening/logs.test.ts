import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, PARTNER_KEY } from '../helpers/build.js'
import { HARDENING_ENV, LogCapture, parseJson, type Json } from './helpers.js'

/**
 * At trace level the service logs the most it ever logs: request headers, and Node's parse errors
 * for malformed requests. Neither may carry a credential.
 */

/**
 * A log line as text, with every serialized Buffer (`{"type":"Buffer","data":[...]}`) decoded as
 * well: raw bytes must not smuggle a secret past a text search.
 */
function readable(line: string): string {
  const decoded: string[] = []
  const visit = (value: Json): void => {
    if (typeof value !== 'object' || value === null) return
    if (value.type === 'Buffer' && Array.isArray(value.data)) {
      decoded.push(Buffer.from(value.data as number[]).toString('latin1'))
      return
    }
    for (const child of Object.values(value as Record<string, unknown>)) visit(child)
  }
  visit(parseJson(line))
  return [line, ...decoded].join('\n')
}

/** The credential headers a caller can send, each with its own recognisable value. */
const CREDENTIALS: Record<string, string> = {
  'x-api-key': PARTNER_KEY,
  'x-incode-session-token': 'eyJhbGciOiJIUzI1NiJ9.logs-test-session-token.c2lnbmF0dXJl',
  'x-incode-hardware-id': 'logs-test-hardware-id-0123456789abcdef',
  authorization: 'Bearer logs-test-authorization-0123456789',
  'proxy-authorization': 'Basic bG9ncy10ZXN0LXByb3h5LWF1dGg=',
  cookie: 'session=logs-test-cookie-0123456789',
}

t.test('a malformed request logged at trace level does not leak its raw bytes', async (t) => {
  const capture = new LogCapture()
  const { url } = await build(t, {
    logStream: capture,
    listen: true,
    env: { ...HARDENING_ENV, LOG_LEVEL: 'trace' },
  })
  const { port } = new URL(url)
  const apiKey = CREDENTIALS['x-api-key'] ?? ''
  const token = CREDENTIALS['x-incode-session-token'] ?? ''

  const socket = net.connect(Number(port), '127.0.0.1')
  let answer = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => (answer += chunk))
  const closed = once(socket, 'close')
  // A header line without a colon: Node's parser refuses the request (HPE_INVALID_HEADER_TOKEN).
  socket.write(
    `POST /v1/sessions/${SEEDED_INTERVIEW_IDS.small}/images HTTP/1.1\r\n` +
      'Host: 127.0.0.1\r\n' +
      `x-api-key: ${apiKey}\r\n` +
      `x-incode-session-token: ${token}\r\n` +
      'this is not a header line\r\n' +
      '\r\n',
  )
  await closed

  t.match(answer, /^HTTP\/1\.1 400 /, 'the malformed request is refused with 400')
  const refusals = capture.lines.filter((line) => line.includes('HPE_INVALID_HEADER_TOKEN'))
  t.ok(refusals.length > 0, "the parser's refusal is logged at trace level (the path under test ran)")
  for (const line of capture.lines) {
    const text = readable(line)
    t.notOk(text.includes(apiKey), `no log line holds the API key: '${String(parseJson(line)?.msg)}'`)
    t.notOk(text.includes(token), `no log line holds the Incode token: '${String(parseJson(line)?.msg)}'`)
  }
})

t.test('every credential header is censored where request headers are logged', async (t) => {
  const capture = new LogCapture()
  const { app } = await build(t, {
    logStream: capture,
    env: { ...HARDENING_ENV, LOG_LEVEL: 'trace' },
  })

  const res = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/images`,
    headers: { 'content-type': 'application/json', 'x-request-id': 'logs-test-headers', ...CREDENTIALS },
    payload: JSON.stringify({ images: ['selfie'] }),
  })
  t.equal(res.statusCode, 200, 'the request is served (the partner key is valid)')

  const withHeaders: Json[] = capture.lines
    .map((line): Json => parseJson(line))
    .filter((entry: Json) => entry?.reqId === 'logs-test-headers' && entry?.req?.headers)
  t.ok(withHeaders.length > 0, 'at trace level, the request line carries the request headers')
  for (const entry of withHeaders) {
    t.equal(entry.req.headers['content-type'], 'application/json', 'an ordinary header is logged as sent')
    for (const name of Object.keys(CREDENTIALS)) {
      t.equal(entry.req.headers[name], '[redacted]', `${name} is censored in '${String(entry.msg)}'`)
    }
  }
  for (const [name, value] of Object.entries(CREDENTIALS)) {
    const leaks = capture.lines.filter((line) => readable(line).includes(value))
    t.same(leaks, [], `the value of ${name} appears in no log line`)
  }
})
