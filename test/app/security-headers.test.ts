import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import helmet, { type HelmetOptions } from 'helmet'
import { request } from 'undici'
import { securityHeaders } from '../../src/plugins/external/security.js'
import { build } from '../helpers/build.js'

const OPTIONS: HelmetOptions = { contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }

/** The headers helmet's middleware sets on a real answer, over loopback. */
async function helmetOnAWire(t: Test, options: HelmetOptions): Promise<Record<string, string>> {
  const middleware = helmet(options)
  const server = createServer((req, res) => {
    middleware(req, res, () => res.end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo
  const res = await request(`http://127.0.0.1:${port}/`)
  await res.body.dump()
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(res.headers)) {
    if (!['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(name)) {
      headers[name] = String(value)
    }
  }
  return headers
}

void t.test('the headers worked out once are those helmet sets on a real answer', async (t) => {
  const once = securityHeaders()
  t.same({ ...once }, await helmetOnAWire(t, OPTIONS), 'the service options: same headers, same values')
  t.ok(Object.isFrozen(once), 'frozen')
  t.notOk(
    /upgrade-insecure-requests/.test(once['content-security-policy'] ?? ''),
    'requests are not upgraded',
  )
  const custom: HelmetOptions = { frameguard: { action: 'deny' }, hsts: false }
  t.same({ ...securityHeaders(custom) }, await helmetOnAWire(t, custom), 'other options: still the same')
})

void t.test('every answer of the app carries them', async (t) => {
  const { app } = await build(t)
  const res = await app.inject({ method: 'GET', url: '/healthz' })
  for (const [name, value] of Object.entries(securityHeaders())) t.equal(res.headers[name], value, name)
})

void t.test('a CSP directive computed per request is refused at boot', async (t) => {
  t.throws(
    () =>
      securityHeaders({
        contentSecurityPolicy: {
          directives: { scriptSrc: ["'self'", (_req, res) => String(res.statusCode)] },
        },
      }),
    /computed per request/,
    'a function directive cannot be worked out once',
  )
})
