import { randomUUID } from 'node:crypto'
import type { CachedToken, SharedTokenStore } from '../upstream/adminToken.js'
import type { Fleet } from './redis.js'

/** Deletes the lock only while this replica still holds it (it may have expired and been retaken). */
const UNLOCK =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

/**
 * The fleet's one admin token in Redis: sealed (AES-256-GCM, fleet.seal) with its times, expiring
 * with the token itself, under a keyed-hash name; and the renewal lock (SET NX PX, released only
 * by its holder). Every method answers `undefined` (or does nothing) when Redis is unavailable.
 */
export class FleetAdminTokenStore implements SharedTokenStore {
  readonly #fleet: Fleet
  readonly #now: () => number
  /** Who holds the lock: one log-in at a time runs in a replica, so one id per replica is enough. */
  readonly #holder = randomUUID()

  constructor(fleet: Fleet, now: () => number = Date.now) {
    this.#fleet = fleet
    this.#now = now
  }

  async read(): Promise<CachedToken | null | undefined> {
    const fleet = this.#fleet
    // Under the current secret first, then under the old ones (a rotation keeps the token).
    const keys = fleet.keys('admin-token')
    const values = await fleet.run((redis) => redis.mgetBuffer(...keys))
    if (values === undefined) return undefined
    for (const [index, sealed] of values.entries()) {
      if (sealed === null) continue
      const token = parseToken(fleet.seal.open(sealed))
      if (token) return token
      // Unreadable (another secret, altered): dropped, as a miss.
      const key = keys[index]
      if (key !== undefined) await fleet.run((redis) => redis.del(key))
    }
    return null
  }

  async write(token: CachedToken): Promise<void> {
    const ttlMs = Math.floor(token.expiresAt - this.#now())
    if (ttlMs <= 0) return
    const fleet = this.#fleet
    const sealed = fleet.seal.seal(JSON.stringify(token))
    await fleet.run((redis) => redis.set(fleet.key('admin-token'), sealed, 'PX', ttlMs))
  }

  async lock(ttlMs: number): Promise<boolean | undefined> {
    const fleet = this.#fleet
    const answer = await fleet.run((redis) =>
      redis.set(fleet.key('admin-token-lock'), this.#holder, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'),
    )
    return answer === undefined ? undefined : answer === 'OK'
  }

  async unlock(): Promise<void> {
    const fleet = this.#fleet
    await fleet.run((redis) => redis.eval(UNLOCK, 1, fleet.key('admin-token-lock'), this.#holder))
  }
}

function parseToken(plain: Buffer | undefined): CachedToken | undefined {
  if (plain === undefined) return undefined
  try {
    const value = JSON.parse(plain.toString()) as Partial<CachedToken> | null
    if (
      typeof value?.token === 'string' &&
      value.token !== '' &&
      typeof value.refreshAt === 'number' &&
      typeof value.expiresAt === 'number'
    ) {
      return { token: value.token, refreshAt: value.refreshAt, expiresAt: value.expiresAt }
    }
  } catch {
    // not JSON: unreadable
  }
  return undefined
}
