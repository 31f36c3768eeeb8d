import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { autocannon } from '../lib/autocannon.js'
import path from 'node:path'
import { freePort, runToEnd, startChild, waitForStatus } from '../lib/procs.js'
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

/** Tracing off against no tracing code: a ratio at or above this is within the bench's own noise. */
const OFF_FLOOR = 0.95

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

/** Where `scripts/bundle.ts --untraced` writes the build with no tracing code (git-ignored dist/). */
const UNTRACED_DIR = path.join(REPO_DIR, 'dist', 'untraced')

/** The service bundled with its span helpers replaced by inert ones (bench/lib/untracedSpans.ts). */
async function buildUntraced(ctx: Ctx): Promise<string> {
  ctx.progress('tracing: bundling the service without tracing code (scripts/bundle.ts --untraced)')
  const tsx = path.join(REPO_DIR, 'node_modules', 'tsx', 'dist', 'cli.mjs')
  await runToEnd(
    'bundle-untraced',
    process.execPath,
    [tsx, 'scripts/bundle.ts', '--untraced', UNTRACED_DIR],
    {
      cwd: REPO_DIR,
      timeoutMs: 120_000,
    },
  )
  return path.join(UNTRACED_DIR, 'server.js')
}

/** A fresh service process with `env` added (each contender starts alike, without the run's history). */
async function startTracedService(
  ctx: Ctx,
  name: string,
  env: Record<string, string>,
  serverJs: string = serviceSetup.serverJs,
): Promise<Server> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = startChild(name, process.execPath, [serverJs], {
    cwd: REPO_DIR,
    env: { ...serviceEnv(ctx.sim.url, port), ...env },
  })
  await waitForStatus(`${url}/readyz`, { timeoutMs: 20_000, child })
  return { name, child, url, pid: child.pid }
}

/**
 * The links-warm load (the linksWarm profile) against three fresh service processes side by side:
 * tracing off (the default), on (OTEL_TRACES_EXPORTER=otlp, every request sampled, spans batched
 * to a local sink that discards them), and the same code bundled with no tracing code at all (the
 * service's span helpers replaced by inert ones: the service before issue 11, as far as tracing
 * goes), so that "off costs nothing measurable" is a ratio of one run. Every request carries a
 * sampled `traceparent`.
 */
export async function tracingOverhead(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.profile.linksWarm
  const payload = body(LINK_TYPES)
  const untracedJs = await buildUntraced(ctx)
  const sink = await discardingOtlpSink()
  const off = await startTracedService(ctx, 'service-tracing-off', {})
  const untraced = await startTracedService(ctx, 'service-untraced', {}, untracedJs)
  const on = await startTracedService(ctx, 'service-tracing-on', {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
  })
  try {
    const headers = { ...serviceHeaders(), traceparent: TRACEPARENT }
    const contenders = [
      { name: 'off', url: serviceLinksUrl(off.url) },
      { name: 'on', url: serviceLinksUrl(on.url) },
      { name: 'untraced', url: serviceLinksUrl(untraced.url) },
    ]
    for (const c of contenders) {
      await call({ method: 'POST', url: c.url, headers, body: payload })
      const second = await call({ method: 'POST', url: c.url, headers, body: payload })
      if (second.status !== 200 || second.headers['x-cache'] !== 'HIT')
        throw new Error(`tracing ${c.name}: the links answer was not cached (${second.status})`)
    }
    const rps: Record<string, number[]> = { off: [], on: [], untraced: [] }
    const p99: Record<string, number[]> = { off: [], on: [], untraced: [] }
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
    const untracedRps = median(rps.untraced ?? [])
    const r = ratio(onRps, offRps)
    const offToUntraced = ratio(offRps, untracedRps)
    // "Nothing measurable": off within the run's own noise of the build without tracing code.
    const offOk = offToUntraced >= OFF_FLOOR
    const ok = problems.length === 0
    return {
      title: 'tracing, links warm',
      pass: ok && offOk,
      figures: {
        offRps: round(offRps, 0),
        onRps: round(onRps, 0),
        untracedRps: round(untracedRps, 0),
        ratioOnToOff: round(r, 3),
        ratioOffToUntraced: round(offToUntraced, 3),
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
        {
          scenario: 'tracing, links warm',
          measure: `req/s at ${p.connections} connections (median of ${p.rounds})`,
          service: `off ${fmt(offRps, 0)}`,
          comparison: `the same service bundled with no tracing code (span helpers inert) ${fmt(untracedRps, 0)}`,
          ratio: `${fmt(offToUntraced, 2)} × untraced`,
          target: `off ≥ ${fmt(OFF_FLOOR, 2)} × untraced (nothing measurable)`,
          pass: ok && offOk,
        },
      ],
      details: { rps, p99, problems },
    }
  } finally {
    await stopServer(off)
    await stopServer(on)
    await stopServer(untraced)
    sink.close()
  }
}
