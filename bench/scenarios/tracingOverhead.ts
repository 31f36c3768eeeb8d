import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { autocannon } from '../lib/autocannon.js'
import { freePort, startChild, waitForStatus } from '../lib/procs.js'
import {
  call,
  REPO_DIR,
  serviceEnv,
  serviceHeaders,
  serviceSetup,
  stopServer,
  type Server,
} from '../lib/stack.js'
import { fmt, median, ratio, round } from '../lib/stats.js'
import {
  type Ctx,
  LINK_TYPES,
  type ScenarioResult,
  body,
  describeFailures,
  rotate,
  serviceLinksUrl,
} from './shared.js'

// ---- tracing: warm links with tracing off and on (issue 11) ---------------------------------

/** A sampled trace context from the caller, as a traced frontend would send it. */
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

/** A local OTLP/HTTP endpoint that reads and discards what it is sent. */
async function discardingOtlpSink(): Promise<{ url: string; exports: () => number; close: () => void }> {
  let exports = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      exports++
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, exports: () => exports, close: () => server.close() }
}

/** A fresh service process with `env` added (each contender starts alike, without the run's history). */
async function startTracedService(ctx: Ctx, name: string, env: Record<string, string>): Promise<Server> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = startChild(name, process.execPath, [serviceSetup.serverJs], {
    cwd: REPO_DIR,
    env: { ...serviceEnv(ctx.sim.url, port), ...env },
  })
  await waitForStatus(`${url}/readyz`, { timeoutMs: 20_000, child })
  return { name, child, url, pid: child.pid }
}

/**
 * The links-warm load (the linksWarm profile) against two fresh service processes side by side:
 * tracing off (the default) and on (OTEL_TRACES_EXPORTER=otlp, every request sampled, spans
 * batched to a local sink that discards them). Every request carries a sampled `traceparent`.
 */
export async function tracingOverhead(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.profile.linksWarm
  const payload = body(LINK_TYPES)
  const sink = await discardingOtlpSink()
  const off = await startTracedService(ctx, 'service-tracing-off', {})
  const on = await startTracedService(ctx, 'service-tracing-on', {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
  })
  try {
    const headers = { ...serviceHeaders(), traceparent: TRACEPARENT }
    const contenders = [
      { name: 'off', url: serviceLinksUrl(off.url) },
      { name: 'on', url: serviceLinksUrl(on.url) },
    ]
    for (const c of contenders) {
      await call({ method: 'POST', url: c.url, headers, body: payload })
      const second = await call({ method: 'POST', url: c.url, headers, body: payload })
      if (second.status !== 200 || second.headers['x-cache'] !== 'HIT')
        throw new Error(`tracing ${c.name}: the links answer was not cached (${second.status})`)
    }
    const rps: Record<string, number[]> = { off: [], on: [] }
    const p99: Record<string, number[]> = { off: [], on: [] }
    const problems: string[] = []
    for (let r = 0; r < p.rounds; r++) {
      for (const c of rotate(contenders, r)) {
        const res = await autocannon({
          url: c.url,
          method: 'POST',
          headers,
          body: payload,
          connections: p.connections,
          durationSec: p.durationSec,
        })
        rps[c.name]?.push(res.rps)
        p99[c.name]?.push(res.latency.p99)
        const failure = describeFailures(`tracing ${c.name}`, res)
        if (failure) problems.push(failure)
        ctx.progress(`tracing round ${r + 1}/${p.rounds}: ${c.name} ${fmt(res.rps, 0)} req/s`)
      }
    }
    if (sink.exports() === 0) problems.push('tracing on: no spans reached the OTLP sink')
    const offRps = median(rps.off ?? [])
    const onRps = median(rps.on ?? [])
    const r = ratio(onRps, offRps)
    const ok = problems.length === 0
    return {
      title: 'tracing, links warm',
      pass: ok,
      figures: {
        offRps: round(offRps, 0),
        onRps: round(onRps, 0),
        ratioOnToOff: round(r, 3),
        offP99Ms: median(p99.off ?? []),
        onP99Ms: median(p99.on ?? []),
        otlpExports: sink.exports(),
        connections: p.connections,
        rounds: p.rounds,
        durationSec: p.durationSec,
      },
      rows: [
        {
          scenario: 'tracing, links warm',
          measure: `req/s at ${p.connections} connections (median of ${p.rounds})`,
          service: `on ${fmt(onRps, 0)}`,
          comparison: `off ${fmt(offRps, 0)}`,
          ratio: `${fmt(r, 2)} × off`,
          target: 'measured (off is the default)',
          pass: ok,
        },
      ],
      details: { rps, p99, problems },
    }
  } finally {
    await stopServer(off)
    await stopServer(on)
    sink.close()
  }
}
