import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../config.js'
import { jwtExpiryMs } from '../domain/tokenClaims.js'
import { parseUpstreamBody } from '../domain/upstreamBody.js'
import {
  AdminNotConfiguredError,
  ClientClosedError,
  UpstreamBadResponseError,
  UpstreamStatusError,
  UpstreamTimeoutError,
} from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { UpstreamPolicy } from './policy.js'
import type { AdminTokens, CallContext } from './types.js'

/** How long a token lives when it does not say (Incode documents 24 h for the executive token). */
const DEFAULT_TOKEN_LIFETIME_MS = 24 * 60 * 60 * 1000

/** An admin token and its times. */
export interface CachedToken {
  token: string
  /** Renew (in the background) from this time on (now() clock). */
  refreshAt: number
  /** Served until this time (now() clock). */
  expiresAt: number
}

/**
 * Fleet mode: where the replicas keep the one admin token (Redis, in src/fleet/adminTokenStore.ts).
 * Every method answers `undefined` when the store is unavailable: the replica then logs in itself.
 */
export interface SharedTokenStore {
  /** The token kept for the fleet; null when there is none. */
  read(): Promise<CachedToken | null | undefined>
  write(token: CachedToken): Promise<void>
  /** Takes the renewal lock (with an expiry): false when another replica holds it. */
  lock(ttlMs: number): Promise<boolean | undefined>
  unlock(): Promise<void>
}

/** How often a replica waiting for another one's log-in looks for its token. */
const SHARED_POLL_MS = 50

/** First pause after a failed log-in; doubled after each further failure, up to the cap. */
export const LOGIN_BACKOFF_BASE_MS = 1_000
export const LOGIN_BACKOFF_MAX_MS = 60_000

/**
 * The pause after the `failures`-th failed log-in in a row: exponential, capped, with "equal
 * jitter" (between half and all of the step), so that instances do not retry in step and a pause
 * is never near zero.
 */
export function loginBackoffMs(failures: number, random: () => number): number {
  const step = Math.min(LOGIN_BACKOFF_MAX_MS, LOGIN_BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1))
  return Math.round(step / 2 + (random() * step) / 2)
}

/**
 * The service's Incode admin (executive) token: logged in on first use and served until it
 * really expires. Once inside the refresh margin, it is renewed in the background by one log-in
 * while callers keep getting the current token; a failed log-in is retried after a back-off
 * (loginBackoffMs), never by every caller at once. Only a caller finding no valid token at all
 * waits for a log-in, or, during a back-off, fails at once with the last log-in's error. With
 * INCODE_ADMIN_TOKEN set, that token is used as-is and never renewed.
 *
 * Fleet mode (a SharedTokenStore): the replicas share one token. A replica needing one takes the
 * fleet's token when it is fresh; else it takes the renewal lock and logs in, and writes the new
 * token for the others; a replica finding the lock held waits for that token (polling, no longer
 * than a log-in may take) rather than logging in too. With the store unavailable, each replica
 * logs in itself, as without a fleet.
 */
export class AdminTokenProvider implements AdminTokens {
  readonly #config: Config
  readonly #policy: UpstreamPolicy
  readonly #now: () => number
  readonly #random: () => number
  readonly #metrics: Metrics | undefined
  readonly #shared: SharedTokenStore | undefined
  #cached: CachedToken | undefined
  #inflight: Promise<string> | undefined
  #logins = 0
  /** Failed log-ins in a row, and the time (now() clock) before which none is tried again. */
  #failures = 0
  #retryAt = 0
  #lastError: Error | undefined

  constructor(deps: {
    config: Config
    /** Log-ins go through the policy like every call, under their own breaker. */
    policy: UpstreamPolicy
    now?: () => number
    metrics?: Metrics
    /** Source of back-off jitter, 0 ≤ x < 1 (tests pin it). */
    random?: () => number
    /** Fleet mode: the token shared by the replicas. */
    shared?: SharedTokenStore | undefined
  }) {
    this.#config = deps.config
    this.#policy = deps.policy
    this.#now = deps.now ?? Date.now
    this.#random = deps.random ?? Math.random
    this.#metrics = deps.metrics
    this.#shared = deps.shared
  }

  /** How many log-ins were attempted (for tests and metrics). */
  get logins(): number {
    return this.#logins
  }

  /** Resolves once no log-in is in flight (for tests: a background renewal has ended). */
  async settled(): Promise<void> {
    while (this.#inflight !== undefined) await this.#inflight.catch(() => undefined)
  }

  /**
   * The current token while it is valid (renewed in the background once inside the refresh
   * margin); without one, the log-in's outcome.
   */
  get(ctx: CallContext): Promise<string> {
    const fixed = this.#config.INCODE_ADMIN_TOKEN
    if (fixed !== undefined) return Promise.resolve(fixed)
    const cached = this.#cached
    const now = this.#now()
    if (cached !== undefined && now < cached.expiresAt) {
      if (now >= cached.refreshAt) this.#renewInBackground()
      return Promise.resolve(cached.token)
    }
    return this.#loginOrWait(ctx)
  }

  /**
   * After Incode refused `staleToken` (401): logs in again unless the token was already replaced,
   * then returns the current token. Concurrent callers share one log-in. A fixed token cannot be
   * renewed: it comes back unchanged, which tells the caller that retrying is pointless.
   */
  refresh(staleToken: string, ctx: CallContext): Promise<string> {
    const fixed = this.#config.INCODE_ADMIN_TOKEN
    if (fixed !== undefined) return Promise.resolve(fixed)
    if (this.#inflight !== undefined) return waitFor(this.#inflight, ctx)
    const cached = this.#cached
    if (cached !== undefined && cached.token !== staleToken && this.#now() < cached.expiresAt) {
      return Promise.resolve(cached.token)
    }
    // Incode refused it: the stale token is of no use any more, whatever its expiry said.
    if (cached?.token === staleToken) this.#cached = undefined
    return this.#loginOrWait(ctx, staleToken)
  }

  /** No valid token: join the log-in in flight, fail fast during a back-off, else log in. */
  #loginOrWait(ctx: CallContext, staleToken?: string): Promise<string> {
    if (this.#inflight !== undefined) return waitFor(this.#inflight, ctx)
    const lastError = this.#lastError
    if (lastError !== undefined && this.#now() < this.#retryAt) return Promise.reject(lastError)
    return waitFor(this.#loginOnce(staleToken), ctx)
  }

  #renewInBackground(): void {
    if (this.#inflight !== undefined || this.#now() < this.#retryAt) return
    // Nobody waits for it; its failure is remembered (back-off) and the current token still served.
    this.#loginOnce(this.#cached?.token).catch(() => {})
  }

  /**
   * The one log-in in flight, shared by every waiting caller. It runs on its own deadline and no
   * caller's signal, so that one caller leaving does not fail the others; each caller only stops
   * waiting (see waitFor), and the token still lands in the cache for the next one.
   */
  #loginOnce(staleToken?: string): Promise<string> {
    if (this.#inflight !== undefined) return this.#inflight
    const inflight = this.#obtain(staleToken)
      .then(
        ({ token }) => {
          this.#failures = 0
          this.#retryAt = 0
          this.#lastError = undefined
          return token
        },
        (err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err))
          this.#failures++
          this.#metrics?.adminLoginFailures.inc()
          this.#retryAt = this.#now() + loginBackoffMs(this.#failures, this.#random)
          this.#lastError = error
          throw error
        },
      )
      .finally(() => {
        this.#inflight = undefined
      })
    // Callers may all have left; the outcome is then nobody's, and must not be unhandled.
    inflight.catch(() => {})
    this.#inflight = inflight
    return inflight
  }

  /** A fresh token: the fleet's (when there is a fresh one that is not `staleToken`), else a log-in. */
  async #obtain(staleToken: string | undefined): Promise<CachedToken> {
    const shared = this.#shared
    const obtained = shared ? await this.#obtainShared(shared, staleToken) : await this.#login()
    this.#cached = obtained
    return obtained
  }

  async #obtainShared(shared: SharedTokenStore, staleToken: string | undefined): Promise<CachedToken> {
    const fresh = (found: CachedToken | null | undefined) =>
      found && found.token !== staleToken && this.#now() < found.refreshAt ? found : undefined
    const waitMs = this.#loginDeadlineMs()
    const giveUpAt = Date.now() + waitMs
    for (;;) {
      const found = await shared.read()
      if (found === undefined) return this.#login()
      const usable = fresh(found)
      if (usable) return usable
      const locked = await shared.lock(waitMs)
      if (locked === undefined) return this.#login()
      if (locked) {
        try {
          // Another replica may have written one between the read and the lock.
          const written = fresh(await shared.read())
          if (written) return written
          const token = await this.#login()
          await shared.write(token)
          return token
        } finally {
          await shared.unlock()
        }
      }
      // Another replica is logging in: wait for its token, not longer than a log-in may take.
      if (Date.now() >= giveUpAt) return this.#login()
      await sleep(SHARED_POLL_MS)
    }
  }

  #loginDeadlineMs(): number {
    const config = this.#config
    return (
      config.UPSTREAM_CONNECT_TIMEOUT_MS +
      config.UPSTREAM_HEADERS_TIMEOUT_MS +
      config.UPSTREAM_BODY_TIMEOUT_MS
    )
  }

  async #login(): Promise<CachedToken> {
    const config = this.#config
    const email = config.INCODE_ADMIN_EMAIL
    const password = config.INCODE_ADMIN_PASSWORD
    if (email === undefined || password === undefined) {
      throw new AdminNotConfiguredError()
    }
    this.#logins++
    this.#metrics?.adminTokenRefreshes.inc()
    // Through the policy like every call, under the log-in's own breaker.
    const answer = await this.#policy.request({
      endpoint: 'adminLogin',
      method: 'POST',
      path: config.INCODE_PATH_ADMIN_LOGIN,
      headers: {
        'x-api-key': config.INCODE_API_KEY,
        'api-version': config.INCODE_API_VERSION,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ email, password }),
      deadlineAt: Date.now() + this.#loginDeadlineMs(),
    })
    if (answer.status < 200 || answer.status > 299) {
      // The service's own credentials failed (what a caller sees for it: upstreamAnswers.ts).
      throw new UpstreamStatusError({
        status: answer.status,
        body: parseUpstreamBody(answer.body),
        endpoint: 'adminLogin',
        credential: 'service-key/login',
      })
    }
    const token = (parseUpstreamBody(answer.body) as { token?: unknown } | null)?.token
    if (typeof token !== 'string' || token === '') {
      throw new UpstreamBadResponseError('Incode admin log-in answered without a token')
    }
    const issuedAt = this.#now()
    const expiresAt = jwtExpiryMs(token) ?? issuedAt + DEFAULT_TOKEN_LIFETIME_MS
    // A token living shorter than twice the margin is renewed at half its life, not at once.
    const margin = Math.min(config.ADMIN_TOKEN_REFRESH_MARGIN_MS, (expiresAt - issuedAt) / 2)
    return { token, refreshAt: expiresAt - margin, expiresAt }
  }
}

/** Waits for `promise` as long as the caller is there and its deadline has not passed. */
function waitFor<T>(promise: Promise<T>, ctx: CallContext): Promise<T> {
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
