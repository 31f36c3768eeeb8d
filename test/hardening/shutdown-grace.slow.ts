import { fork } from 'node:child_process'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { SEEDED_INTERVIEW_IDS, startSimulator } from '../../src/simulator/index.js'
import { PARTNER_KEY, serviceProcessEnv } from '../helpers/build.js'
import { incodeFlaw, parseJson, problemFlaw, sleep } from './helpers.js'
import { recordingProxy } from './proxy.js'

/**
 * SIGTERM while requests need longer than SHUTDOWN_GRACE_MS: at the end of the grace they get an
 * answer (503 with Retry-After) instead of a closed socket, and the process exits 0, since those
 * requests were its only reason not to have closed.
 */

interface Answer {
  statusCode: number
  headers: Record<string, string>
  body: string
}

/** The answer to a request, or the reason there was none (a socket closed without one). */
async function answerOf(pending: Promise<Response>): Promise<Answer | Error> {
  try {
    const response = await pending
    return {
      statusCode: response.status,
      headers: Object.fromEntries(response.headers),
      body: await response.text(),
    }
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err))
  }
}

function failure(answer: Answer | Error): string {
  return answer instanceof Error ? ` (not: ${answer.message})` : ''
}

t.test('requests outlasting the grace are answered 503 with Retry-After; exit 0', async (t) => {
  // Incode takes a minute: far beyond the grace, well within the upstream timeouts.
  const simulator = await startSimulator({ port: 0, latency: { fixedMs: 60_000, perMiBMs: 0 } })
  t.teardown(() => simulator.close())
  // The simulator records a call once it has answered: the proxy shows the calls under way.
  const proxy = await recordingProxy(t)
  proxy.target = simulator.url
  const imageCalls = () => proxy.seen.filter((call) => call.url.includes('/omni/get/images')).length
  const child = fork('src/server.ts', [], {
    execArgv: ['--import', 'tsx'],
    env: serviceProcessEnv(simulator, {
      INCODE_BASE_URL: proxy.url,
      SHUTDOWN_GRACE_MS: '500',
      // A loaded machine must not get the requests shed before they reach Incode.
      SHED_EVENT_LOOP_DELAY_MS: '600000',
      UPSTREAM_HEADERS_TIMEOUT_MS: '120000',
      REQUEST_DEADLINE_MS: '120000',
    }),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const [message] = (await once(child, 'message')) as [{ listening: AddressInfo }]
  const base = `http://127.0.0.1:${message.listening.port}`
  const token = simulator.sessionToken(SEEDED_INTERVIEW_IDS.small)

  const v1 = answerOf(
    fetch(`${base}/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
      body: JSON.stringify({ images: ['selfie'] }),
    }),
  )
  const dropIn = answerOf(
    fetch(`${base}/0/omni/get/images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-incode-hardware-id': token },
      body: JSON.stringify({ images: ['selfie'] }),
    }),
  )
  // Both requests wait on Incode before the signal is sent.
  for (let i = 0; i < 3000 && imageCalls() < 2; i++) await sleep(20)
  t.equal(imageCalls(), 2, 'both requests are waiting on Incode when the signal is sent')
  const exited = once(child, 'exit')
  child.kill('SIGTERM')

  const v1Answer = await v1
  t.notOk(v1Answer instanceof Error, `the /v1 request got an answer${failure(v1Answer)}`)
  if (!(v1Answer instanceof Error)) {
    t.equal(v1Answer.statusCode, 503, '/v1: 503')
    t.equal(v1Answer.headers['retry-after'], '1', '/v1: with Retry-After')
    t.equal(problemFlaw(v1Answer), undefined, '/v1: a problem+json body')
    t.equal(parseJson(v1Answer.body)?.code, 'SHUTTING_DOWN', '/v1: code SHUTTING_DOWN')
  }
  const dropInAnswer = await dropIn
  t.notOk(dropInAnswer instanceof Error, `the drop-in request got an answer${failure(dropInAnswer)}`)
  if (!(dropInAnswer instanceof Error)) {
    t.equal(dropInAnswer.statusCode, 503, 'drop-in: 503')
    t.equal(dropInAnswer.headers['retry-after'], '1', 'drop-in: with Retry-After')
    t.equal(incodeFlaw(dropInAnswer), undefined, "drop-in: Incode's error body")
  }

  const [code] = (await exited) as [number | null]
  t.equal(code, 0, 'the process exited 0: the late requests were its only problem')
})
