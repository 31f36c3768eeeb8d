import type { LoopTask } from '../lib/protocol.js'
import { runLoop, serviceHeaders } from '../lib/stack.js'
import { fmt, fmtSigned, percentile, round } from '../lib/stats.js'
import {
  type Ctx,
  LINK_TYPES,
  type ScenarioResult,
  body,
  directHeaders,
  incodeLinksUrl,
  serviceLinksUrl,
} from './shared.js'

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
    ...(ctx.service24
      ? [
          {
            name: 'service (Node 24)',
            setup: [
              {
                method: 'DELETE' as const,
                url: serviceLinksUrl(ctx.service24.url),
                headers: { 'x-api-key': serviceHeaders()['x-api-key'] as string },
              },
            ],
            timed: [
              {
                method: 'POST' as const,
                url: serviceLinksUrl(ctx.service24.url),
                headers: serviceHeaders(),
                body: payload,
              },
            ],
          },
        ]
      : []),
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
  const s24 = result.tasks['service (Node 24)']
  const s24p50 = s24 ? percentile(s24.ms, 50) : Number.NaN
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
      ...(s24 ? { service24P50Ms: round(s24p50, 3), added24P50Ms: round(s24p50 - dp50, 3) } : {}),
      samples: s.ms.length,
      serviceMisses: misses,
      non200: bad,
    },
    rows: [
      {
        scenario: 'links, cold (every request a miss)',
        measure: `added latency over direct, p50 (${s.ms.length} sequential requests each)`,
        service: `${fmt(sp50, 2)} ms (${fmtSigned(added50)})`,
        comparison: `direct ${fmt(dp50, 2)} ms; pass-through ${fmt(tp50, 2)} ms (${fmtSigned(tp50 - dp50)})${s24 ? `; the service under Node 24 ${fmt(s24p50, 2)} ms (${fmtSigned(s24p50 - dp50)})` : ''}`,
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
