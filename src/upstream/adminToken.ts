import type { Config } from '../config.js'
import { jwtExpiryMs } from '../domain/tokenClaims.js'
import {
  AppError,
  ClientClosedError,
  UpstreamBadResponseError,
  UpstreamStatusError,
  UpstreamTimeoutError,
} from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Transport } from './transport.js'

/** How long a token lives when it does not say (Incode documents 24 h for the executive token). */
const DEFAULT_TOKEN_LIFETIME_MS = 24 * 60 * 60 * 1000

export interface TokenContext {
  signal?: AbortSignal
  deadlineAt: number
}

interface CachedToken {
  token: string
  /** Renew from this time on (now() clock). */
  refreshAt: number
}

// Reading a JWT's claims knows no I/O: it lives in the domain, re-exported for existing importers.
export { jwtExpiryMs }

/** Incode's error body when it is JSON, else its text. */
export function parseUpstreamBody(body: Buffer): unknown {
  const text = body.toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/**
 * The service's Incode admin (executive) token: logged in on first use, cached until shortly
 * before it expires, renewed once for any number of concurrent callers. With INCODE_ADMIN_TOKEN
 * set, that token is used as-is and never renewed.
 */
export class AdminTokenProvider {
  readonly #config: Config
  readonly #transport: Transport
  readonly #now: () => number
  readonly #metrics: Metrics | undefined
  #cached: CachedToken | undefined
  #inflight: Promise<string> | undefined
  #logins = 0

  constructor(deps: { config: Config; transport: Transport; now?: () => number; metrics?: Metrics }) {
    this.#config = deps.config
    this.#transport = deps.transport
    this.#now = deps.now ?? Date.now
    this.#metrics = deps.metrics
  }

  /** How many log-ins were attempted (for tests and metrics). */
  get logins(): number {
    return this.#logins
  }

  /** The cached token; logs in when there is none or it is within the refresh margin of expiry. */
  get(ctx: TokenContext): Promise<string> {
    const fixed = this.#config.INCODE_ADMIN_TOKEN
    if (fixed !== undefined) return Promise.resolve(fixed)
    const cached = this.#cached
    if (cached !== undefined && this.#now() < cached.refreshAt) return Promise.resolve(cached.token)
    return waitFor(this.#loginOnce(), ctx)
  }

  /**
   * After Incode refused `staleToken` (401): logs in again unless the token was already replaced,
   * then returns the current token. Concurrent callers share one log-in. A fixed token cannot be
   * renewed: it comes back unchanged, which tells the caller that retrying is pointless.
   */
  refresh(staleToken: string, ctx: TokenContext): Promise<string> {
    const fixed = this.#config.INCODE_ADMIN_TOKEN
    if (fixed !== undefined) return Promise.resolve(fixed)
    if (this.#inflight !== undefined) return waitFor(this.#inflight, ctx)
    const cached = this.#cached
    if (cached !== undefined && cached.token !== staleToken && this.#now() < cached.refreshAt) {
      return Promise.resolve(cached.token)
    }
    this.#cached = undefined
    return waitFor(this.#loginOnce(), ctx)
  }

  /**
   * The one log-in in flight, shared by every waiting caller. It runs on its own deadline and no
   * caller's signal, so that one caller leaving does not fail the others; each caller only stops
   * waiting (see waitFor), and the token still lands in the cache for the next one.
   */
  #loginOnce(): Promise<string> {
    if (this.#inflight !== undefined) return this.#inflight
    const inflight = this.#login().finally(() => {
      this.#inflight = undefined
    })
    // Callers may all have left; the outcome is then nobody's, and must not be unhandled.
    inflight.catch(() => {})
    this.#inflight = inflight
    return inflight
  }

  async #login(): Promise<string> {
    const config = this.#config
    const email = config.INCODE_ADMIN_EMAIL
    const password = config.INCODE_ADMIN_PASSWORD
    if (email === undefined || password === undefined) {
      throw new AppError(500, 'ADMIN_CREDENTIALS_MISSING', 'No Incode admin credentials are configured')
    }
    this.#logins++
    this.#metrics?.adminTokenRefreshes.inc()
    // Through the transport's policy like every call: an open breaker refuses log-ins too.
    const answer = await this.#transport.request({
      endpoint: 'adminLogin',
      method: 'POST',
      path: config.INCODE_PATH_ADMIN_LOGIN,
      headers: {
        'x-api-key': config.INCODE_API_KEY,
        'api-version': config.INCODE_API_VERSION,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ email, password }),
      deadlineAt:
        Date.now() +
        config.UPSTREAM_CONNECT_TIMEOUT_MS +
        config.UPSTREAM_HEADERS_TIMEOUT_MS +
        config.UPSTREAM_BODY_TIMEOUT_MS,
    })
    if (answer.status < 200 || answer.status > 299) {
      // Our own credentials failed: nothing a caller can fix, hence 502 whatever Incode said.
      throw new UpstreamStatusError(
        answer.status,
        parseUpstreamBody(answer.body),
        `Incode admin log-in failed with status ${answer.status}`,
        502,
      )
    }
    const token = (parseUpstreamBody(answer.body) as { token?: unknown } | null)?.token
    if (typeof token !== 'string' || token === '') {
      throw new UpstreamBadResponseError('Incode admin log-in answered without a token')
    }
    const issuedAt = this.#now()
    const expiresAt = jwtExpiryMs(token) ?? issuedAt + DEFAULT_TOKEN_LIFETIME_MS
    // A token living shorter than twice the margin is renewed at half its life, not at once.
    const margin = Math.min(config.ADMIN_TOKEN_REFRESH_MARGIN_MS, (expiresAt - issuedAt) / 2)
    this.#cached = { token, refreshAt: expiresAt - margin }
    return token
  }
}

/** Waits for `promise` as long as the caller is there and its deadline has not passed. */
function waitFor<T>(promise: Promise<T>, ctx: TokenContext): Promise<T> {
  const { signal } = ctx
  if (signal?.aborted) return Promise.reject(new ClientClosedError())
  const remaining = ctx.deadlineAt - Date.now()
  if (remaining <= 0)
    return Promise.reject(new UpstreamTimeoutError('The request deadline passed before log-in'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      cleanup()
      reject(new ClientClosedError())
    }
    const timer = setTimeout(
      () => {
        cleanup()
        reject(new UpstreamTimeoutError('The request deadline passed while logging in to Incode'))
      },
      Math.min(remaining, 2 ** 31 - 1),
    )
    const cleanup = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        cleanup()
        resolve(value)
      },
      (err: unknown) => {
        cleanup()
        reject(err instanceof Error ? err : new Error(String(err)))
      },
    )
  })
}
