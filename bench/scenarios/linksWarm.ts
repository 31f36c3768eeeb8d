import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { loadConfig } from '../../src/config.js'
import { LINKS_EXAMPLE, imagesBody, InterviewParams } from '../../src/routes/v1/schemas.js'
import { ImageTypeSchema } from '../../src/schemas.js'
import {
  BENCH_API_KEY,
  call,
  serviceEnv,
  serviceHeaders,
  startScript,
  stopServer,
  type Server,
} from '../lib/stack.js'
import { fmt, median, ratio, round } from '../lib/stats.js'
import { groupCpuMs, pinGroup, wrk } from '../lib/wrk.js'
import {
  type Ctx,
  LINK_TYPES,
  type ScenarioResult,
  body,
  directHeaders,
  incodeLinksUrl,
  rotate,
  serviceLinksUrl,
} from './shared.js'

// ---- links, warm cache ----------------------------------------------------------------------

interface Contender {
  name: string
  /** The process group whose CPU time is charged to the contender's requests. */
  pid: number
  url: string
  headers: Record<string, string>
  cache?: 'nginx' | 'service'
}

/**
 * What the "Fastify + the same plugins" contender is started with: the service's own limits, log
 * level and request schemas (the links route's body and path, with the shared schema they refer
 * to), from the configuration the service is started with.
 */
function barePluginsEnv(ctx: Ctx, bodyFile: string): Record<string, string> {
  const config = loadConfig(serviceEnv(ctx.sim.url, 0))
  return {
    BODY_FILE: bodyFile,
    API_KEY_SHA256: createHash('sha256').update(BENCH_API_KEY).digest('hex'),
    RATE_LIMIT_MAX: String(config.RATE_LIMIT_MAX),
    RATE_LIMIT_WINDOW_MS: String(config.RATE_LIMIT_WINDOW_MS),
    LOG_LEVEL: config.LOG_LEVEL,
    SCHEMAS: JSON.stringify({
      shared: [ImageTypeSchema],
      body: imagesBody(config.MAX_IMAGES_PER_REQUEST, { example: LINKS_EXAMPLE }),
      params: InterviewParams,
    }),
  }
}

/**
 * wrk at 50 connections against nginx, the service, a bare Fastify route answering the service's
 * own answer bytes (the absolute ceiling of a Node service), the same route with the plugins every
 * request of the service must pay (rate limit, auth, security headers, metrics, request id, body
 * validation: the ceiling the target is read against), and the pass-through proxy; the service and
 * both Fastify routes under each runtime. wrk on one core, the servers on the other (two cores).
 */
export async function linksWarm(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.profile.linksWarm
  const payload = body(LINK_TYPES)
  // The service's warm answer, pre-serialised, is what the bare route answers.
  await call({
    method: 'POST',
    url: serviceLinksUrl(ctx.service.url),
    headers: serviceHeaders(),
    body: payload,
  })
  const warm = await call({
    method: 'POST',
    url: serviceLinksUrl(ctx.service.url),
    headers: serviceHeaders(),
    body: payload,
  })
  if (warm.status !== 200) throw new Error(`the service answered ${warm.status} to the links request`)
  const bodyFile = path.join(ctx.workDir, 'links-answer.json')
  writeFileSync(bodyFile, warm.body)

  const runtimes = [
    { suffix: '', runtime: ctx.runtime, service: ctx.service },
    ...(ctx.runtime24 && ctx.service24
      ? [{ suffix: ' (Node 24)', runtime: ctx.runtime24, service: ctx.service24 }]
      : []),
  ]
  const bares: Server[] = []
  try {
    const contenders: Contender[] = [
      {
        name: 'nginx',
        pid: ctx.nginx.child.pid,
        url: incodeLinksUrl(ctx.nginx.url),
        headers: directHeaders(ctx),
        cache: 'nginx',
      },
      {
        name: 'pass-through',
        pid: ctx.passThrough.pid,
        url: incodeLinksUrl(ctx.passThrough.url),
        headers: directHeaders(ctx),
      },
    ]
    for (const r of runtimes) {
      const bare = await startScript(
        `bare${r.suffix}`,
        ctx.scripts,
        'contenders/bare.ts',
        { BODY_FILE: bodyFile },
        '/ready',
        r.runtime.node,
      )
      bares.push(bare)
      const withPlugins = await startScript(
        `bare+plugins${r.suffix}`,
        ctx.scripts,
        'contenders/barePlugins.ts',
        barePluginsEnv(ctx, bodyFile),
        '/ready',
        r.runtime.node,
      )
      bares.push(withPlugins)
      contenders.push(
        {
          name: `service${r.suffix}`,
          pid: r.service.pid,
          url: serviceLinksUrl(r.service.url),
          headers: serviceHeaders(),
          cache: 'service',
        },
        { name: `bare${r.suffix}`, pid: bare.pid, url: serviceLinksUrl(bare.url), headers: serviceHeaders() },
        {
          name: `bare+plugins${r.suffix}`,
          pid: withPlugins.pid,
          url: serviceLinksUrl(withPlugins.url),
          headers: serviceHeaders(),
        },
      )
    }
    // Prime the caches and check that the second answer is a hit.
    for (const c of contenders) {
      await call({ method: 'POST', url: c.url, headers: c.headers, body: payload })
      const second = await call({ method: 'POST', url: c.url, headers: c.headers, body: payload })
      if (second.status !== 200) throw new Error(`${c.name} answered ${second.status} to the links request`)
      if (c.cache === 'nginx' && second.headers['x-cache-status'] !== 'HIT')
        throw new Error(
          `nginx did not cache the links answer (X-Cache-Status ${second.headers['x-cache-status']})`,
        )
      if (c.cache === 'service' && second.headers['x-cache'] !== 'HIT')
        throw new Error(`${c.name} did not cache the links answer (X-Cache ${second.headers['x-cache']})`)
    }
    const servers = [ctx.sim, ctx.nginx.child, ctx.passThrough, ...runtimes.map((r) => r.service), ...bares]
    for (const s of servers) pinGroup(s.pid, ctx.cores.serverCpus)

    const rps: Record<string, number[]> = Object.fromEntries(contenders.map((c) => [c.name, []]))
    const p99: Record<string, number[]> = Object.fromEntries(contenders.map((c) => [c.name, []]))
    // CPU time per answered request (µs): what the server spends on one request, much less moved by
    // other load on the machine than req/s.
    const cpuUs: Record<string, number[]> = Object.fromEntries(contenders.map((c) => [c.name, []]))
    const problems: string[] = []
    try {
      for (let round = 0; round < p.rounds; round++) {
        for (const c of rotate(contenders, round)) {
          const cpuBefore = groupCpuMs(c.pid)
          const res = await wrk(ctx.wrk, {
            url: c.url,
            method: 'POST',
            headers: c.headers,
            body: payload,
            connections: p.connections,
            durationSec: p.durationSec,
            cpus: ctx.cores.loadCpus,
            workDir: ctx.workDir,
          })
          const answered = res.requests - res.non2xx
          if (answered > 0) cpuUs[c.name]?.push(((groupCpuMs(c.pid) - cpuBefore) * 1000) / answered)
          rps[c.name]?.push(res.rps)
          p99[c.name]?.push(res.latency.p99)
          if (res.non2xx + res.errors + res.timeouts > 0)
            problems.push(
              `${c.name}: ${res.non2xx} non-2xx, ${res.errors} socket errors, ${res.timeouts} timeouts`,
            )
          ctx.progress(`links warm round ${round + 1}/${p.rounds}: ${c.name} ${fmt(res.rps, 0)} req/s`)
        }
      }
    } finally {
      for (const s of servers) pinGroup(s.pid, undefined)
    }

    const m = (name: string) => median(rps[name] ?? [])
    const cpu = (name: string) => median(cpuUs[name] ?? [])
    const nginx = m('nginx')
    const pass = m('pass-through')
    const pairs = runtimes.map((r) => {
      const service = m(`service${r.suffix}`)
      const bare = m(`bare${r.suffix}`)
      const plugins = m(`bare+plugins${r.suffix}`)
      return {
        ...r,
        service,
        bare,
        plugins,
        // The target's ratio: against the route under the same plugins.
        ratio: ratio(service, plugins),
        ratioBare: ratio(service, bare),
        serviceCpu: cpu(`service${r.suffix}`),
        bareCpu: cpu(`bare${r.suffix}`),
        pluginsCpu: cpu(`bare+plugins${r.suffix}`),
      }
    })
    // The target is set on the faster runtime (by the service's own figure).
    const best = pairs.reduce((a, b) => (b.service > a.service ? b : a))
    const ok = best.ratio >= 0.85 && problems.length === 0
    const figures: Record<string, number> = {
      serviceRps: round(m('service'), 0),
      bareRps: round(m('bare'), 0),
      nginxRps: round(nginx, 0),
      passThroughRps: round(pass, 0),
      barePluginsRps: round(m('bare+plugins'), 0),
      ratioServiceToBarePlugins: round(ratio(m('service'), m('bare+plugins')), 3),
      ratioServiceToBare: round(ratio(m('service'), m('bare')), 3),
      ratioServiceToNginx: round(ratio(m('service'), nginx), 3),
      ratioBareToNginx: round(ratio(m('bare'), nginx), 3),
      serviceCpuUsPerRequest: round(cpu('service'), 1),
      bareCpuUsPerRequest: round(cpu('bare'), 1),
      barePluginsCpuUsPerRequest: round(cpu('bare+plugins'), 1),
      nginxCpuUsPerRequest: round(cpu('nginx'), 1),
      serviceP99Ms: median(p99.service ?? []),
      nginxP99Ms: median(p99.nginx ?? []),
      connections: p.connections,
      rounds: p.rounds,
      durationSec: p.durationSec,
    }
    if (ctx.runtime24 && ctx.service24) {
      figures.service24Rps = round(m('service (Node 24)'), 0)
      figures.bare24Rps = round(m('bare (Node 24)'), 0)
      figures.service24CpuUsPerRequest = round(cpu('service (Node 24)'), 1)
      figures.bare24CpuUsPerRequest = round(cpu('bare (Node 24)'), 1)
      figures.ratioService24ToBare24 = round(ratio(m('service (Node 24)'), m('bare (Node 24)')), 3)
      figures.barePlugins24Rps = round(m('bare+plugins (Node 24)'), 0)
      figures.barePlugins24CpuUsPerRequest = round(cpu('bare+plugins (Node 24)'), 1)
      figures.ratioService24ToBarePlugins24 = round(
        ratio(m('service (Node 24)'), m('bare+plugins (Node 24)')),
        3,
      )
    }
    return {
      title: 'links, warm cache',
      pass: ok,
      figures,
      rows: pairs.map((pair) => {
        const counts = pair === best
        return {
          scenario: `links, warm cache, ${pair.runtime.label} ${pair.runtime.version}`,
          measure: `req/s at ${p.connections} connections (wrk, median of ${p.rounds} × ${p.durationSec} s)`,
          service: fmt(pair.service, 0),
          comparison: `Fastify + the same plugins, same bytes ${fmt(pair.plugins, 0)}; bare Fastify ${fmt(pair.bare, 0)} (${fmt(pair.ratioBare, 2)} ×); CPU per request ${fmt(pair.serviceCpu, 0)} µs vs plugins ${fmt(pair.pluginsCpu, 0)} µs (${fmt(ratio(pair.pluginsCpu, pair.serviceCpu), 2)} ×) vs bare ${fmt(pair.bareCpu, 0)} µs (${fmt(ratio(pair.bareCpu, pair.serviceCpu), 2)} ×); nginx ${fmt(nginx, 0)} (${fmt(ratio(pair.service, nginx), 2)} ×); pass-through (no cache) ${fmt(pass, 0)}`,
          ratio: `${fmt(pair.ratio, 2)} × plugins, ${fmt(pair.ratioBare, 2)} × bare`,
          target: counts ? '≥ 0.85 × Fastify + the same plugins' : '— (the other runtime is faster)',
          pass: counts ? ok : true,
        }
      }),
      details: { rps, p99, cpuUs, problems, cores: ctx.cores.description },
    }
  } finally {
    for (const bare of bares) await stopServer(bare)
  }
}
