import type { ImageType } from '../domain/imageTypes.js'
import { prepareEntryTexts, type LinkEntry } from '../domain/links.js'

// LinkCache's parts (src/cache/linkCache.ts): what an entry costs the heap, until when it may be
// served, its key, its frozen copy, and the answer in the caller's order.

/**
 * Heap overhead beyond the strings, in bytes, measured on Node 20 (x64) by filling a cache and
 * comparing heapUsed with the accounted total (within 1% for 1 to 8 attempts per link; the former
 * count, JSON + key, was 4.5 times short; test/cache/bounds.test.ts keeps them close): per record,
 * lru-cache's key map entry, the Stored record and the invalidation index entry; per link, the
 * frozen entry, its attempts array and the weak-map records holding its texts; per attempt, its
 * frozen object. lru-cache's slot arrays are sized by maxEntries up front (about 44 bytes a slot),
 * a fixed cost outside this count.
 */
const RECORD_OVERHEAD_BYTES = 200
const LINK_OVERHEAD_BYTES = 400
const ATTEMPT_OVERHEAD_BYTES = 224
/** V8's header of a sequential string. */
const STRING_HEADER_BYTES = 16

/** Heap bytes of a flat string: one byte per character unless one needs two. */
function stringHeapBytes(text: string): number {
  // eslint-disable-next-line no-control-regex
  return STRING_HEADER_BYTES + (/[^\u0000-\u00ff]/.test(text) ? 2 : 1) * text.length
}

/**
 * What one stored entry costs the heap: its key, every string of the entry (the latest link
 * and each attempt's, which are separate strings even when equal), the answer texts kept beside
 * it (prepared here), and the fixed overhead. An estimate, but one that counts everything held.
 */
export function entryHeapBytes(key: string, type: ImageType, entry: LinkEntry | undefined): number {
  let bytes = RECORD_OVERHEAD_BYTES + stringHeapBytes(key)
  if (entry === undefined) return bytes
  bytes += LINK_OVERHEAD_BYTES + stringHeapBytes(entry.url) + stringHeapBytes(entry.expiresAt)
  for (const attempt of entry.attempts) {
    bytes += ATTEMPT_OVERHEAD_BYTES
    bytes += stringHeapBytes(attempt.url) + stringHeapBytes(attempt.capturedAt)
    bytes += stringHeapBytes(attempt.expiresAt)
  }
  for (const text of prepareEntryTexts(type, entry)) bytes += stringHeapBytes(text)
  return bytes
}

/**
 * Until when one answer may be served (epoch ms): a link until its earliest expiry less the margin,
 * "no such image" for the missing TTL, and neither at or after the credential's expiry. The same
 * rule for every tier (this cache, and Redis in fleet mode).
 */
export function servableUntilMs(
  expiresAtMs: number | undefined,
  rule: { now: number; marginMs: number; missingTtlMs: number; notAfterMs: number },
): number {
  const until = expiresAtMs === undefined ? rule.now + rule.missingTtlMs : expiresAtMs - rule.marginMs
  return Math.min(until, rule.notAfterMs)
}

/**
 * Copied once when stored and frozen, so that every hit can hand out the same object: no caller
 * can alter what the cache holds, and hits cost no copy.
 */
export function frozenCopy(entry: LinkEntry): LinkEntry {
  // Already frozen through (resolveStored's entries): nobody can alter it, so it is kept as it is.
  if (Object.isFrozen(entry) && Object.isFrozen(entry.attempts)) return entry
  const attempts = entry.attempts.map((a) => Object.freeze({ ...a }))
  return Object.freeze({ ...entry, attempts: Object.freeze(attempts) as LinkEntry['attempts'] })
}

/** Freezes an entry, its attempts and each attempt, in place (see LinkCache.resolveStored). */
export function deepFreeze(entry: LinkEntry): LinkEntry {
  for (const attempt of entry.attempts) Object.freeze(attempt)
  Object.freeze(entry.attempts)
  return Object.freeze(entry)
}

/** The key of a (scope, interview, type) entry. */
export function keyOf(scope: string, interviewId: string, type: ImageType): string {
  // The parts are joined by a NUL, which none of them can hold (scopes are 'admin' or a hex hash,
  // interview IDs are checked by the routes' schemas, types come from the fixed list); a part
  // that did hold one is JSON-encoded instead, so keys stay unambiguous.
  if (scope.includes('\0') || interviewId.includes('\0')) return JSON.stringify([scope, interviewId, type])
  return `${scope}\0${interviewId}\0${type}`
}

export function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`LinkCache: ${name} must be a positive integer, got ${String(value)}`)
  }
}

/** HIT: every requested type came from the cache; MISS: none did; PARTIAL: some did. */
export type CacheStatus = 'HIT' | 'MISS' | 'PARTIAL'

export interface ResolvedLinks {
  entries: Map<ImageType, LinkEntry>
  /** Types with no link: reported so by the loader now, or cached as such. */
  missing: ImageType[]
  status: CacheStatus
}

/** The answer in the caller's order, whichever source each type came from; the rest missing. */
export function inCallersOrder(
  wanted: readonly ImageType[],
  entries: Map<ImageType, LinkEntry>,
  status: CacheStatus,
): ResolvedLinks {
  const ordered = new Map<ImageType, LinkEntry>()
  const missing: ImageType[] = []
  for (const type of wanted) {
    const entry = entries.get(type)
    if (entry) ordered.set(type, entry)
    else missing.push(type)
  }
  return { entries: ordered, missing, status }
}
