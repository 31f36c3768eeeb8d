import { IMAGE_TYPE_INFO, IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import type { CannonResult } from '../lib/autocannon.js'
import type { NginxInstance } from '../lib/nginx.js'
import type { Runtime } from '../lib/runtimes.js'
import type { ChildScript } from '../lib/scripts.js'
import type { CorePlan } from '../lib/wrk.js'
import {
  call,
  clearSimCalls,
  FULL_INTERVIEW,
  serviceHeaders,
  SIM_API_KEY,
  simCalls,
  type LatencyModel,
  type Server,
  type SimCall,
} from '../lib/stack.js'

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
  /** Fleet mode: the traffic model (Zipf exponent `zipf`), the L2 interviews and the herd. */
  fleet: {
    interviews: number
    requests: number
    zipf: number
    concurrency: number
    l2Interviews: number
    herd: number
  }
}

export const FULL_PROFILE: Profile = {
  name: 'full',
  linksWarm: { rounds: 3, durationSec: 8, connections: 50 },
  linksCold: { warmupRounds: 30, rounds: 500 },
  base64: { warmupRounds: 2, rounds: 9 },
  memory: { rounds: 3, concurrency: 50, requestsPerConnection: 2, freshProcess: true },
  coalescing: { rounds: 3, concurrency: 200 },
  growth: { durationSec: 5, imageCounts: [1, 4, 8, 14], concurrencies: [1, 10, 50, 100], freshProcess: true },
  coldStart: { starts: 5 },
  fleet: { interviews: 20_000, requests: 60_000, zipf: 1, concurrency: 32, l2Interviews: 400, herd: 300 },
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
  fleet: { interviews: 1_000, requests: 1_500, zipf: 1, concurrency: 16, l2Interviews: 25, herd: 300 },
}

export interface Ctx {
  profile: Profile
  scripts: Map<ChildScript, string>
  workDir: string
  latency: LatencyModel
  sim: Server
  service: Server
  /** The same build under Node 24, when that runtime could be had. */
  service24?: Server | undefined
  /** The runtime of `service` (the bench's own node) and of `service24`. */
  runtime: Runtime
  runtime24?: Runtime | undefined
  /** The wrk binary, and how load generator and servers share the cores. */
  wrk: string
  cores: CorePlan
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
export const GROWTH_ORDER: readonly ImageType[] = [
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
export const GROWTH_FOUR: readonly ImageType[] = GROWTH_ORDER.slice(0, 4)

export function directHeaders(ctx: Ctx): Record<string, string> {
  return {
    'content-type': 'application/json',
    'api-version': '1.0',
    'x-api-key': SIM_API_KEY,
    'x-incode-hardware-id': ctx.adminToken,
  }
}

export const body = (images: readonly string[]) => JSON.stringify({ images })

export const serviceImagesUrl = (base: string) => `${base}/v1/sessions/${FULL_INTERVIEW}/images`
export const serviceLinksUrl = (base: string) => `${base}/v1/sessions/${FULL_INTERVIEW}/image-links`
export const incodeImagesUrl = (base: string) => `${base}/omni/get/images?id=${FULL_INTERVIEW}`
export const incodeLinksUrl = (base: string) => `${base}/omni/get/images/v2?id=${FULL_INTERVIEW}`

export function rotate<T>(items: readonly T[], by: number): T[] {
  const n = items.length
  return items.map((_, i) => items[(i + by) % n] as T)
}

export function describeFailures(name: string, r: CannonResult): string | undefined {
  if (r.non2xx === 0 && r.errors === 0 && r.timeouts === 0) return undefined
  return `${name}: ${r.non2xx} non-2xx (${JSON.stringify(r.statusCodes)}), ${r.errors} errors, ${r.timeouts} timeouts`
}

export const MiB = 1024 * 1024

/** One full-set request to the run's service, and the upstream calls it made (its chunks). */
export async function observeServiceChunks(ctx: Ctx): Promise<SimCall[]> {
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
