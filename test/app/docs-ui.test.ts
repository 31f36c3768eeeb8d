import t from 'tap'
import { DOCS_TITLE, LOGO_SVG } from '../../src/plugins/external/docsUi.js'
import { build } from '../helpers/build.js'

/**
 * What the /docs pages send, checked without a browser (test/browser/docs.slow.ts drives one):
 * a CSP that works over plain http on any host, the service's own title, logo and favicon.
 */

t.test('the /docs pages: a CSP without upgrade-insecure-requests, the service branding', async (t) => {
  const { app } = await build(t, { env: { DOCS_PUBLIC: 'true' } })
  const page = await app.inject({ method: 'GET', url: '/docs', headers: { host: 'gateway.internal:3000' } })
  t.equal(page.statusCode, 200, '/docs: 200')
  const csp = String(page.headers['content-security-policy'])
  t.notMatch(csp, /upgrade-insecure-requests/, 'assets are not upgraded to https')
  t.notMatch(csp, /unsafe-inline|unsafe-eval/, 'no inline styles or scripts are allowed')
  t.match(csp, /img-src 'self' data: blob:/, 'the logo (data:) and image answers (blob:) may show')
  t.match(csp, /script-src 'self'(;|$)/, 'scripts only from the service itself')
  t.equal(
    page.headers['cross-origin-opener-policy'],
    undefined,
    'no COOP, which browsers refuse with a console error on plain http',
  )
  t.equal(page.headers['x-content-type-options'], 'nosniff', "helmet's other headers stay")
  t.match(page.body, `<title>${DOCS_TITLE}</title>`, "the page title is the service's")
  t.notMatch(page.body, /Swagger UI/, 'not "Swagger UI"')
  t.match(page.body, /rel="icon" type="image\/svg\+xml" href="[^"]*\/theme\/favicon\.svg"/, 'its favicon')

  const favicon = await app.inject({ method: 'GET', url: '/docs/static/theme/favicon.svg' })
  t.equal(favicon.statusCode, 200, 'the favicon is served')
  t.equal(favicon.body, LOGO_SVG, 'the favicon is the logo')

  const init = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
  t.match(init.body, Buffer.from(LOGO_SVG).toString('base64'), 'the topbar logo is the service logo')
  t.match(init.body, /function NoSwaggerLogo\(\)/, "Swagger's own logo is not rendered")
  t.match(init.body, /SwaggerUIBundle\.plugins\.DownloadUrl\(system\)/, 'the document is still loaded')
  t.notMatch(init.body, /__name|require\(/, 'page code holds no compiler helpers')

  const api = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(api.headers['cross-origin-opener-policy'], 'same-origin', 'other answers keep COOP')
  t.match(String(api.headers['content-security-policy']), /default-src 'self'/, "and helmet's CSP")
})
