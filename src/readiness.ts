import type { UpstreamPolicy } from './upstream/policy.js'
import type { AdminTokens } from './upstream/types.js'
import type { Fleet } from './fleet/redis.js'

export interface Check {
  ok: boolean
  detail?: string
}

const PROBE_TIMEOUT_MS = 2_000
const CACHE_MS = 5_000

/** What a failed probe reports: the error's code (undici's, ours) or else its message. */
function errorDetail(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const { code } = err as Error & { code?: unknown }
  return typeof code === 'string' ? code : err.message
}

/** The image endpoints whose breakers readiness reports, the base64 one deciding. */
const IMAGE_ENDPOINTS = ['images', 'imageLinks', 'secondIdImages', 'concatenatedImages'] as const

/**
 * Readiness: Incode answers at all (any HTTP status counts: it is reachable), the base64 image
 * endpoint's breaker is not open (the other image endpoints' open breakers are named in the
 * detail; cached links are still served), and the admin token can be had when credentials are
 * configured. Each endpoint has its own breaker, so a failing admin log-in shows in `adminToken`
 * only. Results are kept a few seconds so that frequent probes stay cheap and never multiply
 * upstream calls.
 */
export class Readiness {
  #last: { at: number; checks: Promise<Record<string, Check>> } | undefined

  constructor(
    private readonly deps: {
      policy: UpstreamPolicy
      adminTokens: AdminTokens | undefined
      fleet?: Fleet | undefined
    },
  ) {}

  async check(): Promise<Record<string, Check>> {
    const now = Date.now()
    if (!this.#last || now - this.#last.at >= CACHE_MS) this.#last = { at: now, checks: this.#run() }
    const checks = await this.#last.checks
    const { fleet } = this.deps
    if (!fleet) return checks
    // Fleet mode never makes a replica unready (Incode is what readiness is about): a replica
    // without Redis still serves, from local state, and says so here.
    const detail = (await fleet.probe())
      ? 'degraded: Redis unavailable, using local state'
      : 'shared state in Redis'
    return { ...checks, fleet: { ok: true, detail } }
  }

  async #run(): Promise<Record<string, Check>> {
    const deadlineAt = Date.now() + PROBE_TIMEOUT_MS
    const checks: Record<string, Check> = { config: { ok: true } }
    const [upstream, admin] = await Promise.all([
      this.deps.policy.request({ method: 'GET', path: '/', headers: {}, deadlineAt }).then(
        (): Check => ({ ok: true }),
        (err: unknown): Check => ({ ok: false, detail: errorDetail(err) }),
      ),
      this.deps.adminTokens?.get({ deadlineAt }).then(
        (): Check => ({ ok: true }),
        (err: unknown): Check => ({ ok: false, detail: errorDetail(err) }),
      ),
    ])
    checks.upstream = upstream
    checks.imageEndpoints = this.#imageEndpoints()
    if (admin) checks.adminToken = admin
    return checks
  }

  #imageEndpoints(): Check {
    const { policy } = this.deps
    const open = IMAGE_ENDPOINTS.filter((endpoint) => policy.breakerState(endpoint) === 'open')
    if (open.length === 0) return { ok: true }
    return { ok: !open.includes('images'), detail: `circuit open: ${open.join(', ')}` }
  }
}
