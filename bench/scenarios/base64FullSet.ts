import { writeFileSync } from 'node:fs'
import path from 'node:path'

import type { HttpCall, LoopTask } from '../lib/protocol.js'
import {
  call,
  runLoop,
  serviceHeaders,
  splitContenderEnv,
  startScript,
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
  directHeaders,
  incodeImagesUrl,
  observeServiceChunks,
  serviceImagesUrl,
} from './shared.js'

// ---- base64, one session's full image set -----------------------------------------------------

export async function base64FullSet(ctx: Ctx): Promise<ScenarioResult> {
  // Correctness first: the service's answer must hold every type.
  const check = await call({
    method: 'POST',
    url: serviceImagesUrl(ctx.service.url),
    headers: serviceHeaders(),
    body: body(ALL_TYPES),
  })
  const parsed = JSON.parse(check.body.toString('utf8')) as {
    images?: Record<string, string>
    errors?: Record<string, unknown>
  }
  const got = Object.keys(parsed.images ?? {}).length
  if (check.status !== 200 || got !== ALL_TYPES.length) {
    throw new Error(
      `the service answered ${check.status} with ${got}/${ALL_TYPES.length} images (errors ${JSON.stringify(parsed.errors)})`,
    )
  }
  // Which upstream calls the service makes for the set (after learning the sizes): the chunks. The
  // client fetching the same chunks directly, all at once, is the floor of a split fetch.
  const calls = await observeServiceChunks(ctx)
  const chunkMiB = calls.map((c) => round(c.responseBytes / MiB, 2))
  const chunks = ctx.serviceChunks ?? []
  if (chunks.length === 0) throw new Error('the service made no successful upstream call for the full set')
  // The ceilings of one client socket: the service's own answer, pre-built, sent from memory by a
  // bare Fastify route; and the same chunks fetched in parallel and piped out one after another
  // with no parsing (bench/contenders/chunkPipe.ts).
  const answerFile = path.join(ctx.workDir, 'full-set-answer.json')
  writeFileSync(answerFile, check.body)
  const contenders: Server[] = []
  try {
    contenders.push(
      await startScript('pre-built', ctx.scripts, 'contenders/bare.ts', { BODY_FILE: answerFile }, '/ready'),
    )
    contenders.push(
      await startScript(
        'chunk pipe',
        ctx.scripts,
        'contenders/chunkPipe.ts',
        splitContenderEnv(ctx.sim.url, chunks),
        '/readyz',
      ),
    )
    return await measure(ctx, contenders, chunks, chunkMiB, calls.length)
  } finally {
    for (const server of contenders) await stopServer(server)
  }
}

async function measure(
  ctx: Ctx,
  [preBuilt, chunkPipe]: Server[],
  chunks: string[][],
  chunkMiB: number[],
  upstreamCalls: number,
): Promise<ScenarioResult> {
  if (!preBuilt || !chunkPipe) throw new Error('the single-socket contenders did not start')
  const p = ctx.profile.base64
  const direct = directHeaders(ctx)
  const single = (type: string): HttpCall => ({
    method: 'POST',
    url: incodeImagesUrl(ctx.sim.url),
    headers: direct,
    body: body([type]),
  })
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
    ...(ctx.service24
      ? [
          {
            name: 'service (Node 24)',
            timed: [
              {
                method: 'POST' as const,
                url: serviceImagesUrl(ctx.service24.url),
                headers: serviceHeaders(),
                body: body(ALL_TYPES),
              },
            ],
          },
        ]
      : []),
    {
      name: 'direct chunks in parallel',
      parallel: true,
      timed: chunks.map((types) => ({
        method: 'POST' as const,
        url: incodeImagesUrl(ctx.sim.url),
        headers: direct,
        body: body(types),
      })),
    },
    {
      name: 'pre-built',
      timed: [
        {
          method: 'POST',
          url: serviceImagesUrl(preBuilt.url),
          headers: serviceHeaders(),
          body: body(ALL_TYPES),
        },
      ],
    },
    {
      name: 'chunk pipe',
      timed: [
        {
          method: 'POST',
          url: serviceImagesUrl(chunkPipe.url),
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
  const parallelChunks = median(samples('direct chunks in parallel').ms)
  const preBuiltMs = median(samples('pre-built').ms)
  const chunkPipeMs = median(samples('chunk pipe').ms)
  const ceilingsOk = [...samples('pre-built').status, ...samples('chunk pipe').status].every((s) => s === 200)
  const service24 = result.tasks['service (Node 24)']
  const service24Ms = service24 ? median(service24.ms) : Number.NaN
  let slowest = { type: '', ms: 0 }
  for (const type of ALL_TYPES) {
    const ms = median(samples(`direct ${type}`).ms)
    if (ms > slowest.ms) slowest = { type, ms }
  }
  const directAll = samples('direct all types').status
  const passAll = samples('pass-through all types').status
  const serviceBytes = median(samples('service').bytes)
  const serviceOk = samples('service').status.every((s) => s === 200)

  const r0 = ratio(service, parallelChunks)
  const ok0 = r0 <= 1.15 && serviceOk && samples('direct chunks in parallel').status.every((s) => s === 200)

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
    pass: ok0 && ok1 && ok2 && direct502,
    figures: {
      serviceMs: round(service, 2),
      slowestSingleDirectMs: round(slowest.ms, 2),
      naiveMs: round(naive, 2),
      directChunksParallelMs: round(parallelChunks, 2),
      ratioToDirectChunksParallel: round(r0, 3),
      ...(service24 ? { service24Ms: round(service24Ms, 2) } : {}),
      ratioToSlowestSingle: round(r1, 3),
      ratioToNaive: round(r2, 3),
      serviceAnswerMiB: round(serviceBytes / MiB, 2),
      directAllTypesStatus: directAll[0] ?? 0,
      passThroughAllTypesStatus: passAll[0] ?? 0,
      preBuiltMs: round(preBuiltMs, 2),
      chunkPipeMs: round(chunkPipeMs, 2),
      ratioToPreBuilt: round(ratio(service, preBuiltMs), 3),
      ratioToChunkPipe: round(ratio(service, chunkPipeMs), 3),
      chunkPipeToDirectChunksParallel: round(ratio(chunkPipeMs, parallelChunks), 3),
      serviceUpstreamCalls: upstreamCalls,
      largestUpstreamAnswerMiB: Math.max(0, ...chunkMiB),
      rounds: result.rounds,
    },
    rows: [
      {
        scenario: `base64, full set (${ALL_TYPES.length} types, ${fmt(serviceBytes / MiB, 1)} MiB; direct all-types call: ${directAll[0] ?? '?'})`,
        measure: `wall time of one request (median of ${result.rounds}; upstream ${lat.fixedMs} ms + ${lat.perMiBMs} ms/MiB)`,
        service: `${fmt(service, 1)} ms`,
        comparison: `the same ${chunks.length} chunks fetched directly in parallel ${fmt(parallelChunks, 1)} ms${service24 ? `; the service under Node 24 ${fmt(service24Ms, 1)} ms` : ''}`,
        ratio: `${fmt(r0, 2)} ×`,
        target: '≤ 1.15 × direct parallel chunks',
        pass: ok0,
      },
      {
        scenario: 'base64, full set',
        measure: 'wall time vs the slowest single type',
        service: `${fmt(service, 1)} ms`,
        comparison: `slowest single-type direct call (${slowest.type}) ${fmt(slowest.ms, 1)} ms`,
        ratio: `${fmt(r1, 2)} ×`,
        target: '≤ 1.15 × slowest single',
        pass: ok1 && direct502,
      },
      {
        scenario: 'base64, full set',
        measure: 'wall time vs the single-socket floors (measured)',
        service: `${fmt(service, 1)} ms`,
        comparison: `chunk pipe (the same ${chunks.length} chunks fetched in parallel, raw bytes piped out one after another over one socket, no parsing) ${fmt(chunkPipeMs, 1)} ms (${fmt(ratio(chunkPipeMs, parallelChunks), 2)} × direct parallel chunks); the answer pre-built in memory, sent by a bare Fastify route ${fmt(preBuiltMs, 1)} ms`,
        ratio: `${fmt(ratio(service, chunkPipeMs), 2)} × pipe; ${fmt(ratio(service, preBuiltMs), 2)} × pre-built`,
        target: 'measured',
        pass: ceilingsOk,
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
