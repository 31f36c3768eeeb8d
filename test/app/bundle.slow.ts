import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startSimulator, SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { PARTNER_KEY, serviceProcessEnv } from '../helpers/build.js'

const BUNDLE = 'dist/server.js'

// `npm run build` writes the bundle; CI builds before it tests. Without a build there is nothing to run.
t.test(
  'the bundled service (dist/server.js) serves the API, the docs and their files',
  { skip: existsSync(BUNDLE) ? false : `${BUNDLE} is not built` },
  async (t) => {
    const simulator = await startSimulator({ port: 0 })
    t.teardown(() => simulator.close())
    const child = fork(BUNDLE, [], {
      env: serviceProcessEnv(simulator, { NODE_ENV: 'production' }),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    const [message] = (await once(child, 'message')) as [{ listening: AddressInfo }]
    const base = `http://127.0.0.1:${message.listening.port}`

    const ready = await fetch(`${base}/readyz`)
    t.equal(ready.status, 200, '/readyz 200')
    t.match(await ready.json(), { status: 'ready' }, 'ready')

    const docs = await fetch(`${base}/docs/`)
    t.equal(docs.status, 200, '/docs/ 200')
    t.match(await docs.text(), /swagger-ui/i, 'the Swagger UI page')
    const script = await fetch(`${base}/docs/static/swagger-ui-bundle.js`)
    t.equal(script.status, 200, 'its script, from the package folder')
    t.ok((await script.arrayBuffer()).byteLength > 100_000, 'whole')
    const logo = await fetch(`${base}/docs/static/logo.svg`)
    t.equal(logo.status, 200, 'its logo')
    t.match(logo.headers.get('content-type'), /svg/, 'as SVG')
    const spec = await fetch(`${base}/docs/json`)
    t.match(await spec.json(), { openapi: '3.1.0' }, 'the OpenAPI document')

    const links = await fetch(`${base}/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
      body: JSON.stringify({ images: ['selfie'] }),
    })
    t.equal(links.status, 200, 'a links request is served')
    t.match(await links.json(), { images: { selfie: { url: /^http/ } } }, 'with a link')
    const bad = await fetch(`${base}/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
      body: JSON.stringify({ images: ['selfie'], extra: true }),
    })
    t.equal(bad.status, 400, 'a body with an unknown property is refused (schemas compile on first use)')

    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const [code] = (await exited) as [number | null]
    t.equal(code, 0, 'SIGTERM: exit 0')
  },
)
