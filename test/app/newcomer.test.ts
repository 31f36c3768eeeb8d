/**
 * A newcomer's first hour: `npm start` before a build, a `.env`, the demo's printout and its
 * curls, Incode paths that are not served, and the answers to the usual first mistakes (wrong
 * media type, wrong method, `__proto__` keys, an over-long URL), each in its route family's shape
 * with this service's own codes.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { loadEnvFileIfPresent } from '../../src/envFile.js'
import { SEEDED_INTERVIEW_IDS, SEEDED_SESSIONS, startSimulator } from '../../src/simulator/index.js'
import { build, partnerHeaders, TEST_API_KEYS } from '../helpers/build.js'
import { assertIncodeError, assertProblem, parseJson } from '../hardening/helpers.js'

const ROOT = join(import.meta.dirname, '..', '..')
/** tsx's loader as a URL, so that a child running in a temporary directory finds it. */
const TSX = import.meta.resolve('tsx')

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'newcomer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Runs a child to its end; its exit code and output. */
async function run(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

function killOnTeardown(t: Test, child: ChildProcess): void {
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
}

t.test('npm start before npm run build says what to run, then runs the build', async (t) => {
  const dir = await tempDir(t)
  await mkdir(join(dir, 'scripts'))
  await copyFile(join(ROOT, 'scripts', 'start.mjs'), join(dir, 'scripts', 'start.mjs'))

  const missing = await run(
    spawn(process.execPath, [join(dir, 'scripts', 'start.mjs')], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
  t.equal(missing.code, 1, 'no build: exit code 1')
  t.match(missing.stderr, /dist\/server\.js is missing: run `npm run build` first/, 'it says what to run')
  t.notMatch(missing.stderr, /Cannot find module|at .*\(node:/, 'no Node stack trace')

  await mkdir(join(dir, 'dist'))
  await writeFile(join(dir, 'dist', 'server.js'), "process.stdout.write('the service ran')\n")
  const built = await run(
    spawn(process.execPath, [join(dir, 'scripts', 'start.mjs')], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
  t.equal(built.code, 0, 'built: exit code 0')
  t.equal(built.stdout, 'the service ran', 'it runs dist/server.js')
})

t.test('a .env file is read when present, and the environment wins over it', async (t) => {
  const dir = await tempDir(t)
  t.equal(loadEnvFileIfPresent(join(dir, '.env')), false, 'no file: nothing read, no error')

  await writeFile(
    join(dir, '.env'),
    [
      '# a comment',
      'NEWCOMER_FROM_ENV=from-file',
      'NEWCOMER_FROM_FILE=from-file',
      "NEWCOMER_QUOTED='a b'",
    ].join('\n'),
  )
  process.env.NEWCOMER_FROM_ENV = 'from-env'
  t.teardown(() => {
    for (const name of ['NEWCOMER_FROM_ENV', 'NEWCOMER_FROM_FILE', 'NEWCOMER_QUOTED'])
      Reflect.deleteProperty(process.env, name)
  })
  t.equal(loadEnvFileIfPresent(join(dir, '.env')), true, 'the file was read')
  t.equal(process.env.NEWCOMER_FROM_ENV, 'from-env', 'a variable set in the environment is kept')
  t.equal(process.env.NEWCOMER_FROM_FILE, 'from-file', 'a variable only in the file is read from it')
  t.equal(process.env.NEWCOMER_QUOTED, 'a b', 'quoted values are unquoted')
})

t.test('src/server.ts reads .env from its working directory', async (t) => {
  const simulator = await startSimulator({ port: 0 })
  t.teardown(() => simulator.close())
  const dir = await tempDir(t)
  await writeFile(
    join(dir, '.env'),
    [
      `INCODE_BASE_URL=${simulator.url}`,
      `INCODE_API_KEY=${simulator.apiKey}`,
      `INCODE_ADMIN_EMAIL=${simulator.adminEmail}`,
      `INCODE_ADMIN_PASSWORD=${simulator.adminPassword}`,
      `API_KEYS='${TEST_API_KEYS}'`,
      'LOG_LEVEL=silent',
      'SHED_EVENT_LOOP_DELAY_MS=60000',
      // Set in the environment too (PORT=0 there): if the file won, the service would not start.
      'PORT=not-a-port',
    ].join('\n'),
  )
  const child = fork(join(ROOT, 'src', 'server.ts'), [], {
    cwd: dir,
    execArgv: ['--import', TSX],
    env: { PATH: process.env.PATH ?? '', PORT: '0' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  killOnTeardown(t, child)
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const [first] = (await Promise.race([once(child, 'message'), once(child, 'exit')])) as [unknown]
  const listening = (first as { listening?: AddressInfo } | undefined)?.listening
  t.ok(listening, `the service started from .env alone (${stderr.trim()})`)
  if (!listening) return

  const res = await fetch(
    `http://127.0.0.1:${listening.port}/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`,
    { method: 'POST', headers: partnerHeaders(), body: JSON.stringify({ images: ['selfie'] }) },
  )
  const answer = await res.text()
  t.equal(
    res.status,
    200,
    `Incode's address, keys and log-in came from .env ${res.ok ? '' : answer.slice(0, 200)}`,
  )
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
})

/** A command of the demo's printout, continuation lines joined. */
interface Curl {
  method: string
  url: string
  headers: Record<string, string>
  body: string | undefined
}

function curlsOf(printout: string): Curl[] {
  const commands = printout.replace(/ \\\n\s*/g, ' ').split('\n')
  return commands
    .map((line) => line.trim())
    .filter((line) => line.startsWith('curl '))
    .map((line) => {
      const headers: Record<string, string> = {}
      for (const [, name, value] of line.matchAll(/-H '([^:']+): ([^']*)'/g))
        headers[name ?? ''] = value ?? ''
      return {
        method: /-X (\w+)/.exec(line)?.[1] ?? 'GET',
        url: /(http:\/\/\S+)/.exec(line)?.[1] ?? '',
        headers,
        body: /-d '([^']*)'/.exec(line)?.[1],
      }
    })
}

t.test(
  'npm run demo prints a token per seeded session, the simulator key and log-in, and curls that work',
  async (t) => {
    const dir = await tempDir(t)
    const child = fork(join(ROOT, 'src', 'demo.ts'), [], {
      cwd: dir,
      execArgv: ['--import', TSX],
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        SIMULATOR_PORT: '0',
        SHED_EVENT_LOOP_DELAY_MS: '60000',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    killOnTeardown(t, child)
    let printout = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        printout += chunk.toString()
        if (printout.includes('Ctrl-C stops both.')) resolve()
      })
      child.once('exit', (code) => reject(new Error(`the demo exited (${String(code)}) before printing`)))
    })

    const lines = printout.split('\n')
    for (const { interviewId } of SEEDED_SESSIONS) {
      const at = lines.findIndex((line) => line.trim().startsWith(interviewId))
      const token = /token: (\S+)/.exec(lines[at + 1] ?? '')?.[1]
      t.ok(token, `a session token is printed under ${interviewId}`)
      const gateway = /Image gateway\s+(\S+)/.exec(printout)?.[1] ?? ''
      const res = await fetch(`${gateway}/v1/session/image-links`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-incode-session-token': token ?? '' },
        body: JSON.stringify({ images: ['selfie'] }),
      })
      t.equal(res.status, 200, `the token of ${interviewId} is accepted`)
    }

    const simulatorUrl = /Incode simulator\s+(\S+)/.exec(printout)?.[1] ?? ''
    const apiKey = /API key\s+(\S+)\s+\(x-api-key, for the simulator/.exec(printout)?.[1]
    const login = /executive log-in\s+(\S+) \/ (\S+)/.exec(printout)
    t.ok(apiKey, "the simulator's API key is printed")
    t.ok(login, 'the executive log-in is printed')
    const loggedIn = await fetch(`${simulatorUrl}/executive/log-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey ?? '' },
      body: JSON.stringify({ email: login?.[1], password: login?.[2] }),
    })
    t.equal(loggedIn.status, 200, 'the printed key and log-in work against the simulator')

    const curls = curlsOf(printout)
    t.ok(curls.length >= 4, `several curls are printed (${curls.length})`)
    t.ok(
      curls.some((c) => c.url.includes('/omni/get/images') && c.headers['X-Incode-Hardware-Id']),
      'one is a drop-in call with X-Incode-Hardware-Id',
    )
    for (const curl of curls) {
      t.match(curl.url, /^http:\/\/127\.0\.0\.1:\d+\//, `${curl.url}: targets 127.0.0.1`)
      const res = await fetch(curl.url, {
        method: curl.method,
        headers: curl.headers,
        ...(curl.body === undefined ? {} : { body: curl.body }),
      })
      t.equal(res.status, 200, `${curl.method} ${new URL(curl.url).pathname} answers 200`)
      await res.arrayBuffer()
    }

    const exited = once(child, 'exit')
    child.kill('SIGINT')
    const [code] = (await exited) as [number | null]
    t.equal(code, 0, 'Ctrl-C stops the demo cleanly')
  },
)

const SMALL = SEEDED_INTERVIEW_IDS.small
const V1 = `/v1/sessions/${SMALL}/images`
const DROP_IN = '/omni/get/images'

function body(res: LightMyRequestResponse): { code?: string; detail?: string; message?: string } {
  return (parseJson(res.body) as { code?: string; detail?: string; message?: string } | undefined) ?? {}
}

t.test('bodies: JSON only, and each refusal says why', async (t) => {
  const { app, simulator, token } = await withToken(t)
  const v1 = (contentType: string, payload: string) =>
    app.inject({
      method: 'POST',
      url: V1,
      payload,
      headers: { ...partnerHeaders(), 'content-type': contentType },
    })
  const dropIn = (contentType: string, payload: string) =>
    app.inject({
      method: 'POST',
      url: DROP_IN,
      payload,
      headers: { 'content-type': contentType, 'x-incode-hardware-id': token },
    })

  for (const payload of [
    '{"__proto__":{"x":1},"images":["selfie"]}',
    '{"images":["selfie"],"constructor":{"prototype":{}}}',
  ]) {
    const res = await v1('application/json', payload)
    assertProblem(t, res, 400, 'BODY_FORBIDDEN_KEY', `${payload} on /v1`)
    t.match(body(res).detail, /__proto__.*refused/, 'the detail names the refused keys, not "not valid JSON"')
    const incode = await dropIn('application/json', payload)
    assertIncodeError(t, incode, 400, DROP_IN, `${payload} on the drop-in path`)
    t.match(body(incode).message, /__proto__.*refused/, "Incode's message names the refused keys")
  }
  const concatenated = await app.inject({
    method: 'POST',
    payload: '{"__proto__":{}}',
    url: `/v1/sessions/${SMALL}/images/concatenated`,
    headers: partnerHeaders(),
  })
  assertProblem(
    t,
    concatenated,
    400,
    'BODY_FORBIDDEN_KEY',
    'a __proto__ key on a route whose body is optional',
  )

  assertProblem(t, await v1('application/json', '{"images":'), 400, 'BODY_NOT_JSON', 'broken JSON')
  assertProblem(t, await v1('application/json', ''), 400, 'BODY_EMPTY', 'an empty JSON body')

  for (const [type, payload] of [
    ['text/plain', '{"images":["selfie"]}'],
    ['application/x-www-form-urlencoded', 'images=selfie'],
  ] as const) {
    const res = await v1(type, payload)
    assertProblem(t, res, 415, 'UNSUPPORTED_MEDIA_TYPE', `${type} on /v1`)
    t.match(body(res).detail, /application\/json/, `${type}: the detail names the expected type`)
    const incode = await dropIn(type, payload)
    assertIncodeError(t, incode, 415, DROP_IN, `${type} on the drop-in path`)
    t.match(body(incode).message, /application\/json/, `${type}: Incode's message names the expected type`)
  }

  const large = JSON.stringify({ images: ['selfie'], pad: 'x'.repeat(70_000) })
  assertProblem(t, await v1('application/json', large), 413, 'BODY_TOO_LARGE', 'a body over BODY_LIMIT_BYTES')
  t.equal(simulator.callsTo('images').length, 0, 'no refused body reached Incode')
})

t.test('a wrong method answers 405 with Allow, in the route family shape', async (t) => {
  const { app } = await build(t)
  const get = await app.inject({ method: 'GET', url: V1, headers: partnerHeaders() })
  assertProblem(t, get, 405, 'METHOD_NOT_ALLOWED', 'GET on a POST route')
  t.equal(get.headers.allow, 'POST', 'Allow: POST')

  const put = await app.inject({ method: 'PUT', url: `/v1/sessions/${SMALL}/image-links` })
  assertProblem(t, put, 405, 'METHOD_NOT_ALLOWED', 'PUT on the links route')
  t.equal(put.headers.allow, 'POST, DELETE', 'Allow lists both of its methods')

  for (const url of [DROP_IN, `/0${DROP_IN}`]) {
    const res = await app.inject({ method: 'GET', url })
    assertIncodeError(t, res, 405, url, `GET on ${url}`)
    t.equal(res.headers.allow, 'POST', `${url}: Allow: POST`)
  }

  const probe = await app.inject({ method: 'DELETE', url: '/healthz' })
  assertProblem(t, probe, 405, 'METHOD_NOT_ALLOWED', 'DELETE on /healthz')
  t.equal(probe.headers.allow, 'GET, HEAD', 'Allow: GET, HEAD')

  const unknown = await app.inject({ method: 'GET', url: '/v1/sessions/x/nothing' })
  assertProblem(t, unknown, 404, 'NOT_FOUND', 'an unknown path is still a 404')
})

t.test('Incode paths that are not served answer 404 naming those that are', async (t) => {
  const { app } = await build(t)
  for (const url of ['/omni/start', '/0/omni/start', '/executive/log-in', '/omni/get/nothing']) {
    const res = await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      payload: '{}',
    })
    assertIncodeError(t, res, 404, url, `POST ${url}`)
    const { message } = body(res)
    for (const served of [
      '/omni/get/images',
      '/omni/get/images/v2',
      '/omni/get/second-id/images',
      '/omni/get/concatenated-images',
    ])
      t.match(message, `POST ${served}`, `${url}: the message lists ${served}`)
    t.match(message, /each also under \/0/, `${url}: and their /0 forms`)
    t.match(message, /Call Incode directly/, `${url}: and says where the others go`)
  }

  const v1 = await app.inject({ method: 'GET', url: '/v1/nope' })
  assertProblem(t, v1, 404, 'NOT_FOUND', 'an unknown /v1 path')
  for (const route of [
    'POST /v1/sessions/{interviewId}/images',
    'POST /v1/session/images',
    'POST /v1/sessions/{interviewId}/image-links',
    'DELETE /v1/sessions/{interviewId}/image-links',
  ])
    t.match(body(v1).detail, route, `the /v1 404 lists ${route}`)
})

t.test("framework codes never leak: Fastify's refusals carry this service's codes", async (t) => {
  const { app } = await build(t)
  assertProblem(
    t,
    await app.inject({ method: 'GET', url: '/v1/sessions/%zz/images' }),
    400,
    'BAD_URL',
    'a bad URL',
  )
  const long = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${'a'.repeat(150)}/images`,
    headers: partnerHeaders(),
  })
  assertProblem(t, long, 414, 'PATH_SEGMENT_TOO_LONG', 'a path segment over 100 characters')
  const incode = await app.inject({ method: 'POST', url: `/omni/get/images%zz` })
  assertIncodeError(t, incode, 400, '/omni/get/images%zz', 'a bad URL on a drop-in path')
})

t.test('a 100k-character URL answers 431 in problem+json, and its bytes are never logged', async (t) => {
  let logged = ''
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged += chunk.toString()
      done()
    },
  })
  const { url } = await build(t, {
    listen: true,
    logStream,
    env: { LOG_LEVEL: 'trace' },
  })
  const secret = 'newcomer-secret-key-0123456789'
  for (const path of [`/v1/${'a'.repeat(100_000)}`, `/omni/get/images?id=${'b'.repeat(100_000)}`]) {
    const res = await fetch(`${url}${path}`, { headers: { 'x-api-key': secret } })
    const text = await res.text()
    assertProblem(
      t,
      { statusCode: res.status, headers: Object.fromEntries(res.headers), body: text },
      431,
      'HEADERS_TOO_LARGE',
      `a ${path.length}-character path`,
    )
    t.match(parseJson(text)?.detail, /shorten the URL/, 'the detail says what to do')
  }
  t.notMatch(logged, secret, 'the refused request bytes (with its key) are not in the log')
  t.notMatch(logged, 'aaaaaaaaaaaaaaaa', 'nor its URL')
  const health = await fetch(`${url}/healthz`)
  t.equal(health.status, 200, 'the service keeps answering')
})

/** An app, and a session token for the small seeded session (for the drop-in paths). */
async function withToken(t: Test) {
  const harness = await build(t)
  return { ...harness, token: harness.simulator.sessionToken(SMALL) }
}
