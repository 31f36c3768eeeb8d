/**
 * Whether a caller-chosen identifier looks like a credential: a JWT (`eyJ…`) or a long run of
 * key-like characters. Such a value is never kept as a request ID, which is logged, sent to Incode
 * and recorded in the access trail.
 */
const CREDENTIAL_SHAPED = /eyJ|[A-Za-z0-9+/_-]{40,}/

export function looksLikeCredential(value: string): boolean {
  return CREDENTIAL_SHAPED.test(value)
}
