import type { ImageType } from './imageTypes.js'
import { foldTypes } from './requestedTypes.js'

export interface LinkAttempt {
  /** When the image was captured (ISO 8601), from Incode's `_prevAttempts` key. */
  capturedAt: string
  url: string
  /** When this link stops working (ISO 8601). */
  expiresAt: string
}

export interface LinkEntry {
  /** The latest capture's link. */
  url: string
  expiresAt: string
  /** Newest first; normally includes the latest capture, with the same URL as `url`. */
  attempts: LinkAttempt[]
}

export interface NormalisedLinks {
  entries: Map<
    ImageType,
    { entry: LinkEntry; expiresAtMs: number /* earliest expiry among the entry's links */ }
  >
  missing: ImageType[]
}

/** Incode documents its image links as lasting one hour. */
export const LINK_LIFETIME_MS = 3_600_000

/** The links answer was not a JSON object. */
export class LinkAnswerError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LinkAnswerError'
  }
}

const PREV_ATTEMPTS_SUFFIX = '_prevAttempts'

const COMPACT_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/
const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))?)?$/
const UNSIGNED_INTEGER = /^\d{1,15}$/
const CAPTURE_KEY = /^-?\d{1,16}$/

/** A UTC time from its fields, or undefined when a field is out of range (no rolling 02-30 into March). */
function utcMs(
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
  millis = 0,
): number | undefined {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined
  const date = new Date(0)
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, millis)
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day ? date.getTime() : undefined
}

/** `YYYYMMDDTHHMMSSZ` (AWS SigV4, Google) to ms, or undefined if malformed. */
function parseCompactDate(value: string): number | undefined {
  // The links of one answer are mostly signed at the same moment: the last date is kept.
  if (value === lastCompact.value) return lastCompact.ms
  const ms = parseCompactDateOnce(value)
  lastCompact = { value, ms }
  return ms
}
let lastCompact: { value: string; ms: number | undefined } = { value: '', ms: undefined }

function parseCompactDateOnce(value: string): number | undefined {
  const match = COMPACT_DATE.exec(value)
  if (!match) return undefined
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = match.slice(1).map(Number)
  return utcMs(year, month, day, hour, minute, second)
}

function parseSeconds(value: string | undefined): number | undefined {
  return value !== undefined && UNSIGNED_INTEGER.test(value) ? Number(value) * 1000 : undefined
}

/** `start + lifetime`, both from the query, or undefined unless both are well-formed. */
function signedFor(date: string | undefined, lifetime: string | undefined): number | undefined {
  if (date === undefined) return undefined
  const start = parseCompactDate(date)
  const seconds = parseSeconds(lifetime)
  return start === undefined || seconds === undefined ? undefined : start + seconds
}

/** Azure SAS `se`: an ISO 8601 date or date-time, UTC when no offset is given. */
function parseIsoDate(value: string | undefined): number | undefined {
  const match = value === undefined ? null : ISO_DATE.exec(value)
  if (!match) return undefined
  const [, year, month, day, hour, minute, second, fraction, , sign, offsetHours, offsetMinutes] = match
  const millis = fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'))
  const ms = utcMs(
    Number(year),
    Number(month),
    Number(day),
    Number(hour ?? 0),
    Number(minute ?? 0),
    Number(second ?? 0),
    millis,
  )
  if (ms === undefined || sign === undefined) return ms
  const offsetH = Number(offsetHours)
  const offsetM = Number(offsetMinutes)
  if (offsetH > 23 || offsetM > 59) return undefined
  return ms - (sign === '-' ? -1 : 1) * (offsetH * 60 + offsetM) * 60_000
}

/** A URL whose query reads the same raw as decoded: printable ASCII without `#`, `%`, `+`, space. */
const PLAIN_URL = /^[!-"$&-*,-~]*$/

/**
 * The query parameters of `url`, names lower-cased, the first of each name kept; undefined when
 * `url` is not a URL. A plain URL (the usual signed link) has its query split here, with the same
 * result as URLSearchParams without building the URL object and its parameters (most of the CPU
 * of a links miss); any other goes through URLSearchParams.
 */
function queryParams(url: string): Map<string, string> | undefined {
  const params = new Map<string, string>()
  const keep = (name: string, value: string) => {
    const lower = name.toLowerCase()
    if (!params.has(lower)) params.set(lower, value)
  }
  if (!PLAIN_URL.test(url)) {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return undefined
    }
    for (const [name, value] of parsed.searchParams) keep(name, value)
    return params
  }
  if (!URL.canParse(url)) return undefined
  const mark = url.indexOf('?')
  if (mark === -1) return params
  for (const pair of url.slice(mark + 1).split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    keep(eq === -1 ? pair : pair.slice(0, eq), eq === -1 ? '' : pair.slice(eq + 1))
  }
  return params
}

/**
 * When the link at `url` stops working: the expiry signed into the URL when it carries one, but
 * never later than `issuedAtMs` + one hour (Incode's documented lifetime). A link may have been
 * signed before Incode handed it out, so its own expiry can be earlier than that hour, and must
 * win. Understands AWS SigV4 (`X-Amz-Date` + `X-Amz-Expires`), AWS SigV2 and CloudFront
 * (`Expires`, unix seconds), Google (`X-Goog-Date` + `X-Goog-Expires`) and Azure SAS (`se`);
 * parameter names are matched case-insensitively. Malformed values and URLs are ignored,
 * never thrown.
 */
export function linkExpiryMs(url: string, issuedAtMs: number): number {
  const documented = issuedAtMs + LINK_LIFETIME_MS
  const params = queryParams(url)
  if (params === undefined) return documented
  const signed = [
    signedFor(params.get('x-amz-date'), params.get('x-amz-expires')),
    parseSeconds(params.get('expires')),
    signedFor(params.get('x-goog-date'), params.get('x-goog-expires')),
    parseIsoDate(params.get('se')),
  ]
  let expiry = documented
  for (const ms of signed) if (ms !== undefined && ms < expiry) expiry = ms
  return expiry
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const prototype = Object.getPrototypeOf(value) as unknown
  return prototype === Object.prototype || prototype === null
}

function isoOrUndefined(ms: number): string | undefined {
  // A session's capture times come back on every miss, and one answer's expiries are mostly the
  // same time: the texts are kept (a few hundred at most; the map starts afresh when full).
  const known = isoTexts.get(ms)
  if (known !== undefined) return known
  const iso = isoOnce(ms)
  if (iso === undefined) return undefined
  if (isoTexts.size >= ISO_TEXTS_MAX) isoTexts.clear()
  isoTexts.set(ms, iso)
  return iso
}
const ISO_TEXTS_MAX = 512
const isoTexts = new Map<number, string>()

function isoOnce(ms: number): string | undefined {
  const date = new Date(ms)
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}

/**
 * Turns Incode's links answer (`{type: latestUrl, type_prevAttempts: {captureMs: url}}`) into
 * one entry per requested type. A type whose latest link is absent, `null`, `""` or not a string
 * is missing. Attempts come from `_prevAttempts`, newest first, skipping capture keys that are
 * not integers and URLs that are not non-empty strings; without usable `_prevAttempts` the
 * latest link is the only attempt, with `issuedAtMs` standing in for its capture time. The
 * attempts are kept as Incode gave them: if they leave out the latest link, it is not added.
 * Keys that were not requested are ignored.
 *
 * @throws LinkAnswerError when `answer` is not a plain object.
 * @throws RangeError when `issuedAtMs` is not a valid time.
 */
export function normaliseLinks(
  answer: unknown,
  requested: readonly ImageType[],
  issuedAtMs: number,
): NormalisedLinks {
  if (!isPlainObject(answer)) {
    const what = answer === null ? 'null' : Array.isArray(answer) ? 'an array' : typeof answer
    throw new LinkAnswerError(`expected the links answer to be a JSON object, got ${what}`)
  }
  const issuedAt = isoOrUndefined(issuedAtMs)
  if (issuedAt === undefined) throw new RangeError(`issuedAtMs is not a valid time: ${issuedAtMs}`)

  const entries: NormalisedLinks['entries'] = new Map()
  const missing: ImageType[] = []
  for (const type of foldTypes(requested)) {
    const url = Object.hasOwn(answer, type) ? answer[type] : undefined
    if (typeof url !== 'string' || url === '') {
      missing.push(type)
      continue
    }
    const latestExpiry = linkExpiryMs(url, issuedAtMs)
    let earliest = latestExpiry

    const attempts: Array<LinkAttempt & { capturedAtMs: number }> = []
    const prevKey = `${type}${PREV_ATTEMPTS_SUFFIX}`
    const prev = Object.hasOwn(answer, prevKey) ? answer[prevKey] : undefined
    if (isPlainObject(prev)) {
      for (const [key, attemptUrl] of Object.entries(prev)) {
        if (!CAPTURE_KEY.test(key) || typeof attemptUrl !== 'string' || attemptUrl === '') continue
        const capturedAtMs = Number(key)
        const capturedAt = isoOrUndefined(capturedAtMs)
        if (capturedAt === undefined) continue
        // The latest capture's attempt normally carries the latest link itself: worked out once.
        const expiry = attemptUrl === url ? latestExpiry : linkExpiryMs(attemptUrl, issuedAtMs)
        if (expiry < earliest) earliest = expiry
        attempts.push({ capturedAt, capturedAtMs, url: attemptUrl, expiresAt: toIso(expiry) })
      }
    }
    attempts.sort((a, b) => b.capturedAtMs - a.capturedAtMs)
    if (attempts.length === 0) {
      attempts.push({ capturedAt: issuedAt, capturedAtMs: issuedAtMs, url, expiresAt: toIso(latestExpiry) })
    }

    const entry: LinkEntry = {
      url,
      expiresAt: toIso(latestExpiry),
      attempts: attempts.map(({ capturedAt, url: attemptUrl, expiresAt }) => ({
        capturedAt,
        url: attemptUrl,
        expiresAt,
      })),
    }
    entries.set(type, { entry, expiresAtMs: earliest })
  }
  return { entries, missing }
}

/** Expiries are at most issuedAtMs + 1 h and at least a parsed date, so always representable. */
function toIso(ms: number): string {
  return isoOrUndefined(ms) ?? new Date(0).toISOString()
}

/**
 * Rebuilds Incode's own answer shape from entries, for the drop-in Incode paths: `type` → latest
 * URL and `type_prevAttempts` → {capture unix ms: url}. Attempts whose `capturedAt` is not a
 * valid date are left out.
 */
export function toIncodeLinksShape(
  entries: Iterable<[ImageType, LinkEntry]>,
): Record<string, string | Record<string, string>> {
  const shape: Record<string, string | Record<string, string>> = {}
  for (const [type, entry] of entries) {
    const prevAttempts: Record<string, string> = {}
    for (const attempt of entry.attempts) {
      const capturedAtMs = Date.parse(attempt.capturedAt)
      if (!Number.isNaN(capturedAtMs)) prevAttempts[String(capturedAtMs)] = attempt.url
    }
    shape[type] = entry.url
    shape[`${type}${PREV_ATTEMPTS_SUFFIX}`] = prevAttempts
  }
  return shape
}

/**
 * JSON of cached entries, worked out once per entry: the cache hands out the same frozen entry
 * on every hit, so its text is kept beside it (weakly, so it goes when the entry does). Entries
 * that are not frozen may still change and are serialised each time.
 */
const entryJson = new WeakMap<LinkEntry, string>()
/** Keyed by entry, remembered with its type: Incode's shape names the type in the text. */
const incodeEntryJson = new WeakMap<LinkEntry, { type: ImageType; json: string }>()

/**
 * Works out, once, the texts a cached (frozen) entry is answered with on either route family and
 * keeps them beside it (v1 shape, Incode shape), so that the cache can count what it really holds.
 * Called when the entry is stored: no hit after that serialises anything.
 */
export function prepareEntryTexts(type: ImageType, entry: LinkEntry): [string, string] {
  if (!Object.isFrozen(entry)) throw new TypeError('only frozen (cached) entries keep their texts')
  let json = entryJson.get(entry)
  if (json === undefined) {
    json = JSON.stringify(entry)
    entryJson.set(entry, json)
  }
  let incode = incodeEntryJson.get(entry)
  if (incode?.type !== type) {
    incode = { type, json: JSON.stringify(toIncodeLinksShape([[type, entry]])).slice(1, -1) }
    incodeEntryJson.set(entry, incode)
  }
  return [json, incode.json]
}

/** `{"images":{type: entry…},"missing":[…]}` as text, the /v1 links answer. */
export function linksAnswerJson(
  entries: Iterable<[ImageType, LinkEntry]>,
  missing: readonly ImageType[],
): string {
  let images = ''
  for (const [type, entry] of entries) {
    let json = entryJson.get(entry)
    if (json === undefined) {
      json = JSON.stringify(entry)
      if (Object.isFrozen(entry)) entryJson.set(entry, json)
    }
    images += `${images === '' ? '' : ','}${JSON.stringify(type)}:${json}`
  }
  return `{"images":{${images}},"missing":${JSON.stringify(missing)}}`
}

/** Incode's own links answer shape (see toIncodeLinksShape) as text, for the drop-in paths. */
export function incodeLinksAnswerJson(entries: Iterable<[ImageType, LinkEntry]>): string {
  let body = ''
  for (const [type, entry] of entries) {
    // The shape of one entry is `"type":"url","type_prevAttempts":{…}`: the braces are trimmed off.
    const known = incodeEntryJson.get(entry)
    let json = known?.type === type ? known.json : undefined
    if (json === undefined) {
      json = JSON.stringify(toIncodeLinksShape([[type, entry]])).slice(1, -1)
      if (Object.isFrozen(entry)) incodeEntryJson.set(entry, { type, json })
    }
    body += `${body === '' ? '' : ','}${json}`
  }
  return `{${body}}`
}
