import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startSimulator, SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { PARTNER_KEY, serviceProcessEnv } from '../helpers/build.js'
import { CALLER_TRACE_ID, CALLER_TRACEPARENT, parseTraceparent } from './fixtures.js'

const BUNDLE = 'dist/server.js'

t.test(
  'the bundled service traces when OTEL_TRACES_EXPORTER=otlp: traceparent passed on, spans exported over OTLP',
  { skip: existsSync(BUNDLE) ? false : `${BUNDLE} is not built` },
  async (t) => {
    // A local OTLP/HTTP sink: keeps what it is sent, answers 200.
    const exports: Array<{ path: string | undefined; type: string | undefined; body: Buffer }> = []
    const traceIdBytes = Buffer.from(CALLER_TRACE_ID, 'hex')
    const sink = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        exports.push({ path: req.url, type: req.headers['content-type'], body })
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
      })
    })
    sink.listen(0, '127.0.0.1')
    await once(sink, 'listening')
    t.teardown(() => sink.close())
    const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`

    const simulator = await startSimulator({ port: 0 })
    t.teardown(() => simulator.close())
    const child = fork(BUNDLE, [], {
      env: serviceProcessEnv(simulator, {
        NODE_ENV: 'production',
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl,
        OTEL_BSP_SCHEDULE_DELAY: '50',
      }),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    const [message] = (await once(child, 'message')) as [{ listening: AddressInfo }]
    const base = `http://127.0.0.1:${message.listening.port}`

    const links = await fetch(`${base}/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': PARTNER_KEY,
        traceparent: CALLER_TRACEPARENT,
      },
      body: JSON.stringify({ images: ['selfie'] }),
    })
    t.equal(links.status, 200, 'a links request is served')
    await links.arrayBuffer()

    const [call] = simulator.callsTo('imageLinks')
    t.equal(parseTraceparent(call?.traceparent)?.traceId, CALLER_TRACE_ID, "Incode got the caller's trace id")

    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const [code] = (await exited) as [number | null]
    t.equal(code, 0, 'SIGTERM: exit 0, once the last spans are exported')
    const [first] = exports
    t.equal(first?.path, '/v1/traces', 'spans are exported to the OTLP traces path')
    t.equal(first?.type, 'application/x-protobuf', 'as protobuf')
    const all = Buffer.concat(exports.map((e) => e.body))
    for (const name of ['request', 'links.cache_lookup', 'incode imageLinks', 'incode adminLogin']) {
      t.ok(all.includes(Buffer.from(name)), `a ${name} span is among them`)
    }

    t.ok(all.includes(traceIdBytes), "in the caller's trace")
  },
)
