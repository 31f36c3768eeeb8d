import { createHash } from 'node:crypto'

/**
 * One image served as bytes: what makes it a JPEG, its strong ETag, and whether a conditional
 * request already holds it. Pure functions of the bytes and header text; no HTTP objects.
 */

/** Every JPEG starts with SOI (FF D8) followed by a marker (FF). */
const JPEG_START = Buffer.from([0xff, 0xd8, 0xff])

export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= JPEG_START.length && JPEG_START.equals(bytes.subarray(0, JPEG_START.length))
}

/**
 * A strong entity tag for these bytes: their SHA-256, base64url. The same bytes give the same tag
 * on every instance of the service, whichever request fetched them.
 */
export function strongEtag(bytes: Uint8Array): string {
  return `"${createHash('sha256').update(bytes).digest('base64url')}"`
}

/** The opaque tag of an entity tag, without its weakness prefix (`W/"x"` → `"x"`). */
function opaqueTag(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag
}

/**
 * Whether an If-None-Match header's condition fails for `etag`, so that the answer is 304 Not
 * Modified (RFC 9110 §13.1.2): `*`, or any listed tag equal to it by weak comparison.
 */
export function noneMatchFails(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false
  const wanted = opaqueTag(etag)
  return ifNoneMatch
    .split(',')
    .map((tag) => tag.trim())
    .some((tag) => tag === '*' || (tag !== '' && opaqueTag(tag) === wanted))
}
