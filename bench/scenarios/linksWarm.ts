import { autocannon } from '../lib/autocannon.js'
import { call, serviceHeaders } from '../lib/stack.js'
import { fmt, median, ratio, round } from '../lib/stats.js'
import {
  type Ctx,
  LINK_TYPES,
  type ScenarioResult,
  body,
  describeFailures,
  directHeaders,
  incodeLinksUrl,
  rotate,
  serviceLinksUrl,
} from './shared.js'

// ---- links, warm cache ----------------------------------------------------------------------

export async function linksWarm(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.profile.linksWarm
  const payload = body(LINK_TYPES)
  const contenders = [
    { name: 'nginx', url: incodeLinksUrl(ctx.nginx.url), headers: directHeaders(ctx) },
    { name: 'service', url: serviceLinksUrl(ctx.service.url), headers: serviceHeaders() },
    { name: 'pass-through', url: incodeLinksUrl(ctx.passThrough.url), headers: directHeaders(ctx) },
  ]
  // Prime both caches and check that the second answer is a hit.
  for (const c of contenders) {
    await call({ method: 'POST', url: c.url, headers: c.headers, body: payload })
    const second = await call({ method: 'POST', url: c.url, headers: c.headers, body: payload })
    if (second.status !== 200) throw new Error(`${c.name} answered ${second.status} to the links request`)
    if (c.name === 'nginx' && second.headers['x-cache-status'] !== 'HIT')
      throw new Error(
        `nginx did not cache the links answer (X-Cache-Status ${second.headers['x-cache-status']})`,
      )
    if (c.name === 'service' && second.headers['x-cache'] !== 'HIT')
      throw new Error(`the service did not cache the links answer (X-Cache ${second.headers['x-cache']})`)
  }
  const rps: Record<string, number[]> = { nginx: [], service: [], 'pass-through': [] }
  const p99: Record<string, number[]> = { nginx: [], service: [], 'pass-through': [] }
  const problems: string[] = []
  for (let r = 0; r < p.rounds; r++) {
    for (const c of rotate(contenders, r)) {
      const res = await autocannon({
        url: c.url,
        method: 'POST',
        headers: c.headers,
        body: payload,
        connections: p.connections,
        durationSec: p.durationSec,
      })
      rps[c.name]?.push(res.rps)
      p99[c.name]?.push(res.latency.p99)
      const failure = describeFailures(c.name, res)
      if (failure) problems.push(failure)
      ctx.progress(`links warm round ${r + 1}/${p.rounds}: ${c.name} ${fmt(res.rps, 0)} req/s`)
    }
  }
  const service = median(rps.service ?? [])
  const nginx = median(rps.nginx ?? [])
  const pass = median(rps['pass-through'] ?? [])
  const r = ratio(service, nginx)
  const ok = r >= 0.75 && problems.length === 0
  return {
    title: 'links, warm cache',
    pass: ok,
    figures: {
      serviceRps: round(service, 0),
      nginxRps: round(nginx, 0),
      passThroughRps: round(pass, 0),
      ratioServiceToNginx: round(r, 3),
      serviceP99Ms: median(p99.service ?? []),
      nginxP99Ms: median(p99.nginx ?? []),
      connections: p.connections,
      rounds: p.rounds,
      durationSec: p.durationSec,
    },
    rows: [
      {
        scenario: 'links, warm cache',
        measure: `req/s at ${p.connections} connections (median of ${p.rounds})`,
        service: fmt(service, 0),
        comparison: `nginx ${fmt(nginx, 0)}; pass-through (no cache) ${fmt(pass, 0)}`,
        ratio: `${fmt(r, 2)} × nginx`,
        target: '≥ 0.75 × nginx',
        pass: ok,
      },
    ],
    details: { rps, p99, problems },
  }
}
