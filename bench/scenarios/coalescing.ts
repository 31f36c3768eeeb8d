import { request } from 'undici'
import { autocannon } from '../lib/autocannon.js'
import { call, clearSimCalls, serviceHeaders, simCalls, type Server } from '../lib/stack.js'
import { fmt, median } from '../lib/stats.js'
import {
  type Ctx,
  LINK_TYPES,
  type ScenarioResult,
  body,
  describeFailures,
  serviceLinksUrl,
} from './shared.js'

// ---- coalescing: 200 concurrent identical cold link requests --------------------------------

async function coalescedWaits(service: Server): Promise<number | undefined> {
  try {
    const res = await request(`${service.url}/metrics`, {
      headers: { 'x-api-key': serviceHeaders()['x-api-key'] as string },
    })
    const text = await res.body.text()
    if (res.statusCode !== 200) return undefined
    const match = /^gateway_link_cache_coalesced_waits_total(?:\{[^}]*\})? (\d+(?:\.\d+)?)/m.exec(text)
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

export async function coalescing(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.profile.coalescing
  const counts: number[] = []
  const waited: number[] = []
  const problems: string[] = []
  for (let r = 0; r < p.rounds; r++) {
    const del = await call({
      method: 'DELETE',
      url: serviceLinksUrl(ctx.service.url),
      headers: { 'x-api-key': serviceHeaders()['x-api-key'] as string },
    })
    if (del.status !== 200) throw new Error(`DELETE of the cached links answered ${del.status}`)
    await clearSimCalls(ctx.sim.url)
    const before = await coalescedWaits(ctx.service)
    const res = await autocannon({
      url: serviceLinksUrl(ctx.service.url),
      method: 'POST',
      headers: serviceHeaders(),
      body: body(LINK_TYPES),
      connections: p.concurrency,
      amount: p.concurrency,
    })
    const calls = await simCalls(ctx.sim.url, 'imageLinks')
    const after = await coalescedWaits(ctx.service)
    counts.push(calls.length)
    if (before !== undefined && after !== undefined) waited.push((after - before) / LINK_TYPES.length)
    const failure = describeFailures('service', res)
    if (failure) problems.push(failure)
    ctx.progress(
      `coalescing round ${r + 1}/${p.rounds}: ${res.ok2xx}/${p.concurrency} answered, ${calls.length} upstream call(s)`,
    )
  }
  const worst = Math.max(...counts)
  const ok = counts.every((c) => c === 1) && problems.length === 0
  const waitedNote =
    waited.length > 0
      ? `: 1 made the call, ${fmt(median(waited), 0)} waited on it (coalesced), ${fmt(p.concurrency - 1 - median(waited), 0)} came after it and were cache hits (service metrics)`
      : ''
  return {
    title: 'coalescing',
    pass: ok,
    figures: {
      upstreamCalls: worst,
      upstreamCallsMin: Math.min(...counts),
      requests: p.concurrency,
      rounds: p.rounds,
      ...(waited.length > 0 ? { coalescedRequestsMedian: median(waited) } : {}),
    },
    rows: [
      {
        scenario: `${p.concurrency} concurrent identical link requests, cold`,
        measure: `upstream imageLinks calls (simulator call log; ${p.rounds} round(s))`,
        service: counts.join(', '),
        comparison: `${p.concurrency} requests${waitedNote}`,
        ratio: '—',
        target: 'exactly 1',
        pass: ok,
      },
    ],
    details: { counts, coalescedRequests: waited, problems },
  }
}
