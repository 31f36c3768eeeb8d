import { setTimeout as sleep } from 'node:timers/promises'

import type { ImageType } from '../../src/domain/imageTypes.js'
import { autocannon } from '../lib/autocannon.js'
import { sampleRss } from '../lib/procs.js'
import { call, serviceHeaders, startService, stopServer } from '../lib/stack.js'
import { fmt, round } from '../lib/stats.js'
import {
  type Ctx,
  GROWTH_FOUR,
  GROWTH_ORDER,
  MiB,
  type ScenarioResult,
  body,
  serviceImagesUrl,
} from './shared.js'

// ---- growth ---------------------------------------------------------------------------------

interface GrowthPoint {
  x: number
  /** What drives the cost: response bytes (image count) or concurrency. */
  driver: number
  answerMiB: number
  p50Ms: number
  p99Ms: number
  rps: number
  peakRssMiB: number
  ok: boolean
}

/**
 * "Roughly linear, no cliff": from one point to the next, latency and peak RSS grow at most twice
 * as fast as what drives them (answer bytes for the image count, concurrency for concurrency), or by
 * less than a small absolute step (5 ms, 20 MiB) that noise alone can make.
 */
function noCliff(points: GrowthPoint[]): { ok: boolean; why: string[] } {
  const why: string[] = []
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1] as GrowthPoint
    const b = points[i] as GrowthPoint
    const driverGrowth = b.driver / a.driver
    const latGrowth = b.p50Ms / a.p50Ms
    const rssGrowth = b.peakRssMiB / a.peakRssMiB
    if (latGrowth > 2 * driverGrowth && b.p50Ms - a.p50Ms > 5)
      why.push(`p50 ×${fmt(latGrowth, 1)} from ${a.x} to ${b.x} (driver ×${fmt(driverGrowth, 1)})`)
    if (rssGrowth > 2 * driverGrowth && b.peakRssMiB - a.peakRssMiB > 20)
      why.push(`RSS ×${fmt(rssGrowth, 1)} from ${a.x} to ${b.x} (driver ×${fmt(driverGrowth, 1)})`)
    if (!b.ok) why.push(`errors at ${b.x}`)
  }
  return { ok: why.length === 0, why }
}

async function growthPoint(
  ctx: Ctx,
  types: readonly ImageType[],
  connections: number,
): Promise<Omit<GrowthPoint, 'x' | 'driver'>> {
  const fresh = ctx.profile.growth.freshProcess
  const server = fresh ? await startService(ctx.sim.url) : ctx.service
  try {
    const payload = body(types)
    const warm = await call({
      method: 'POST',
      url: serviceImagesUrl(server.url),
      headers: serviceHeaders(),
      body: payload,
    })
    if (warm.status !== 200) throw new Error(`service answered ${warm.status}`)
    if (fresh) {
      // A new process: a second request with the sizes learned, then let it settle.
      await call({
        method: 'POST',
        url: serviceImagesUrl(server.url),
        headers: serviceHeaders(),
        body: payload,
      })
      await sleep(200)
    }
    const sampler = sampleRss(server.pid, 20)
    const res = await autocannon({
      url: serviceImagesUrl(server.url),
      method: 'POST',
      headers: serviceHeaders(),
      body: payload,
      connections,
      durationSec: ctx.profile.growth.durationSec,
      timeoutSec: 60,
    })
    const peak = sampler.stop()
    return {
      answerMiB: round(warm.body.length / MiB, 2),
      p50Ms: res.latency.p50,
      p99Ms: res.latency.p99,
      rps: round(res.rps, 1),
      peakRssMiB: round(peak.peakMiB, 1),
      ok: res.non2xx === 0 && res.errors === 0 && res.timeouts === 0 && res.ok2xx > 0,
    }
  } finally {
    if (fresh) await stopServer(server)
  }
}

function growthTable(title: string, xName: string, points: GrowthPoint[]): string[] {
  return [
    `**${title}**`,
    '',
    `| ${xName} | answer MiB | p50 ms | p99 ms | req/s | peak RSS MiB |`,
    '|---:|---:|---:|---:|---:|---:|',
    ...points.map(
      (pt) =>
        `| ${pt.x} | ${fmt(pt.answerMiB, 2)} | ${fmt(pt.p50Ms, 0)} | ${fmt(pt.p99Ms, 0)} | ${fmt(pt.rps, 1)} | ${fmt(pt.peakRssMiB, 0)}${pt.ok ? '' : ' (errors)'} |`,
    ),
  ]
}

export async function growth(ctx: Ctx): Promise<ScenarioResult> {
  const g = ctx.profile.growth
  const byCount: GrowthPoint[] = []
  for (const count of g.imageCounts) {
    const types = GROWTH_ORDER.slice(0, count)
    const pt = await growthPoint(ctx, types, 1)
    byCount.push({ x: count, driver: pt.answerMiB, ...pt })
    ctx.progress(
      `growth by image count: ${count} types, ${fmt(pt.answerMiB, 1)} MiB: p50 ${pt.p50Ms} ms, peak RSS ${fmt(pt.peakRssMiB, 0)} MiB`,
    )
  }
  const byConcurrency: GrowthPoint[] = []
  for (const c of g.concurrencies) {
    const pt = await growthPoint(ctx, GROWTH_FOUR, c)
    byConcurrency.push({ x: c, driver: c, ...pt })
    ctx.progress(
      `growth by concurrency: ${c}: p50 ${pt.p50Ms} ms, ${fmt(pt.rps, 0)} req/s, peak RSS ${fmt(pt.peakRssMiB, 0)} MiB`,
    )
  }
  const a = noCliff(byCount)
  const b = noCliff(byConcurrency)
  const ok = a.ok && b.ok
  const figures: Record<string, number> = {}
  for (const pt of byCount) {
    figures[`types${pt.x}P50Ms`] = pt.p50Ms
    figures[`types${pt.x}PeakRssMiB`] = pt.peakRssMiB
  }
  for (const pt of byConcurrency) {
    figures[`concurrency${pt.x}P50Ms`] = pt.p50Ms
    figures[`concurrency${pt.x}PeakRssMiB`] = pt.peakRssMiB
  }
  const last = (xs: GrowthPoint[]) => xs[xs.length - 1] as GrowthPoint
  const first = (xs: GrowthPoint[]) => xs[0] as GrowthPoint
  return {
    title: 'growth',
    pass: ok,
    figures,
    rows: [
      {
        scenario: 'growth by image count (concurrency 1)',
        measure: `p50 latency and peak RSS at ${g.imageCounts.join(', ')} types`,
        service: `${byCount.map((p) => fmt(p.p50Ms, 0)).join(' / ')} ms; ${byCount.map((p) => fmt(p.peakRssMiB, 0)).join(' / ')} MiB`,
        comparison: `answer ${byCount.map((p) => fmt(p.answerMiB, 1)).join(' / ')} MiB`,
        ratio: `p50 ×${fmt(last(byCount).p50Ms / first(byCount).p50Ms, 1)} for bytes ×${fmt(last(byCount).answerMiB / first(byCount).answerMiB, 1)}`,
        target: 'roughly linear, no cliff',
        pass: a.ok,
      },
      {
        scenario: `growth by concurrency (${GROWTH_FOUR.length} types)`,
        measure: `p50 latency and peak RSS at ${g.concurrencies.join(', ')} connections`,
        service: `${byConcurrency.map((p) => fmt(p.p50Ms, 0)).join(' / ')} ms; ${byConcurrency.map((p) => fmt(p.peakRssMiB, 0)).join(' / ')} MiB`,
        comparison: `${byConcurrency.map((p) => fmt(p.rps, 0)).join(' / ')} req/s`,
        ratio: `p50 ×${fmt(last(byConcurrency).p50Ms / first(byConcurrency).p50Ms, 1)} for concurrency ×${fmt(last(byConcurrency).x / first(byConcurrency).x, 0)}`,
        target: 'roughly linear, no cliff',
        pass: b.ok,
      },
    ],
    tables: [
      ...growthTable(
        `Growth by image count (concurrency 1; types added: ${GROWTH_ORDER.join(', ')})`,
        'types',
        byCount,
      ),
      '',
      ...growthTable(`Growth by concurrency (${GROWTH_FOUR.join(', ')})`, 'connections', byConcurrency),
    ],
    details: { byCount, byConcurrency, cliffs: [...a.why, ...b.why] },
  }
}
