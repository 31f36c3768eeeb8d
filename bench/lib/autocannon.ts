import { createRequire } from 'node:module'
import path from 'node:path'
import { runToEnd } from './procs.js'

/** The load tool: autocannon 8, always as a separate process (`autocannon --json`). */
const require = createRequire(import.meta.url)
const AUTOCANNON_CLI = path.join(path.dirname(require.resolve('autocannon/package.json')), 'autocannon.js')

export interface CannonOptions {
  url: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  connections: number
  /** Seconds; ignored when `amount` is set. */
  durationSec?: number
  /** Total requests, then stop. */
  amount?: number
  /** Per-request timeout, seconds. */
  timeoutSec?: number
}

export interface CannonResult {
  /** Successful (2xx) answers per second over the run. */
  rps: number
  total: number
  ok2xx: number
  non2xx: number
  errors: number
  timeouts: number
  durationSec: number
  /** Latencies of 2xx answers, ms (autocannon's millisecond histogram). */
  latency: { p50: number; p90: number; p99: number; max: number; min: number; mean: number }
  statusCodes: Record<string, number>
}

interface RawCannon {
  requests: { total: number; sent: number }
  latency: { p50: number; p90: number; p99: number; max: number; min: number; average: number }
  errors: number
  timeouts: number
  non2xx: number
  '2xx': number
  duration: number
  statusCodeStats?: Record<string, { count: number }>
}

export async function autocannon(options: CannonOptions): Promise<CannonResult> {
  const args = [AUTOCANNON_CLI, '--json', '-c', String(options.connections)]
  if (options.amount !== undefined) args.push('-a', String(options.amount))
  else args.push('-d', String(options.durationSec ?? 5))
  args.push('-t', String(options.timeoutSec ?? 30))
  if (options.method) args.push('-m', options.method)
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}=${value}`)
  if (options.body !== undefined) args.push('-b', options.body)
  args.push(options.url)
  const limitMs =
    options.amount !== undefined
      ? (options.timeoutSec ?? 30) * 1000 + 30_000
      : (options.durationSec ?? 5) * 1000 + (options.timeoutSec ?? 30) * 1000 + 15_000
  const out = await runToEnd('autocannon', process.execPath, args, { timeoutMs: limitMs })
  const line = out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .pop()
  if (!line) throw new Error(`autocannon printed no JSON:\n${out.slice(-2000)}`)
  const raw = JSON.parse(line) as RawCannon
  const statusCodes: Record<string, number> = {}
  for (const [code, stat] of Object.entries(raw.statusCodeStats ?? {})) statusCodes[code] = stat.count
  return {
    rps: raw.duration > 0 ? raw['2xx'] / raw.duration : 0,
    total: raw.requests.total,
    ok2xx: raw['2xx'],
    non2xx: raw.non2xx,
    errors: raw.errors,
    timeouts: raw.timeouts,
    durationSec: raw.duration,
    latency: {
      p50: raw.latency.p50,
      p90: raw.latency.p90,
      p99: raw.latency.p99,
      max: raw.latency.max,
      min: raw.latency.min,
      mean: raw.latency.average,
    },
    statusCodes,
  }
}
