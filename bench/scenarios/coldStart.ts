import { startService, stopServer } from '../lib/stack.js'
import { fmt, median, round } from '../lib/stats.js'
import type { Ctx, ScenarioResult } from './shared.js'

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
