import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { IMAGE_TYPE_INFO, IMAGE_TYPES, type ImageType } from '../src/domain/imageTypes.js'
import { autocannon, type CannonResult } from './lib/autocannon.js'
import type { NginxInstance } from './lib/nginx.js'
import { readMemory, sampleRss } from './lib/procs.js'
import type { HttpCall, LoopTask } from './lib/protocol.js'
import type { ChildScript } from './lib/scripts.js'
import {
  call,
  clearSimCalls,
  FULL_INTERVIEW,
  runLoop,
  serviceHeaders,
  SIM_ADMIN_EMAIL,
  SIM_ADMIN_PASSWORD,
  SIM_API_KEY,
  simCalls,
  startScript,
  startService,
  stopServer,
  type LatencyModel,
  type Server,
  type SimCall,
} from './lib/stack.js'
import { fmt, fmtSigned, median, percentile, ratio, round } from './lib/stats.js'

// ---- what every scenario gets and gives -----------------------------------------------------

export interface Profile {
  name: 'full' | 'quick'
  linksWarm: { rounds: number; durationSec: number; connections: number }
  linksCold: { warmupRounds: number; rounds: number }
  base64: { warmupRounds: number; rounds: number }
  /** freshProcess: new processes per round (clean RSS); else the run's service is reused, peak reset. */
  memory: { rounds: number; concurrency: number; requestsPerConnection: number; freshProcess: boolean }
  coalescing: { rounds: number; concurrency: number }
  /** freshProcess: a new service process per point (clean RSS); else the run's service, peak reset per point. */
  growth: { durationSec: number; imageCounts: number[]; concurrencies: number[]; freshProcess: boolean }
  coldStart: { starts: number }
}

export const FULL_PROFILE: Profile = {
  name: 'full',
  linksWarm: { rounds: 5, durationSec: 5, connections: 50 },
  linksCold: { warmupRounds: 30, rounds: 500 },
  base64: { warmupRounds: 2, rounds: 9 },
  memory: { rounds: 3, concurrency: 50, requestsPerConnection: 2, freshProcess: true },
  coalescing: { rounds: 3, concurrency: 200 },
  growth: { durationSec: 5, imageCounts: [1, 4, 8, 14], concurrencies: [1, 10, 50, 100], freshProcess: true },
  coldStart: { starts: 5 },
}

export const QUICK_PROFILE: Profile = {
  name: 'quick',
  linksWarm: { rounds: 1, durationSec: 1, connections: 50 },
  linksCold: { warmupRounds: 5, rounds: 25 },
  base64: { warmupRounds: 1, rounds: 2 },
  memory: { rounds: 1, concurrency: 10, requestsPerConnection: 1, freshProcess: false },
  coalescing: { rounds: 1, concurrency: 200 },
  growth: {
    durationSec: 1,
    imageCounts: [1, 4, 8, 14],
    concurrencies: [1, 10, 50, 100],
    freshProcess: false,
  },
  coldStart: { starts: 1 },
}

export interface Ctx {
  profile: Profile
  scripts: Map<ChildScript, string>
  workDir: string
  latency: LatencyModel
  sim: Server
  service: Server
  passThrough: Server
  nginx: NginxInstance
  adminToken: string
  progress: (message: string) => void
  /** The chunk lists the service sent upstream for the full set (base64 scenario → memory scenario). */
  serviceChunks?: string[][]
}

/** One line of the results table. */
export interface Row {
  scenario: string
  measure: string
  service: string
  comparison: string
  ratio: string
  target: string
  pass: boolean
}

export interface ScenarioResult {
  title: string
  pass: boolean
  /** Every figure is a number (the test checks it), in ms, MiB, req/s or counts as named. */
  figures: Record<string, number>
  rows: Row[]
  /** Extra tables (markdown lines), e.g. growth. */
  tables?: string[]
  details?: Record<string, unknown>
}

// ---- the requests ---------------------------------------------------------------------------

export const ALL_TYPES: readonly ImageType[] = IMAGE_TYPES
export const LINK_TYPES: readonly ImageType[] = IMAGE_TYPES.filter((t) => IMAGE_TYPE_INFO[t].linkable)

/** Image lists for the growth by image count: sizes mixed so that bytes grow about with the count. */
const GROWTH_ORDER: readonly ImageType[] = [
  'selfie',
  'document',
  'croppedFace',
  'signature',
  'fullFrameFrontID',
  'croppedFrontID',
  'croppedBackID',
  'croppedIDFace',
  'fullFrameBackID',
  'addressStatement',
  'croppedSecondIDFace',
  'croppedOriginalFrontID',
  'croppedOriginalBackID',
  'croppedAuthenticationSelfie',
]
/** The fixed list of the growth by concurrency (one upstream chunk of about 2.8 MB). */
const GROWTH_FOUR: readonly ImageType[] = GROWTH_ORDER.slice(0, 4)

function directHeaders(ctx: Ctx): Record<string, string> {
  return {
    'content-type': 'application/json',
    'api-version': '1.0',
    'x-api-key': SIM_API_KEY,
    'x-incode-hardware-id': ctx.adminToken,
  }
}

const body = (images: readonly string[]) => JSON.stringify({ images })

const serviceImagesUrl = (base: string) => `${base}/v1/sessions/${FULL_INTERVIEW}/images`
const serviceLinksUrl = (base: string) => `${base}/v1/sessions/${FULL_INTERVIEW}/image-links`
const incodeImagesUrl = (base: string) => `${base}/omni/get/images?id=${FULL_INTERVIEW}`
const incodeLinksUrl = (base: string) => `${base}/omni/get/images/v2?id=${FULL_INTERVIEW}`

function rotate<T>(items: readonly T[], by: number): T[] {
  const n = items.length
  return items.map((_, i) => items[(i + by) % n] as T)
}

function describeFailures(name: string, r: CannonResult): string | undefined {
  if (r.non2xx === 0 && r.errors === 0 && r.timeouts === 0) return undefined
  return `${name}: ${r.non2xx} non-2xx (${JSON.stringify(r.statusCodes)}), ${r.errors} errors, ${r.timeouts} timeouts`
}

const MiB = 1024 * 1024

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

// ---- links, cold (every request a miss) -------------------------------------------------------

export async function linksCold(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.profile.linksCold
  const payload = body(LINK_TYPES)
  const tasks: LoopTask[] = [
    {
      name: 'service',
      // Cache-busting outside the timed part.
      setup: [
        {
          method: 'DELETE',
          url: serviceLinksUrl(ctx.service.url),
          headers: { 'x-api-key': serviceHeaders()['x-api-key'] as string },
        },
      ],
      timed: [
        { method: 'POST', url: serviceLinksUrl(ctx.service.url), headers: serviceHeaders(), body: payload },
      ],
      captureHeaders: ['x-cache'],
    },
    {
      name: 'direct',
      timed: [
        { method: 'POST', url: incodeLinksUrl(ctx.sim.url), headers: directHeaders(ctx), body: payload },
      ],
    },
    {
      name: 'pass-through',
      timed: [
        {
          method: 'POST',
          url: incodeLinksUrl(ctx.passThrough.url),
          headers: directHeaders(ctx),
          body: payload,
        },
      ],
    },
  ]
  ctx.progress(`links cold: ${p.rounds} rounds of service (after DELETE), direct, pass-through, alternating`)
  const result = await runLoop(ctx.scripts, ctx.workDir, {
    tasks,
    warmupRounds: p.warmupRounds,
    rounds: p.rounds,
    maxMs: ctx.profile.name === 'quick' ? 15_000 : 180_000,
  })
  const s = result.tasks.service
  const d = result.tasks.direct
  const t = result.tasks['pass-through']
  if (!s || !d || !t) throw new Error('the loop client returned no samples')
  const misses = s.headers.filter((h) => h['x-cache'] === 'MISS').length
  const non200 = (xs: number[]) => xs.filter((x) => x !== 200).length
  const bad = non200(s.status) + non200(d.status) + non200(t.status)
  if (bad > 0) {
    throw new Error(
      `non-200 answers: service ${non200(s.status)}, direct ${non200(d.status)}, pass-through ${non200(t.status)} (e.g. ${[...s.status, ...d.status, ...t.status].find((x) => x !== 200)})`,
    )
  }
  const sp50 = percentile(s.ms, 50)
  const sp99 = percentile(s.ms, 99)
  const dp50 = percentile(d.ms, 50)
  const dp99 = percentile(d.ms, 99)
  const tp50 = percentile(t.ms, 50)
  const tp99 = percentile(t.ms, 99)
  const added50 = sp50 - dp50
  const added99 = sp99 - dp99
  // The same, round by round (service and direct ran back to back in each round).
  const paired = s.ms.map((ms, i) => ms - (d.ms[i] ?? Number.NaN)).filter((x) => Number.isFinite(x))
  const allMissed = misses === s.ms.length && s.setupFailures.length === 0 && bad === 0
  const ok50 = added50 <= 1 && allMissed
  const ok99 = added99 <= 5 && allMissed
  ctx.progress(
    `links cold: added p50 ${fmtSigned(added50)} ms, p99 ${fmtSigned(added99)} ms (${misses}/${s.ms.length} MISS)`,
  )
  return {
    title: 'links, cold',
    pass: ok50 && ok99,
    figures: {
      serviceP50Ms: round(sp50, 3),
      serviceP99Ms: round(sp99, 3),
      directP50Ms: round(dp50, 3),
      directP99Ms: round(dp99, 3),
      passThroughP50Ms: round(tp50, 3),
      passThroughP99Ms: round(tp99, 3),
      addedP50Ms: round(added50, 3),
      addedP99Ms: round(added99, 3),
      passThroughAddedP50Ms: round(tp50 - dp50, 3),
      passThroughAddedP99Ms: round(tp99 - dp99, 3),
      pairedAddedP50Ms: round(percentile(paired, 50), 3),
      pairedAddedP99Ms: round(percentile(paired, 99), 3),
      samples: s.ms.length,
      serviceMisses: misses,
      non200: bad,
    },
    rows: [
      {
        scenario: 'links, cold (every request a miss)',
        measure: `added latency over direct, p50 (${s.ms.length} sequential requests each)`,
        service: `${fmt(sp50, 2)} ms (${fmtSigned(added50)})`,
        comparison: `direct ${fmt(dp50, 2)} ms; pass-through ${fmt(tp50, 2)} ms (${fmtSigned(tp50 - dp50)})`,
        ratio: `${fmtSigned(added50)} ms`,
        target: '≤ 1 ms',
        pass: ok50,
      },
      {
        scenario: 'links, cold (every request a miss)',
        measure: 'added latency over direct, p99',
        service: `${fmt(sp99, 2)} ms (${fmtSigned(added99)})`,
        comparison: `direct ${fmt(dp99, 2)} ms; pass-through ${fmt(tp99, 2)} ms (${fmtSigned(tp99 - dp99)})`,
        ratio: `${fmtSigned(added99)} ms`,
        target: '≤ 5 ms',
        pass: ok99,
      },
    ],
    details: { rounds: result.rounds, stoppedEarly: result.stoppedEarly },
  }
}

// ---- base64, one session's full image set -----------------------------------------------------

export async function base64FullSet(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.profile.base64
  const direct = directHeaders(ctx)
  const single = (type: string): HttpCall => ({
    method: 'POST',
    url: incodeImagesUrl(ctx.sim.url),
    headers: direct,
    body: body([type]),
  })
  // Correctness first: the service's answer must hold every type.
  const check = await call({
    method: 'POST',
    url: serviceImagesUrl(ctx.service.url),
    headers: serviceHeaders(),
    body: body(ALL_TYPES),
  })
  const parsed = JSON.parse(check.body.toString('utf8')) as {
    images: Record<string, string>
    errors: Record<string, unknown>
  }
  const got = Object.keys(parsed.images ?? {}).length
  if (check.status !== 200 || got !== ALL_TYPES.length) {
    throw new Error(
      `the service answered ${check.status} with ${got}/${ALL_TYPES.length} images (errors ${JSON.stringify(parsed.errors)})`,
    )
  }
  const tasks: LoopTask[] = [
    {
      name: 'service',
      timed: [
        {
          method: 'POST',
          url: serviceImagesUrl(ctx.service.url),
          headers: serviceHeaders(),
          body: body(ALL_TYPES),
        },
      ],
    },
    { name: 'naive', timed: ALL_TYPES.map(single) },
    {
      name: 'direct all types',
      timed: [{ method: 'POST', url: incodeImagesUrl(ctx.sim.url), headers: direct, body: body(ALL_TYPES) }],
    },
    {
      name: 'pass-through all types',
      timed: [
        { method: 'POST', url: incodeImagesUrl(ctx.passThrough.url), headers: direct, body: body(ALL_TYPES) },
      ],
    },
    ...ALL_TYPES.map((type) => ({ name: `direct ${type}`, timed: [single(type)] })),
  ]
  ctx.progress(`base64 full set: ${p.rounds} rounds of service, naive, direct per type, alternating`)
  const result = await runLoop(ctx.scripts, ctx.workDir, {
    tasks,
    warmupRounds: p.warmupRounds,
    rounds: p.rounds,
    maxMs: ctx.profile.name === 'quick' ? 20_000 : 120_000,
  })
  const samples = (name: string) => {
    const s = result.tasks[name]
    if (!s) throw new Error(`no samples for ${name}`)
    return s
  }
  const service = median(samples('service').ms)
  const naive = median(samples('naive').ms)
  let slowest = { type: '', ms: 0 }
  for (const type of ALL_TYPES) {
    const ms = median(samples(`direct ${type}`).ms)
    if (ms > slowest.ms) slowest = { type, ms }
  }
  const directAll = samples('direct all types').status
  const passAll = samples('pass-through all types').status
  const serviceBytes = median(samples('service').bytes)
  const serviceOk = samples('service').status.every((s) => s === 200)

  // Which upstream calls the service makes for the set (after learning the sizes): the chunks.
  const calls = await observeServiceChunks(ctx)
  const chunkMiB = calls.map((c) => round(c.responseBytes / MiB, 2))

  const r1 = ratio(service, slowest.ms)
  const r2 = ratio(service, naive)
  const direct502 = directAll.every((s) => s === 502)
  const ok1 = r1 <= 1.15 && serviceOk
  const ok2 = r2 <= 0.5 && serviceOk
  ctx.progress(
    `base64 full set: service ${fmt(service, 1)} ms, slowest single ${fmt(slowest.ms, 1)} ms, naive ${fmt(naive, 1)} ms`,
  )
  const lat = ctx.latency
  return {
    title: 'base64, full image set',
    pass: ok1 && ok2 && direct502,
    figures: {
      serviceMs: round(service, 2),
      slowestSingleDirectMs: round(slowest.ms, 2),
      naiveMs: round(naive, 2),
      ratioToSlowestSingle: round(r1, 3),
      ratioToNaive: round(r2, 3),
      serviceAnswerMiB: round(serviceBytes / MiB, 2),
      directAllTypesStatus: directAll[0] ?? 0,
      passThroughAllTypesStatus: passAll[0] ?? 0,
      serviceUpstreamCalls: calls.length,
      largestUpstreamAnswerMiB: Math.max(0, ...chunkMiB),
      rounds: result.rounds,
    },
    rows: [
      {
        scenario: `base64, full set (${ALL_TYPES.length} types, ${fmt(serviceBytes / MiB, 1)} MiB; direct all-types call: ${directAll[0] ?? '?'})`,
        measure: `wall time of one request (median of ${result.rounds}; upstream ${lat.fixedMs} ms + ${lat.perMiBMs} ms/MiB)`,
        service: `${fmt(service, 1)} ms`,
        comparison: `slowest single-type direct call (${slowest.type}) ${fmt(slowest.ms, 1)} ms`,
        ratio: `${fmt(r1, 2)} ×`,
        target: '≤ 1.15 × slowest single',
        pass: ok1 && direct502,
      },
      {
        scenario: 'base64, full set',
        measure: 'wall time vs naive (one type per call, one after another)',
        service: `${fmt(service, 1)} ms`,
        comparison: `naive ${fmt(naive, 1)} ms`,
        ratio: `${fmt(r2, 2)} ×`,
        target: '≤ 0.5 × naive',
        pass: ok2,
      },
    ],
    details: {
      serviceChunks: ctx.serviceChunks,
      upstreamAnswerMiB: chunkMiB,
      directAllStatuses: directAll,
      passThroughAllStatuses: passAll,
    },
  }
}

// ---- memory: 50 concurrent full-set requests ------------------------------------------------

/** One full-set request to the run's service, and the upstream calls it made (its chunks). */
async function observeServiceChunks(ctx: Ctx): Promise<SimCall[]> {
  await clearSimCalls(ctx.sim.url)
  const res = await call({
    method: 'POST',
    url: serviceImagesUrl(ctx.service.url),
    headers: serviceHeaders(),
    body: body(ALL_TYPES),
  })
  if (res.status !== 200) throw new Error(`the service answered ${res.status} to the full set`)
  const calls = await simCalls(ctx.sim.url, 'images')
  ctx.serviceChunks = calls.filter((c) => c.status === 200).map((c) => c.images ?? [])
  return calls
}

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
              {
                UPSTREAM_URL: ctx.sim.url,
                INCODE_API_KEY: SIM_API_KEY,
                INCODE_ADMIN_EMAIL: SIM_ADMIN_EMAIL,
                INCODE_ADMIN_PASSWORD: SIM_ADMIN_PASSWORD,
                UPSTREAM_CONNECTIONS: '32',
                BENCH_CHUNKS: JSON.stringify(chunks),
              },
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
  const okAbs = service <= 300 && problems.filter((x) => x.startsWith('service')).length === 0
  const okRel = service < buffer
  return {
    title: 'base64, 50 concurrent full sets: memory',
    pass: okAbs && okRel,
    figures: {
      servicePeakRssMiB: round(service, 1),
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
        service: `${fmt(service, 0)} MiB`,
        comparison: `buffer-everything ${fmt(buffer, 0)} MiB`,
        ratio: `${fmt(r, 2)} ×`,
        target: '≤ 300 MB and < buffer-everything',
        pass: okAbs && okRel,
      },
    ],
    details: { peaks, baselines, problems, chunks, peakResetWorked: resetWorked },
  }
}

// ---- coalescing: 200 concurrent identical cold link requests --------------------------------

async function coalescedWaits(service: Server): Promise<number | undefined> {
  try {
    const res = await request(`${service.url}/metrics`, {
      headers: { 'x-api-key': serviceHeaders()['x-api-key'] as string },
    })
    const text = await res.body.text()
    if (res.statusCode !== 200) return undefined
    const match = /^gateway_link_cache_coalesced_waits(?:\{[^}]*\})? (\d+(?:\.\d+)?)/m.exec(text)
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

// ---- cold start -----------------------------------------------------------------------------

export async function coldStart(ctx: Ctx): Promise<ScenarioResult> {
  const times: number[] = []
  const cpu: number[] = []
  for (let i = 0; i < ctx.profile.coldStart.starts; i++) {
    const server = await startService(ctx.sim.url)
    times.push(server.readyMs)
    cpu.push(server.readyCpuMs)
    await stopServer(server)
    ctx.progress(
      `cold start ${i + 1}/${ctx.profile.coldStart.starts}: ${fmt(server.readyMs, 0)} ms to /readyz 200 (${fmt(server.readyCpuMs, 0)} ms of CPU)`,
    )
  }
  const m = median(times)
  const mCpu = median(cpu)
  const ok = m <= 500
  return {
    title: 'cold start',
    pass: ok,
    figures: {
      medianMs: round(m, 1),
      minMs: round(Math.min(...times), 1),
      maxMs: round(Math.max(...times), 1),
      starts: times.length,
    },
    rows: [
      {
        scenario: 'cold start',
        measure: `spawn of node dist/server.js to /readyz 200 (median of ${times.length}, polled every 2 ms)`,
        service: `${fmt(m, 0)} ms`,
        comparison: `min ${fmt(Math.min(...times), 0)}, max ${fmt(Math.max(...times), 0)} ms; CPU time used until ready ${fmt(mCpu, 0)} ms (the wall time on an idle machine is about this)`,
        ratio: '—',
        target: '≤ 500 ms',
        pass: ok,
      },
    ],
    details: { times, cpuMs: cpu },
  }
}
