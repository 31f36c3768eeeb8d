import type { AdminTokenProvider } from './upstream/adminToken.js'
import type { Transport } from './upstream/transport.js'

export interface Check {
  ok: boolean
  detail?: string
}

const PROBE_TIMEOUT_MS = 2_000
const CACHE_MS = 5_000

/**
 * Readiness: Incode answers at all (any HTTP status counts: it is reachable), and the admin token
 * can be had when credentials are configured. Results are kept a few seconds so that frequent
 * probes stay cheap and never multiply upstream calls.
 */
export class Readiness {
  #last: { at: number; checks: Promise<Record<string, Check>> } | undefined

  constructor(private readonly deps: { transport: Transport; adminTokens: AdminTokenProvider | undefined }) {}

  check(): Promise<Record<string, Check>> {
    const now = Date.now()
    if (this.#last && now - this.#last.at < CACHE_MS) return this.#last.checks
    const checks = this.#run()
    this.#last = { at: now, checks }
    return checks
  }

  async #run(): Promise<Record<string, Check>> {
    const deadlineAt = Date.now() + PROBE_TIMEOUT_MS
    const checks: Record<string, Check> = { config: { ok: true } }
    const [upstream, admin] = await Promise.all([
      this.deps.transport.request({ method: 'GET', path: '/', headers: {}, deadlineAt }).then(
        (): Check => ({ ok: true }),
        (err: Error & { code?: string }): Check => ({ ok: false, detail: err.code ?? err.message }),
      ),
      this.deps.adminTokens?.get({ deadlineAt }).then(
        (): Check => ({ ok: true }),
        (err: Error & { code?: string }): Check => ({ ok: false, detail: err.code ?? err.message }),
      ),
    ])
    checks.upstream = upstream
    if (admin) checks.adminToken = admin
    return checks
  }
}
