import type { IncomingMessage } from 'node:http'
import t from 'tap'
import { IncodeClient } from '../../src/upstream/incode.js'
import { inMs, startServer, testConfig, upstreamPolicy } from './helpers.js'

interface Seen {
  url: string | undefined
  headers: IncomingMessage['headers']
  body: string
}

async function recordingUpstream(t: Parameters<typeof startServer>[0]) {
  const seen: Seen[] = []
  const upstream = await startServer(t, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
  })
  return { upstream, seen }
}

void t.test('sends x-api-key, api-version, content-type and the token; ?id= when known', async (t) => {
  const { upstream, seen } = await recordingUpstream(t)
  const config = testConfig(`${upstream.url}/api`, { INCODE_API_VERSION: '1.0' })
  const policy = upstreamPolicy(t, config)
  const incode = new IncodeClient({ config, policy })

  await incode.call(
    'images',
    { kind: 'token', token: 'caller-token', interviewId: 'iv1' },
    { images: ['selfie'] },
    { deadlineAt: inMs(5000) },
  )
  const first = seen[0]
  t.equal(first?.url, '/api/omni/get/images?id=iv1', 'base path + INCODE_PATH_IMAGES + ?id=')
  t.match(
    first?.headers,
    {
      'x-api-key': 'test-api-key',
      'api-version': '1.0',
      'content-type': 'application/json',
      'x-incode-hardware-id': 'caller-token',
    },
    'the service sets the Incode headers',
  )
  t.same(JSON.parse(first?.body ?? ''), { images: ['selfie'] }, 'the body is JSON')

  await incode.call(
    'imageLinks',
    { kind: 'token', token: 'caller-token' },
    { images: [] },
    { deadlineAt: inMs(5000) },
  )
  t.equal(seen[1]?.url, '/api/omni/get/images/v2', 'no ?id= when the interview is not known')
})

void t.test('zeroPath posts to /0 + path with the token alone, without x-api-key', async (t) => {
  const { upstream, seen } = await recordingUpstream(t)
  const config = testConfig(upstream.url)
  const policy = upstreamPolicy(t, config)
  const incode = new IncodeClient({ config, policy })

  await incode.call(
    'images',
    { kind: 'token', token: 'session-token', interviewId: 'iv1' },
    { images: ['selfie'] },
    { deadlineAt: inMs(5000) },
    { zeroPath: true },
  )
  await incode.forward(
    'concatenatedImages',
    { kind: 'token', token: 'session-token' },
    {},
    { deadlineAt: inMs(5000) },
    {
      zeroPath: true,
    },
  )
  t.equal(seen[0]?.url, '/0/omni/get/images?id=iv1', 'call(): /0 + path')
  t.notOk('x-api-key' in (seen[0]?.headers ?? {}), 'call(): no x-api-key')
  t.equal(seen[0]?.headers['x-incode-hardware-id'], 'session-token', 'call(): the token is sent')
  t.equal(seen[0]?.headers['api-version'], '1.0', 'call(): api-version is sent')
  t.equal(seen[1]?.url, '/0/omni/get/concatenated-images', 'forward(): /0 + path')
  t.notOk('x-api-key' in (seen[1]?.headers ?? {}), 'forward(): no x-api-key')
})

void t.test('the request id reaches Incode as x-request-id', async (t) => {
  const { upstream, seen } = await recordingUpstream(t)
  const config = testConfig(upstream.url)
  const policy = upstreamPolicy(t, config)
  const incode = new IncodeClient({ config, policy })

  const caller = { kind: 'token', token: 'caller-token' } as const
  await incode.call('images', caller, {}, { deadlineAt: inMs(5000), requestId: 'req-123' })
  await incode.forward('images', caller, {}, { deadlineAt: inMs(5000), requestId: 'req-456' })
  await incode.call('images', caller, {}, { deadlineAt: inMs(5000) })
  t.equal(seen[0]?.headers['x-request-id'], 'req-123', 'call() sends it')
  t.equal(seen[1]?.headers['x-request-id'], 'req-456', 'forward() sends it')
  t.notOk('x-request-id' in (seen[2]?.headers ?? {}), 'none without a request id')
})

void t.test('pathOf() follows the INCODE_PATH_* settings', (t) => {
  const config = testConfig('http://127.0.0.1:9', {
    INCODE_PATH_IMAGES: '/a',
    INCODE_PATH_IMAGE_LINKS: '/b',
    INCODE_PATH_SECOND_ID_IMAGES: '/c',
    INCODE_PATH_CONCATENATED_IMAGES: '/d',
  })
  const policy = upstreamPolicy(t, config)
  const incode = new IncodeClient({ config, policy })
  t.same(
    [
      incode.pathOf('images'),
      incode.pathOf('imageLinks'),
      incode.pathOf('secondIdImages'),
      incode.pathOf('concatenatedImages'),
    ],
    ['/a', '/b', '/c', '/d'],
    'one setting per endpoint',
  )
  t.end()
})
