import { setTimeout as sleep } from 'node:timers/promises'

import { autocannon } from '../lib/autocannon.js'
import { readMemory, sampleRss } from '../lib/procs.js'
import {
  call,
  serviceHeaders,
  splitContenderEnv,
  startScript,
  startService,
  stopServer,
  type Server,
} from '../lib/stack.js'
import { fmt, median, ratio, round } from '../lib/stats.js'
import {
  ALL_TYPES,
  type Ctx,
  MiB,
  type ScenarioResult,
  body,
  describeFailures,
  observeServiceChunks,
  serviceImagesUrl,
} from './shared.js'

// ---- memory: 50 concurrent full-set requests ------------------------------------------------

/** Issue 9's line for 50 concurrent full sets, in MB (10^6 bytes): 190.7 MiB. */
const LIMIT_MB = 200

async function fullSetOnce(server: Server): Promise<number> {
  const res = await call({
    method: 'POST',
    url: serviceImagesUrl(server.url),
    headers: serviceHeaders(),
    body: body(ALL_TYPES),
  })
  if (res.status !== 200)
    throw new Error(`${server.name} answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`)
  const parsed = JSON.parse(res.body.toString('utf8')) as { images: Record<string, string> }
  const n = Object.keys(parsed.images).length
  if (n !== ALL_TYPES.length) throw new Error(`${server.name} answered ${n}/${ALL_TYPES.length} images`)
  return res.body.length
}

export async function memory(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.profile.memory
  if (!ctx.serviceChunks || ctx.serviceChunks.length === 0) {
    // Warm the run's service twice: the second request is planned with the sizes it learned.
    await observeServiceChunks(ctx)
    await observeServiceChunks(ctx)
  }
  const chunks = ctx.serviceChunks ?? []
  const peaks: Record<string, number[]> = { service: [], 'buffer-everything': [] }
  const baselines: Record<string, number[]> = { service: [], 'buffer-everything': [] }
  const problems: string[] = []
  let resetWorked = true
  const amount = p.concurrency * p.requestsPerConnection
  for (let r = 0; r < p.rounds; r++) {
    const order = r % 2 === 0 ? ['service', 'buffer-everything'] : ['buffer-everything', 'service']
    for (const name of order) {
      const reuse = name === 'service' && !p.freshProcess
      const server =
        name === 'service'
          ? reuse
            ? ctx.service
            : await startService(ctx.sim.url)
          : await startScript(
              'buffer-everything',
              ctx.scripts,
              'contenders/bufferAll.ts',
              splitContenderEnv(ctx.sim.url, chunks),
              '/readyz',
            )
      try {
        // Two requests: the service learns the image sizes (its plan), both warm their code paths.
        await fullSetOnce(server)
        await fullSetOnce(server)
        await sleep(300)
        baselines[name]?.push((readMemory(server.pid)?.rssKiB ?? 0) / 1024)
        const sampler = sampleRss(server.pid, 20)
        const res = await autocannon({
          url: serviceImagesUrl(server.url),
          method: 'POST',
          headers: serviceHeaders(),
          body: body(ALL_TYPES),
          connections: p.concurrency,
          amount,
          timeoutSec: 120,
        })
        const peak = sampler.stop()
        resetWorked &&= peak.peakResetWorked
        peaks[name]?.push(peak.peakMiB)
        const failure = describeFailures(name, res)
        if (failure) problems.push(failure)
        if (!server.child.isRunning()) problems.push(`${name} died during the burst`)
        ctx.progress(
          `memory round ${r + 1}/${p.rounds}: ${name} peak RSS ${fmt(peak.peakMiB, 0)} MiB (${res.ok2xx}/${amount} ok, p50 ${res.latency.p50} ms)`,
        )
      } finally {
        if (!reuse) await stopServer(server)
      }
    }
  }
  const service = median(peaks.service ?? [])
  const buffer = median(peaks['buffer-everything'] ?? [])
  const r = ratio(service, buffer)
  // Issue 9: peak RSS ≤ 200 MB (10^6 bytes); the figures are in MiB.
  const serviceMB = (service * MiB) / 1e6
  const okAbs = serviceMB <= LIMIT_MB && problems.filter((x) => x.startsWith('service')).length === 0
  const okRel = service < buffer
  return {
    title: 'base64, 50 concurrent full sets: memory',
    pass: okAbs && okRel,
    figures: {
      servicePeakRssMiB: round(service, 1),
      servicePeakRssMB: round(serviceMB, 1),
      limitMB: LIMIT_MB,
      bufferEverythingPeakRssMiB: round(buffer, 1),
      ratioServiceToBuffer: round(r, 3),
      serviceBaselineRssMiB: round(median(baselines.service ?? []), 1),
      bufferBaselineRssMiB: round(median(baselines['buffer-everything'] ?? []), 1),
      concurrency: p.concurrency,
      requests: amount,
      rounds: p.rounds,
    },
    rows: [
      {
        scenario: `base64, ${p.concurrency} concurrent full-set requests (${amount} in all)`,
        measure: `peak RSS of the process (VmHWM / VmRSS every 20 ms; median of ${p.rounds})`,
        service: `${fmt(service, 0)} MiB (${fmt(serviceMB, 0)} MB)`,
        comparison: `buffer-everything ${fmt(buffer, 0)} MiB`,
        ratio: `${fmt(r, 2)} ×`,
        target: `≤ ${LIMIT_MB} MB (${fmt((LIMIT_MB * 1e6) / MiB, 0)} MiB) and < buffer-everything`,
        pass: okAbs && okRel,
      },
    ],
    details: { peaks, baselines, problems, chunks, peakResetWorked: resetWorked },
  }
}
