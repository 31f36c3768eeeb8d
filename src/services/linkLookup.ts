import {
  scopeForToken,
  type CacheSlot,
  type CacheStatus,
  type LinkCache,
  type LinkLoader,
  type ResolvedLinks,
} from '../cache/linkCache.js'
import type { AccessRecord } from '../domain/accessEvent.js'
import { IMAGE_TYPE_INFO, IMAGE_TYPES, type ImageType } from '../domain/imageTypes.js'
import { normaliseLinks, type LinkEntry } from '../domain/links.js'
import { foldTypes } from '../domain/requestedTypes.js'
import { readTokenClaims } from '../domain/tokenClaims.js'
import { UnauthorizedError, UpstreamBadResponseError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Caller } from '../domain/calls.js'
import type { IncodeClient } from '../upstream/incode.js'
import { inContext, markFailed, startSpan } from '../tracing/spans.js'
import type { LinkStore } from '../fleet/linkStore.js'
import { readAhead, sharedLoader, type ReadAhead, type SharedLoader } from './sharedLinks.js'

export interface LinkLookupDeps {
  incode: IncodeClient
  linkCache: LinkCache
  metrics: Metrics
  now: () => number
  deadlineMs: number
  /** Fleet mode's shared cache (Redis) behind linkCache; undefined without REDIS_URL. */
  linkStore?: LinkStore
}

/** One request's lookup. The cache scope, label and lifetime bound follow from the caller alone. */
export interface LinkLookup {
  caller: Caller
  types: readonly ImageType[]
  requestId?: string
  /** The drop-in `/0` form: the caller's token alone, without the API key. */
  zeroPath?: boolean
  /** Told what was served, for the access trail. */
  accessRecord?: AccessRecord | undefined
  /** Fleet mode: the Redis read started ahead of the request's body (linksAhead), if any. */
  ahead?: ReadAhead | undefined
}

export interface LinkLookupResult {
  entries: Map<ImageType, LinkEntry>
  /** Requested types with no link, in IMAGE_TYPES order (cropped types are never linked). */
  missing: ImageType[]
  status: CacheStatus
}

/**
 * Where a caller's links are cached, derived here so that no route can pick a wrong scope. The
 * admin token reads the 'admin' scope by interview. A caller's own token reads only its own scope
 * (its hash); its entries are labelled with the interview they belong to (the `?id=` it named, else
 * its own claim), so that DELETE reaches them, and live no longer than the token (its `exp`).
 */
export function cacheSlotFor(caller: Caller): CacheSlot {
  if (caller.kind === 'admin') return { scope: 'admin', interviewId: caller.interviewId }
  const claims = readTokenClaims(caller.token)
  const slot: CacheSlot = {
    scope: scopeForToken(caller.token),
    interviewId: caller.interviewId ?? '',
    label: caller.interviewId ?? claims.interviewId ?? '',
  }
  if (claims.expiresAtMs !== undefined) slot.notAfterMs = claims.expiresAtMs
  return slot
}

/**
 * What Incode would refuse whatever the cache holds, refused before the cache is consulted, so the
 * answer never depends on what another form of the request has cached: the `/0` form takes a
 * session token, not an executive one (Incode answers 401).
 */
function checkForm(caller: Caller, zeroPath: boolean): void {
  if (zeroPath && caller.kind === 'token' && readTokenClaims(caller.token).executive) {
    throw new UnauthorizedError(
      'Endpoints under /0 take a session token; an executive token is not accepted',
      'TOKEN_NOT_ACCEPTED',
    )
  }
}

/**
 * The cache lookup as a span of its own: the types asked, those loaded from Incode (the first of
 * coalesced callers has them: its load is the shared one) and the X-Cache result. A lookup the
 * cache answers whole (the warm path) finishes synchronously: no loader is made, nothing awaited.
 */
function resolveTraced(
  cache: LinkCache,
  slot: CacheSlot,
  types: readonly ImageType[],
  loader: () => LinkLoader | SharedLoader,
): ResolvedLinks | Promise<ResolvedLinks> {
  const { span, context } = startSpan('links.cache_lookup')
  const ended = (found: ResolvedLinks): ResolvedLinks => {
    if (span.isRecording())
      span.setAttributes({ 'gateway.types': [...types], 'gateway.cache.result': found.status })
    span.end()
    return found
  }
  const cached = cache.resolveCached(slot, types)
  if (cached) return ended(cached)
  const load = loader()
  return inContext(context, async () => {
    try {
      const traced: LinkLoader = (toLoad) => {
        if (span.isRecording()) span.setAttribute('gateway.cache.loaded_types', [...toLoad])
        return load(toLoad)
      }
      // Fleet mode reads Redis first and answers an L2 hit without the loader (sharedLinks.ts).
      const found = await ('resolve' in load
        ? load.resolve(cache, types, traced)
        : cache.resolve(slot, types, traced))
      return ended(found)
    } catch (err) {
      if (span.isRecording()) markFailed(span, err)
      span.end()
      throw err
    }
  })()
}

const typeOrder = new Map(IMAGE_TYPES.map((t, i) => [t, i]))
const byTypeOrder = (a: ImageType, b: ImageType) => (typeOrder.get(a) ?? 0) - (typeOrder.get(b) ?? 0)

/**
 * The loader of a lookup that missed: one Incode call for what this replica's cache lacks (in
 * fleet mode looked up in Redis first, then coalesced fleet-wide), bounded by the deadline.
 */
function incodeLoader(deps: LinkLookupDeps, lookup: LinkLookup, slot: CacheSlot): LinkLoader | SharedLoader {
  const zeroPath = lookup.zeroPath === true
  const deadlineAt = Date.now() + deps.deadlineMs
  const fromIncode: LinkLoader = async (toLoad) => {
    // A load may serve several coalesced callers, so one caller leaving does not cancel it;
    // the deadline still bounds it.
    const answer = await deps.incode.call(
      'imageLinks',
      lookup.caller,
      { images: toLoad },
      { deadlineAt, ...(lookup.requestId ? { requestId: lookup.requestId } : {}) },
      { zeroPath },
    )
    try {
      return normaliseLinks(JSON.parse(answer.body.toString('utf8')), toLoad, deps.now())
    } catch (err) {
      throw new UpstreamBadResponseError(
        'Incode sent links that could not be read',
        'UPSTREAM_BAD_RESPONSE',
        {
          cause: err,
        },
      )
    }
  }
  return deps.linkStore
    ? sharedLoader(deps.linkStore, slot, deadlineAt, fromIncode, deps.metrics, lookup.ahead)
    : fromIncode
}

const LINKABLE_TYPES = IMAGE_TYPES.filter((t) => IMAGE_TYPE_INFO[t].linkable)

/**
 * Fleet mode: starts the Redis read of a links lookup for `caller` before the request's body is
 * read, when this replica's cache holds nothing of the interview (see readAhead): every linkable
 * type, as the body may ask any. Pass it to lookupLinks as `ahead`. Undefined without Redis, and
 * whenever L1 has something of the interview (its hits never touch Redis).
 */
export function linksAhead(deps: LinkLookupDeps, caller: Caller): ReadAhead | undefined {
  if (!deps.linkStore) return undefined
  return readAhead(deps.linkStore, deps.linkCache, cacheSlotFor(caller), LINKABLE_TYPES)
}

/**
 * Links for a list of types, through the link cache: cached types are served, the rest asked of
 * Incode in one call shared by concurrent requests. Cached links and "no such image" answers are
 * served whatever the upstream's state, so while the breaker is open the fully cached requests
 * still succeed (and are counted as such); the others fail fast with the breaker's 503.
 */
export async function lookupLinks(deps: LinkLookupDeps, lookup: LinkLookup): Promise<LinkLookupResult> {
  const zeroPath = lookup.zeroPath === true
  checkForm(lookup.caller, zeroPath)
  const types = foldTypes(lookup.types)
  // Incode does not link cropped images: they are missing without asking.
  const linkable = types.filter((t) => IMAGE_TYPE_INFO[t].linkable)
  const unlinkable = types.filter((t) => !IMAGE_TYPE_INFO[t].linkable)
  const slot = cacheSlotFor(lookup.caller)

  const resolved =
    linkable.length === 0
      ? { entries: new Map<ImageType, LinkEntry>(), missing: [], status: 'HIT' as const }
      : await resolveTraced(deps.linkCache, slot, linkable, () => incodeLoader(deps, lookup, slot))

  // The links' own breaker: the base64 endpoints' state says nothing about serving links.
  const servedWhileOpen = resolved.status === 'HIT' && deps.incode.breakerState('imageLinks') !== 'closed'
  deps.metrics.cacheLookups.inc({ result: servedWhileOpen ? 'HIT_WHILE_BREAKER_OPEN' : resolved.status })
  const missing = [...resolved.missing, ...unlinkable].sort(byTypeOrder)
  const record = lookup.accessRecord
  if (record) {
    record.served.push(...resolved.entries.keys())
    record.missing.push(...missing)
    record.cache = resolved.status
  }
  return { entries: resolved.entries, missing, status: resolved.status }
}

/**
 * Drops the cached links of an interview, in every scope: this replica's, and in fleet mode the
 * shared ones and every replica's own (they are told, and answer, before this returns). The
 * entries dropped: with Redis, the larger of this replica's count and the shared cache's.
 */
export async function invalidateLinks(deps: LinkLookupDeps, interviewId: string): Promise<number> {
  const local = deps.linkCache.invalidate(interviewId)
  const shared = await deps.linkStore?.invalidate(interviewId)
  return Math.max(local, shared ?? 0)
}
