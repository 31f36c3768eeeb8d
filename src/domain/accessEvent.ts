import { looksLikeCredential } from './credentialShape.js'
import type { ScannedEntry } from './flatJson.js'
import { IMAGE_TYPES, isImageType, type ImageType } from './imageTypes.js'
import { isInterviewId } from './interviewId.js'

/**
 * The access trail's event: who asked for which person's images, when, and what they got. Built
 * here from plain facts (no I/O); src/plugins/app/accessTrail.ts gathers them and writes the line.
 *
 * What it never holds: image data, link URLs, credentials, query strings. Every field is either
 * chosen by the service (route pattern, status, code, counts) or checked against a closed form
 * (image types, interview IDs, a W3C trace ID, the request ID's form), so caller input cannot
 * smuggle a token or a link into the trail.
 */
export interface AccessEvent {
  /** Marks the line as the access trail's (operational log lines carry `level` instead). */
  log: 'access'
  /** When the answer ended (or was cut), ISO 8601. */
  time: string
  requestId: string
  /** From the caller's W3C `traceparent`, when it sent a valid one. */
  traceId?: string
  /** Method and route pattern (`POST /v1/sessions/:interviewId/images`): never the URL. */
  route: string
  /** `partner:<name>`, `token:<first 16 hex of the token's SHA-256>`, or `none`. */
  caller: string
  ip: string
  interviewId?: string
  /** Types the body asked for; absent when it named none (all of them) or was not read. */
  asked?: ImageType[]
  served: ImageType[]
  missing: ImageType[]
  failed: ImageType[]
  status: number
  /** The service's error code (`API_KEY_INVALID`, `RATE_LIMITED`, …) when it answered one. */
  code?: string
  outcome: AccessOutcome
  /** Bytes written to the connection for this answer, headers included, when known. */
  bytes?: number
  cache?: AccessCacheResult
  /** Links dropped, on DELETE. */
  dropped?: number
  ms: number
}

/**
 * served: a complete 2xx answer; refused: 4xx, or a 503 that sheds load before any work;
 * failed: another 5xx; cut: the status line was sent but not the whole answer (the caller left
 * or the answer was cut); disconnected: the caller left before the status line.
 */
export type AccessOutcome = 'served' | 'refused' | 'failed' | 'cut' | 'disconnected'
export type AccessCacheResult = 'HIT' | 'MISS' | 'PARTIAL' | 'INVALIDATED'

/** What the services report about one request while serving it (`request.accessRecord`). */
export interface AccessRecord {
  served: ImageType[]
  missing: ImageType[]
  failed: ImageType[]
  cache?: AccessCacheResult
  dropped?: number
  /** The error code answered, set by the trail's onError hook. */
  code?: string
}

export function newAccessRecord(): AccessRecord {
  return { served: [], missing: [], failed: [] }
}

/** Notes the types of one upstream answer as served (a non-empty value) or missing (null or empty). */
export function recordAnswerTypes(
  record: AccessRecord | undefined,
  requested: readonly ImageType[],
  entries: readonly ScannedEntry[],
): void {
  if (!record) return
  const present = new Set<string>()
  for (const entry of entries) if (entry.kind === 'string' && entry.raw.length > 0) present.add(entry.key)
  recordServedTypes(record, requested, present)
}

/** The same, from the types an answer served (the others it was asked for were missing). */
export function recordServedTypes(
  record: AccessRecord | undefined,
  requested: readonly ImageType[],
  served: ReadonlySet<string>,
): void {
  if (!record) return
  for (const type of requested) (served.has(type) ? record.served : record.missing).push(type)
}

/** Codes of a 503 that refuses a request before any work (load shedding, shutdown). */
const REFUSING_503 = new Set(['OVERLOADED', 'SHUTTING_DOWN', 'FST_UNDER_PRESSURE'])

/** The facts the trail plugin gathers about one request as its answer ends. */
export interface AccessFacts {
  endedAtMs: number
  startedAtMs: number
  requestId: string
  traceparent: string | string[] | undefined
  method: string
  routeUrl: string
  caller: string
  ip: string
  /** Interview ID candidates in order of preference (path, `?id=`, token claim); the first valid one is kept. */
  interviewIds: readonly unknown[]
  /** The parsed body's `images`, whatever it holds. */
  askedImages: unknown
  record: AccessRecord
  status: number
  /** The whole answer was handed to the connection. */
  finished: boolean
  headersSent: boolean
  bytes: number | undefined
}

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/
const ZERO_TRACE = '0'.repeat(32)

/** The trace ID of a W3C `traceparent` header, or undefined when it is absent or malformed. */
export function traceIdOf(traceparent: string | string[] | undefined): string | undefined {
  const value = Array.isArray(traceparent) ? traceparent[0] : traceparent
  const traceId = value === undefined ? undefined : TRACEPARENT.exec(value.trim())?.[1]
  return traceId === ZERO_TRACE ? undefined : traceId
}

const ASKED_MAX_ITEMS = 256

const TYPE_ORDER = new Map<unknown, number>(IMAGE_TYPES.map((t, i) => [t, i]))

/** Whether `items` are known image types, each once, already in the one type order (the usual list). */
function inTypeOrder(items: readonly unknown[]): boolean {
  let last = -1
  for (const item of items) {
    const at = TYPE_ORDER.get(item)
    if (at === undefined || at <= last) return false
    last = at
  }
  return true
}

/** Known image types of a body's `images`, folded, in the one type order; undefined when it holds none. */
function askedTypes(images: unknown): ImageType[] | undefined {
  // A list this long was refused by validation: nothing worth walking.
  if (!Array.isArray(images) || images.length > ASKED_MAX_ITEMS) return undefined
  if (images.length > 0 && inTypeOrder(images)) return (images as readonly ImageType[]).slice()
  const asked = new Set<ImageType>()
  for (const item of images) if (isImageType(item)) asked.add(item)
  return asked.size === 0 ? undefined : IMAGE_TYPES.filter((t) => asked.has(t))
}

function outcomeOf(facts: AccessFacts, code: string | undefined): { status: number; outcome: AccessOutcome } {
  if (!facts.finished) {
    // No status line: the caller left first (499, as the error handler counts it).
    return facts.headersSent
      ? { status: facts.status, outcome: 'cut' }
      : { status: 499, outcome: 'disconnected' }
  }
  const { status } = facts
  if (status < 400) return { status, outcome: 'served' }
  if (status < 500 || (status === 503 && code !== undefined && REFUSING_503.has(code)))
    return { status, outcome: 'refused' }
  return { status, outcome: 'failed' }
}

/**
 * A caller's x-request-id is kept by the service when it is a short plain token, which a JWT or a
 * key also is (the bad-input suite sends one): the trail withholds an ID of a credential's shape.
 */
function requestIdFor(id: string): string {
  return looksLikeCredential(id) ? 'withheld' : id
}

/** The types of `types`, each once, in the one type order. */
function unique(types: readonly ImageType[]): ImageType[] {
  if (types.length === 0) return []
  if (inTypeOrder(types)) return types.slice()
  return IMAGE_TYPES.filter((t) => types.includes(t))
}

/** The last event's time, as text: under load many answers end within one millisecond. */
let lastTime = { ms: Number.NaN, text: '' }

function isoTime(ms: number): string {
  if (ms !== lastTime.ms) lastTime = { ms, text: new Date(ms).toISOString() }
  return lastTime.text
}

/** One request's access event, from what was gathered about it. */
export function buildAccessEvent(facts: AccessFacts): AccessEvent {
  const { record } = facts
  const { status, outcome } = outcomeOf(facts, record.code)
  const traceId = traceIdOf(facts.traceparent)
  const interviewId = facts.interviewIds.find(
    (id): id is string => typeof id === 'string' && isInterviewId(id),
  )
  const asked = askedTypes(facts.askedImages)
  // Built field by field in the line's order (no spread of optional parts): one object shape,
  // written on every image and link request.
  const event: AccessEvent = {
    log: 'access',
    time: isoTime(facts.endedAtMs),
    requestId: requestIdFor(facts.requestId),
  } as AccessEvent
  if (traceId !== undefined) event.traceId = traceId
  event.route = `${facts.method} ${facts.routeUrl}`
  event.caller = facts.caller
  event.ip = facts.ip
  if (interviewId !== undefined) event.interviewId = interviewId
  if (asked !== undefined) event.asked = asked
  event.served = unique(record.served)
  event.missing = unique(record.missing)
  event.failed = unique(record.failed)
  event.status = status
  if (record.code !== undefined) event.code = record.code
  event.outcome = outcome
  if (facts.bytes !== undefined) event.bytes = facts.bytes
  if (record.cache !== undefined) event.cache = record.cache
  if (record.dropped !== undefined) event.dropped = record.dropped
  event.ms = Math.max(0, facts.endedAtMs - facts.startedAtMs)
  return event
}

/**
 * The event as one JSON line. JSON.stringify stays: a hand-written line for this fixed shape was
 * measured no faster (V8's serializer has a fast path for plain data objects).
 */
export function accessEventLine(event: AccessEvent): string {
  return `${JSON.stringify(event)}\n`
}
