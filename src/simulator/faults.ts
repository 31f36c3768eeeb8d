import { DEFAULT_FAULT_ENDPOINTS, PATH_KEYS } from './defaults.js'
import { hashString, mulberry32 } from './prng.js'
import { short } from './request.js'
import { isRecord } from './tokens.js'
import type { FaultConfig, LatencyModel, SimulatorPaths } from './types.js'

/** What the faults decided for one call. */
export interface FaultDecision {
  reset: boolean
  error: boolean
  truncate: boolean
  malformed: boolean
  extraLatencyMs: number
  slowBodyMs: number
}

export const NO_FAULT: FaultDecision = {
  reset: false,
  error: false,
  truncate: false,
  malformed: false,
  extraLatencyMs: 0,
  slowBodyMs: 0,
}

/** The body of a `malformedRate` answer: starts like JSON, is not. */
export const MALFORMED_BODY = Buffer.from(
  '{"status":"OK","result": <html><body>upstream hiccup</body></html>',
)

/** The fault settings in force and the seeded randomness that draws them, restarted on every change. */
export class FaultInjector {
  private current: FaultConfig | undefined
  private random: () => number

  constructor(
    private readonly seed: number,
    initial: FaultConfig | undefined,
  ) {
    this.current = initial ? { ...initial } : undefined
    this.random = mulberry32(hashString(`faults|${seed}`))
  }

  get config(): FaultConfig | undefined {
    return this.current
  }

  set(faults: FaultConfig | undefined): void {
    this.current = faults ? { ...faults } : undefined
    this.random = mulberry32(hashString(`faults|${this.seed}`))
  }

  draw(endpoint: keyof SimulatorPaths): FaultDecision {
    const f = this.current
    if (!f) return NO_FAULT
    const applies = f.endpoints ?? DEFAULT_FAULT_ENDPOINTS
    if (!applies.includes(endpoint)) return NO_FAULT
    // always draw all four, so one call consumes the same amount of randomness whatever the rates
    const r = [this.random(), this.random(), this.random(), this.random()] as const
    return {
      reset: r[0] < (f.resetRate ?? 0),
      error: r[1] < (f.errorRate ?? 0),
      truncate: r[2] < (f.truncateRate ?? 0),
      malformed: r[3] < (f.malformedRate ?? 0),
      extraLatencyMs: Math.max(0, f.extraLatencyMs ?? 0),
      slowBodyMs: Math.max(0, f.slowBodyMs ?? 0),
    }
  }
}

function checkRate(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) return `${name} must be a number from 0 to 1`
  return undefined
}

function checkMs(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value >= 0 && value <= 600_000))
    return `${name} must be a number of ms (0..600000)`
  return undefined
}

/** Validates a FaultConfig from JSON; returns an error message or the config. */
export function parseFaultConfig(value: unknown): FaultConfig | string {
  if (!isRecord(value)) return 'faults must be a JSON object'
  const known = new Set([
    'errorRate',
    'errorStatus',
    'resetRate',
    'truncateRate',
    'malformedRate',
    'extraLatencyMs',
    'slowBodyMs',
    'loginFailure',
    'endpoints',
  ])
  for (const key of Object.keys(value)) if (!known.has(key)) return `unknown fault setting: ${key}`
  const problem =
    checkRate(value.errorRate, 'errorRate') ??
    checkRate(value.resetRate, 'resetRate') ??
    checkRate(value.truncateRate, 'truncateRate') ??
    checkRate(value.malformedRate, 'malformedRate') ??
    checkMs(value.extraLatencyMs, 'extraLatencyMs') ??
    checkMs(value.slowBodyMs, 'slowBodyMs')
  if (problem) return problem
  const { errorStatus, loginFailure, endpoints } = value
  if (
    errorStatus !== undefined &&
    (typeof errorStatus !== 'number' ||
      !Number.isInteger(errorStatus) ||
      !((errorStatus >= 100 && errorStatus <= 599) || (errorStatus >= 1000 && errorStatus <= 5999)))
  ) {
    return 'errorStatus must be an HTTP status (100..599) or an Incode custom code (1000..5999)'
  }
  if (loginFailure !== undefined && typeof loginFailure !== 'boolean') return 'loginFailure must be a boolean'
  if (endpoints !== undefined) {
    if (!Array.isArray(endpoints)) return 'endpoints must be an array'
    for (const e of endpoints) {
      if (typeof e !== 'string' || !(PATH_KEYS as string[]).includes(e)) {
        return `unknown endpoint ${short(e)}; known: ${PATH_KEYS.join(', ')}`
      }
    }
  }
  return value
}

/** Validates a LatencyModel from JSON (missing fields are 0); returns an error message or the model. */
export function parseLatency(value: unknown): LatencyModel | string {
  if (!isRecord(value)) return 'latency must be a JSON object'
  const fixedMs = value.fixedMs ?? 0
  const perMiBMs = value.perMiBMs ?? 0
  if (typeof fixedMs !== 'number' || !(fixedMs >= 0 && fixedMs <= 600_000)) return 'fixedMs must be 0..600000'
  if (typeof perMiBMs !== 'number' || !(perMiBMs >= 0 && perMiBMs <= 600_000))
    return 'perMiBMs must be 0..600000'
  return { fixedMs, perMiBMs }
}
