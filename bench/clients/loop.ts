/**
 * The bench's sequential request loop, as its own process: `node loop.js <plan.json> <result.json>`.
 *
 * Each round runs every task once, one after another, in an order rotated by one each round, so
 * contenders alternate and share the machine's noise evenly. A task's timed calls are measured from
 * sending the first request to receiving the last byte of the last answer (bodies are drained,
 * not kept). Bounded by the plan's round count and its time limit.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'
import type { HttpCall, LoopPlan, LoopResult, TaskSamples } from '../lib/protocol.js'

const [planPath, resultPath] = process.argv.slice(2)
if (!planPath || !resultPath) throw new Error('usage: loop.js <plan.json> <result.json>')
const plan = JSON.parse(readFileSync(planPath, 'utf8')) as LoopPlan

const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 8 })

async function send(
  call: HttpCall,
): Promise<{ status: number; bytes: number; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(call.url, {
    dispatcher,
    method: call.method,
    ...(call.headers === undefined ? {} : { headers: call.headers }),
    ...(call.body === undefined ? {} : { body: call.body }),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  })
  let bytes = 0
  for await (const chunk of res.body) bytes += (chunk as Buffer).length
  return { status: res.statusCode, bytes, headers: res.headers }
}

const samples: Record<string, TaskSamples> = {}
for (const task of plan.tasks) {
  samples[task.name] = { ms: [], status: [], bytes: [], headers: [], setupFailures: [] }
}

const started = performance.now()
let rounds = 0
let stoppedEarly = false
const total = plan.warmupRounds + plan.rounds
for (let round = 0; round < total; round++) {
  if (performance.now() - started > plan.maxMs) {
    stoppedEarly = true
    break
  }
  const measured = round >= plan.warmupRounds
  const n = plan.tasks.length
  for (let i = 0; i < n; i++) {
    const task = plan.tasks[(i + round) % n]
    if (!task) continue
    const sample = samples[task.name] as TaskSamples
    for (const call of task.setup ?? []) {
      const { status } = await send(call)
      if (measured && (status < 200 || status > 299)) sample.setupFailures.push(status)
    }
    let bytes = 0
    let last: Awaited<ReturnType<typeof send>> | undefined
    const t0 = performance.now()
    if (task.parallel) {
      const answers = await Promise.all(task.timed.map(send))
      for (const answer of answers) {
        bytes += answer.bytes
        // The worst status stands for the task.
        if (!last || answer.status !== 200) last = answer
      }
    } else {
      for (const call of task.timed) {
        last = await send(call)
        bytes += last.bytes
      }
    }
    const ms = performance.now() - t0
    if (!measured || !last) continue
    sample.ms.push(ms)
    sample.status.push(last.status)
    sample.bytes.push(bytes)
    const kept: Record<string, string> = {}
    for (const name of task.captureHeaders ?? []) {
      const value = last.headers[name]
      if (value !== undefined) kept[name] = Array.isArray(value) ? value.join(', ') : value
    }
    sample.headers.push(kept)
  }
  if (measured) rounds++
}

const result: LoopResult = { rounds, elapsedMs: performance.now() - started, stoppedEarly, tasks: samples }
writeFileSync(resultPath, JSON.stringify(result))
await dispatcher.close()
