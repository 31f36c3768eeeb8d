import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { sha256Hex } from '../../src/auth/apiKeys.js'
import { DOCS_TITLE } from '../../src/plugins/external/docsUi.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, type Harness } from '../helpers/build.js'
import { warmSeededSessions } from '../routes/fixtures/helpers.js'

/**
 * Swagger UI as a person uses it: Debian's Chromium (apt-get install chromium; .ci/run installs
 * it) driven by playwright-core against the service listening on loopback, reached as 127.0.0.1
 * and as a host name that is not loopback (gateway.internal, mapped to 127.0.0.1 inside Chromium
 * only). The page must render with no console error and no failed request, Authorize must take
 * the demo key, Execute must answer, and an image answer must show as a picture.
 */

const CHROMIUM = '/usr/bin/chromium'
const HOST_NAME = 'gateway.internal'
/** The demo's partner key (src/demo.ts), configured here by its hash as the demo does. */
const DEMO_KEY = 'demo-partner-key'
/** Generous bound on one UI step on a busy machine (a render, a request); not a speed check. */
const STEP_MS = 60_000

const { small } = SEEDED_INTERVIEW_IDS

warmSeededSessions()

interface PageTrouble {
  consoleErrors: string[]
  failedRequests: string[]
}

/** Opens a page that records console errors and failed requests, whatever the page does. */
async function openPage(browser: Browser, t: Test): Promise<{ page: Page; trouble: PageTrouble }> {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(STEP_MS)
  const trouble: PageTrouble = { consoleErrors: [], failedRequests: [] }
  page.on('console', (message) => {
    if (message.type() === 'error') trouble.consoleErrors.push(message.text())
  })
  page.on('pageerror', (error) => trouble.consoleErrors.push(`uncaught: ${error.message}`))
  page.on('requestfailed', (request) => {
    trouble.failedRequests.push(`${request.url()}: ${request.failure()?.errorText ?? 'failed'}`)
  })
  return { page, trouble }
}

/** Loads /docs and waits until the operations and the logo are on the page. */
async function openDocs(page: Page, base: string): Promise<void> {
  await page.goto(`${base}/docs`, { waitUntil: 'load' })
  await page.locator('.opblock').first().waitFor()
  await page.locator('.topbar img').waitFor()
  await page.waitForLoadState('networkidle')
}

/** The operation block of one path and method, expanded. */
async function operation(page: Page, method: string, path: string) {
  const block = page
    .locator(`.opblock.opblock-${method}`)
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) })
  await block.locator('.opblock-summary').first().click()
  await block.locator('button.execute').waitFor()
  return block
}

async function brandingChecks(t: Test, page: Page, what: string): Promise<void> {
  t.equal(await page.title(), DOCS_TITLE, `${what}: the page title is the service's`)
  const icon = await page.locator('link[rel="icon"]').getAttribute('href')
  t.match(icon, /favicon\.svg$/, `${what}: the favicon is the service's`)
  const logo = await page.locator('.topbar img').getAttribute('src')
  t.match(logo, /^data:image\/svg\+xml;base64,/, `${what}: the topbar shows a logo`)
  const logoSvg = Buffer.from((logo ?? '').replace(/^data:image\/svg\+xml;base64,/, ''), 'base64').toString()
  t.match(logoSvg, /<title>Incode image gateway<\/title>/, `${what}: the logo is the service's`)
  t.equal(await page.locator('.topbar a.link svg').count(), 0, `${what}: no Swagger logo is rendered`)
}

/** Skipped where Chromium is absent, except in CI (.ci/run installs it): there it must run. */
const skip =
  existsSync(CHROMIUM) || process.env.CI === 'true'
    ? false
    : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`

t.test('Swagger UI over 127.0.0.1 and over a non-loopback host name', { skip }, async (t) => {
  const h: Harness = await build(t, {
    listen: true,
    env: {
      API_KEYS: JSON.stringify([
        { name: 'demo', scopes: ['images:read', 'links:read'], sha256: sha256Hex(DEMO_KEY) },
      ]),
      DOCS_PUBLIC: 'true',
      RATE_LIMIT_MAX: '100000',
    },
  })
  const { port } = new URL(h.url)
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [`--host-resolver-rules=MAP ${HOST_NAME} 127.0.0.1`],
  })
  t.teardown(() => browser.close())

  // (1) Rendering, reached by address.
  {
    const { page, trouble } = await openPage(browser, t)
    await openDocs(page, h.url)
    await brandingChecks(t, page, '127.0.0.1')
    t.same(trouble.consoleErrors, [], '127.0.0.1: no console errors')
    t.same(trouble.failedRequests, [], '127.0.0.1: no failed requests')
  }

  // (2) Reached by a host name over plain http: renders, and a person can use it.
  const base = `http://${HOST_NAME}:${port}`
  const { page, trouble } = await openPage(browser, t)
  await openDocs(page, base)
  t.equal(new URL(page.url()).protocol, 'http:', `${HOST_NAME}: still plain http`)
  await brandingChecks(t, page, HOST_NAME)
  t.same(trouble.consoleErrors, [], `${HOST_NAME}: no console errors once rendered`)
  t.same(trouble.failedRequests, [], `${HOST_NAME}: no failed requests once rendered`)

  // Authorize with the demo key.
  await page.locator('.auth-wrapper button.authorize').click()
  const apiKeyForm = page.locator('.modal-ux .auth-container').filter({ hasText: 'x-api-key' })
  await apiKeyForm.locator('input').fill(DEMO_KEY)
  await apiKeyForm.locator('button.authorize').click()
  await apiKeyForm.locator('h6', { hasText: 'Authorized' }).waitFor()
  await page.locator('.modal-ux button.close-modal').click()

  // Image links twice: a miss, then a hit from the cache.
  const links = await operation(page, 'post', '/v1/sessions/{interviewId}/image-links')
  await links.locator('tr[data-param-name="interviewId"] input').fill(small)
  await links.locator('textarea.body-param__text').fill('{"images": ["selfie", "signature"]}')
  const linksAnswer = links.locator('.live-responses-table')
  const cacheHeader = async (expected: string) => {
    await links.locator('button.execute').click()
    await linksAnswer.filter({ hasText: new RegExp(`x-cache: ${expected}`, 'i') }).waitFor()
    return (await linksAnswer.locator('tbody .response-col_status').first().textContent())?.trim()
  }
  t.equal(await cacheHeader('MISS'), '200', 'image-links, first Execute: 200, X-Cache: MISS')
  await links.locator('button.btn-clear').click()
  t.equal(await cacheHeader('HIT'), '200', 'image-links, second Execute: 200, X-Cache: HIT')

  // One image as bytes: Swagger UI shows it as a picture.
  const image = await operation(page, 'get', '/v1/sessions/{interviewId}/images/{type}')
  await image.locator('tr[data-param-name="interviewId"] input').fill(small)
  await image.locator('tr[data-param-name="type"] select').selectOption('selfie')
  await image.locator('button.execute').click()
  const picture = image.locator('.live-responses-table img')
  await picture.waitFor()
  t.match(await picture.getAttribute('src'), /^blob:/, 'the answer is shown as an <img> of its bytes')
  const width = await picture.evaluate(async (element) => {
    const img = element as unknown as { decode(): Promise<void>; naturalWidth: number }
    await img.decode()
    return img.naturalWidth
  })
  t.ok(width > 0, `the browser decoded the JPEG (${width} px wide)`)

  t.same(trouble.consoleErrors, [], `${HOST_NAME}: no console errors after using it`)
  t.same(trouble.failedRequests, [], `${HOST_NAME}: no failed requests after using it`)
})
