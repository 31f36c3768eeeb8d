import { startService, stopServer } from '../lib/stack.js'
import { fmt, median, round } from '../lib/stats.js'
import type { Ctx, ScenarioResult } from './shared.js'

// ---- cold start -----------------------------------------------------------------------------

async function starts(ctx: Ctx, node: string, label: string): Promise<{ times: number[]; cpu: number[] }> {
  const times: number[] = []
  const cpu: number[] = []
  for (let i = 0; i < ctx.profile.coldStart.starts; i++) {
    const server = await startService(ctx.sim.url, node, `service (cold start, ${label})`)
    times.push(server.readyMs)
    cpu.push(server.readyCpuMs)
    await stopServer(server)
    ctx.progress(
      `cold start ${label} ${i + 1}/${ctx.profile.coldStart.starts}: ${fmt(server.readyMs, 0)} ms to /readyz 200 (${fmt(server.readyCpuMs, 0)} ms of CPU)`,
    )
  }
  return { times, cpu }
}

export async function coldStart(ctx: Ctx): Promise<ScenarioResult> {
  const { times, cpu } = await starts(ctx, ctx.runtime.node, ctx.runtime.label)
  const other = ctx.runtime24 ? await starts(ctx, ctx.runtime24.node, ctx.runtime24.label) : undefined
  const m = median(times)
  const mCpu = median(cpu)
  const m24 = other ? median(other.times) : Number.NaN
  const ok = Math.min(m, other ? m24 : m) <= 300
  return {
    title: 'cold start',
    pass: ok,
    figures: {
      medianMs: round(m, 1),
      minMs: round(Math.min(...times), 1),
      maxMs: round(Math.max(...times), 1),
      cpuMs: round(mCpu, 1),
      ...(other ? { median24Ms: round(m24, 1), cpu24Ms: round(median(other.cpu), 1) } : {}),
      starts: times.length,
    },
    rows: [
      {
        scenario: 'cold start',
        measure: `spawn of node dist/server.js to /readyz 200 (median of ${times.length}, polled every 2 ms)`,
        service: `${fmt(m, 0)} ms`,
        comparison: `min ${fmt(Math.min(...times), 0)}, max ${fmt(Math.max(...times), 0)} ms; CPU time used until ready ${fmt(mCpu, 0)} ms (the wall time on an idle machine is about this)${other ? `; under Node 24 ${fmt(m24, 0)} ms (CPU ${fmt(median(other.cpu), 0)} ms)` : ''}`,
        ratio: '—',
        target: '≤ 300 ms (the faster runtime)',
        pass: ok,
      },
    ],
    details: { times, cpuMs: cpu, ...(other ? { times24: other.times, cpuMs24: other.cpu } : {}) },
  }
}
