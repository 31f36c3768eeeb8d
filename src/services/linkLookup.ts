import type { CacheStatus, LinkCache } from '../cache/linkCache.js'
import { IMAGE_TYPE_INFO, IMAGE_TYPES, type ImageType } from '../domain/imageTypes.js'
import { normaliseLinks, type LinkEntry } from '../domain/links.js'
import { foldTypes } from '../domain/requestedTypes.js'
import { UpstreamBadResponseError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Caller, IncodeClient } from '../upstream/incode.js'

export interface LinkLookupDeps {
  incode: IncodeClient
  linkCache: LinkCache
  telemetry: Metrics
  now: () => number
  deadlineMs: number
}

export interface LinkLookup {
  caller: Caller
  /** Cache scope: 'admin', or scopeForToken(the caller's token). */
  scope: string
  interviewId: string
  types: readonly ImageType[]
  requestId?: string
  zeroPath?: boolean
}

export interface LinkLookupResult {
  entries: Map<ImageType, LinkEntry>
  /** Requested types with no link, in IMAGE_TYPES order (cropped types are never linked). */
  missing: ImageType[]
  status: CacheStatus
}

const typeOrder = new Map(IMAGE_TYPES.map((t, i) => [t, i]))
const byTypeOrder = (a: ImageType, b: ImageType) => (typeOrder.get(a) ?? 0) - (typeOrder.get(b) ?? 0)

/**
 * Links for a list of types, through the link cache: cached types are served, the rest asked of
 * Incode in one call shared by concurrent requests. Cached links are served whatever the
 * upstream's state, so while the breaker is open the fully cached requests still succeed (and
 * are counted as such); the others fail fast with the breaker's 503.
 */
export async function lookupLinks(deps: LinkLookupDeps, lookup: LinkLookup): Promise<LinkLookupResult> {
  const types = foldTypes(lookup.types)
  // Incode does not link cropped images: they are missing without asking.
  const linkable = types.filter((t) => IMAGE_TYPE_INFO[t].linkable)
  const unlinkable = types.filter((t) => !IMAGE_TYPE_INFO[t].linkable)
  const deadlineAt = Date.now() + deps.deadlineMs

  const resolved =
    linkable.length === 0
      ? { entries: new Map<ImageType, LinkEntry>(), missing: [], status: 'HIT' as const }
      : await deps.linkCache.resolve(lookup.scope, lookup.interviewId, linkable, async (toLoad) => {
          // A load may serve several coalesced callers, so one caller leaving does not cancel it;
          // the deadline still bounds it.
          const answer = await deps.incode.call(
            'imageLinks',
            lookup.caller,
            { images: toLoad },
            { deadlineAt, ...(lookup.requestId ? { requestId: lookup.requestId } : {}) },
            { zeroPath: lookup.zeroPath === true },
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
        })

  const servedWhileOpen = resolved.status === 'HIT' && deps.incode.breakerState() !== 'closed'
  deps.telemetry.cacheLookups.inc({ result: servedWhileOpen ? 'HIT_WHILE_BREAKER_OPEN' : resolved.status })
  return {
    entries: resolved.entries,
    missing: [...resolved.missing, ...unlinkable].sort(byTypeOrder),
    status: resolved.status,
  }
}
