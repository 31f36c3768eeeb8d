/**
 * Whether a caller-chosen identifier looks like a credential: a JWT (`eyJ…`) or a long run of
 * key-like characters. Such a value is never kept as a request ID, which is logged, sent to Incode
 * and recorded in the access trail.
 */
const CREDENTIAL_SHAPED = /eyJ|[A-Za-z0-9+/_-]{40,}/

/** The shortest run the pattern takes for a key: a shorter value without `eyJ` cannot match. */
const KEY_RUN = 40

export function looksLikeCredential(value: string): boolean {
  // Same answer as the pattern alone, without its scan from every position (a request ID, on
  // every request, is a 36-character UUID).
  if (value.length < KEY_RUN && !value.includes('eyJ')) return false
  return CREDENTIAL_SHAPED.test(value)
}
