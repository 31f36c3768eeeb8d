import t from 'tap'
import { build } from '../helpers/build.js'

t.test('the app starts against the simulator and closes cleanly', async (t) => {
  const { app, simulator } = await build(t)
  const live = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(live.statusCode, 200, 'healthz answers 200')
  t.same(live.json(), { status: 'ok' }, 'healthz body')
  t.ok(live.headers['x-request-id'], 'request id echoed')

  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200, 'readyz answers 200 when Incode is reachable and admin log-in works')
  t.same(
    ready.json().checks,
    { config: { ok: true }, upstream: { ok: true }, imageEndpoints: { ok: true }, adminToken: { ok: true } },
    'all checks ok',
  )
  t.equal(simulator.callsTo('adminLogin').length, 1, 'readiness obtained the admin token once')

  await t.resolves(app.close(), 'closed without error')
})

t.test('readyz reports not-ready when Incode is unreachable', async (t) => {
  const { app, simulator } = await build(t)
  await simulator.close()
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503, 'not ready')
  t.equal(ready.json().checks.upstream.ok, false, 'upstream check failed')
})

t.test('readyz reports a failing admin log-in', async (t) => {
  const { app } = await build(t, { env: { INCODE_ADMIN_PASSWORD: 'wrong-password' } })
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503, 'not ready')
  t.equal(ready.json().checks.adminToken.ok, false, 'admin token check failed')
  t.equal(ready.json().checks.upstream.ok, true, 'upstream itself is reachable')
})

t.test('unknown routes get problem+json, unknown Incode paths get Incode bodies', async (t) => {
  const { app } = await build(t)
  const v1 = await app.inject({ method: 'GET', url: '/v1/nope' })
  t.equal(v1.statusCode, 404, '404')
  t.match(v1.headers['content-type'], /application\/problem\+json/, 'problem+json')
  t.equal(v1.json().code, 'NOT_FOUND', 'stable code')
  const omni = await app.inject({ method: 'POST', url: '/omni/get/nothing' })
  t.equal(omni.statusCode, 404, '404')
  t.match(omni.json(), { status: 404, error: 'Not Found', path: '/omni/get/nothing' }, 'Incode error body')
})

t.test('Swagger UI and the OpenAPI document are served', async (t) => {
  const { app } = await build(t)
  const ui = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(ui.statusCode, 200, 'docs page')
  const doc = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(doc.statusCode, 200, 'openapi json')
  t.ok(doc.json().paths['/v1/sessions/{interviewId}/images'], 'images route documented')
})

t.test('a caller request id is kept when plain, replaced when not', async (t) => {
  const { app } = await build(t)
  const kept = await app.inject({
    method: 'GET',
    url: '/healthz',
    headers: { 'x-request-id': 'trace-42.a:b' },
  })
  t.equal(kept.headers['x-request-id'], 'trace-42.a:b', 'a plain id is echoed')
  const long = 'x'.repeat(500)
  const replaced = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': long } })
  t.not(replaced.headers['x-request-id'], long, 'an over-long id is not echoed')
  t.match(replaced.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a fresh UUID replaces it')
  const odd = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'a b<script>' } })
  t.match(odd.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an id with odd characters is replaced')
})
