import { LRUCache } from 'lru-cache'
import type { RawAnswer } from '../upstream/types.js'
import { sha256Hex } from './apiKeys.js'

/** The form of an upstream call with a caller's token: a refusal is remembered for this form only. */
export interface TokenUse {
  /** The Incode endpoint called (refusals could differ between endpoints). */
  endpoint: string
  /** `/0` form: Incode refuses an executive token there that it takes on the plain path. */
  zeroPath: boolean
  /** `?id=`: a 403 can mean "not this interview" for a token that is valid otherwise. */
  interviewId: string | undefined
}

export interface TokenVerdictsOptions {
  /** How long a refusal is answered from memory. */
  refusalTtlMs: number
  /** Entries per list (refused, accepted). */
  maxEntries: number
  /** Epoch-ms clock (tests inject a fake one). */
  now?: () => number
}

/** How long an accepted token keeps its own rate-limit bucket without a new acceptance. */
const ACCEPTED_TTL_MS = 15 * 60_000
/** Incode's refusals are a few hundred bytes; a larger one is not kept (the rate limit still applies). */
const REFUSAL_BODY_MAX_BYTES = 2048

/**
 * What Incode last said about callers' tokens, keyed by their SHA-256 (never the tokens). A token
 * Incode refused (401/403) is answered from here for a while, so that repeating it costs no
 * upstream call; a token it accepted (a 2xx answer) has its own rate-limit bucket, while one not
 * accepted yet counts against its address too (random tokens earn nothing).
 *
 * Only 2xx answers accept: a 5xx or 429 can come from before Incode looked at the token. A 401 ends
 * an acceptance (the token expired or was revoked); a 403 does not, as it may be about the
 * interview alone.
 */
export class TokenVerdicts {
  readonly #refused: LRUCache<string, RawAnswer>
  readonly #accepted: LRUCache<string, true>

  constructor(options: TokenVerdictsOptions) {
    const now = options.now ?? Date.now
    // The injected clock, also for TTLs; no autopurge: its timers would run on real time.
    const perf = { now: () => now() }
    this.#refused = new LRUCache({ max: options.maxEntries, ttl: options.refusalTtlMs, perf })
    this.#accepted = new LRUCache({ max: options.maxEntries, ttl: ACCEPTED_TTL_MS, perf })
  }

  /** Whether Incode has accepted this token lately (by its hash, as the rate limiter holds it). */
  isAcceptedHash(tokenHash: string): boolean {
    return this.#accepted.has(tokenHash)
  }

  /** Incode's remembered refusal of this token in this form of call, if there is one. */
  refusal(token: string, use: TokenUse): RawAnswer | undefined {
    return this.#refused.get(useKey(token, use))
  }

  /** Records Incode's answer to a call made with this token. */
  record(token: string, use: TokenUse, answer: RawAnswer): void {
    const { status } = answer
    if (status >= 200 && status <= 299) {
      this.#accepted.set(tokenHash(token), true)
      return
    }
    if (status !== 401 && status !== 403) return
    if (status === 401) this.#accepted.delete(tokenHash(token))
    if (answer.body.length > REFUSAL_BODY_MAX_BYTES) return
    const contentType = answer.headers['content-type']
    this.#refused.set(useKey(token, use), {
      status,
      headers: contentType === undefined ? {} : { 'content-type': contentType },
      body: Buffer.from(answer.body),
    })
  }

  get size(): { refused: number; accepted: number } {
    return { refused: this.#refused.size, accepted: this.#accepted.size }
  }
}

function useKey(token: string, use: TokenUse): string {
  return sha256Hex(JSON.stringify([use.endpoint, use.zeroPath, use.interviewId ?? '', token]))
}

/** The hash under which a token's acceptance is kept (and its rate-limit bucket named). */
export function tokenHash(token: string): string {
  return sha256Hex(token)
}
