import { fork } from 'node:child_process'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startSimulator, SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { PARTNER_KEY, serviceProcessEnv } from '../helpers/build.js'

t.test('SIGTERM: stop accepting, finish in-flight requests, exit 0', async (t) => {
  const simulator = await startSimulator({ port: 0, latency: { fixedMs: 1_500, perMiBMs: 0 } })
  t.teardown(() => simulator.close())
  const child = fork('src/server.ts', [], {
    execArgv: ['--import', 'tsx'],
    env: serviceProcessEnv(simulator, { SHUTDOWN_GRACE_MS: '10000' }),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const [message] = (await once(child, 'message')) as [{ listening: AddressInfo }]
  const base = `http://127.0.0.1:${message.listening.port}`

  // A request that spends ~1.5 s upstream, in flight when SIGTERM arrives.
  const inFlight = fetch(`${base}/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/images`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY },
    body: JSON.stringify({ images: ['selfie'] }),
  })
  // Bounded for a hang only (30 s): a busy machine may take long to get the call through.
  for (let i = 0; i < 1_500 && simulator.callsTo('images').length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(simulator.callsTo('images').length, 1, 'the request reached Incode before the signal')
  const exited = once(child, 'exit')
  child.kill('SIGTERM')

  const response = await inFlight
  t.equal(response.status, 200, 'the in-flight request finished normally')
  const body = (await response.json()) as { images: Record<string, string> }
  t.ok(body.images.selfie, 'with its image')

  const [code] = (await exited) as [number | null]
  t.equal(code, 0, 'the process exited 0 after draining')
  await t.rejects(fetch(`${base}/healthz`), 'no longer accepting connections')
})
