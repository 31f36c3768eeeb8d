/**
 * Telling Incode's two kinds of 502 apart: the answer-size cap ("a response over 10 MB fails with
 * 502", the vendor's guide) and any other bad-gateway failure (an upstream outage, a proxy in
 * front of Incode). Only the first may be answered by splitting the request; the second is a
 * failure like a 500.
 *
 * What Incode's real size-cap 502 carries is not documented: the guide says only "502 error (bad
 * gateway)". It may be Incode's usual JSON error body (`{timestamp, status, error, message,
 * path}`), or a gateway's page. So the body can confirm the size cap when it says so (the
 * simulator's does: "Response of N bytes exceeds the 10000000 bytes limit; ..."), but it cannot
 * rule it out; the answer's expected size decides then.
 */

export type BadGatewayKind = 'size-cap' | 'upstream-failure'

/** A call expected to answer at least this share of the cap may plausibly have hit it. */
export const SIZE_CAP_PLAUSIBLE_SHARE = 0.5

export interface BadGatewayFacts {
  /** The 502's body: parsed JSON, or its text. */
  body: unknown
  /** What the call was expected to answer, in bytes; undefined when not known. */
  estimatedBytes: number | undefined
  /** Incode's answer cap in bytes. */
  capBytes: number
}

/** Words that name an answer too large; "rate limit exceeded" and the like do not count. */
const SIZE_WORDS =
  /\b(exceed(s|ed|ing)?|too (large|big)|size limit|payload|response size|(mb|bytes) limit)\b/i
const NOT_SIZE_WORDS = /\b(rate|throttl\w*|quota|too many)\b/i
/** Only the start of a text body is read: a gateway page states its reason early. */
const TEXT_READ_CHARS = 2000

/** The texts of a body that may say why it failed: its message and error fields, or its text. */
function reasonTexts(body: unknown): string[] {
  if (typeof body === 'string') return [body.slice(0, TEXT_READ_CHARS)]
  if (typeof body !== 'object' || body === null) return []
  const texts: string[] = []
  for (const key of ['message', 'error', 'detail', 'reason']) {
    const value = (body as Record<string, unknown>)[key]
    if (typeof value === 'string') texts.push(value.slice(0, TEXT_READ_CHARS))
  }
  return texts
}

/** Whether a 502's body itself says that the answer was too large. */
export function statesSizeCap(body: unknown): boolean {
  return reasonTexts(body).some((text) => SIZE_WORDS.test(text) && !NOT_SIZE_WORDS.test(text))
}

/**
 * The kind of one 502: 'size-cap' when its body says so, or when the call was expected to answer
 * at least SIZE_CAP_PLAUSIBLE_SHARE of the cap; otherwise 'upstream-failure' (a chunk estimated
 * well under the cap is not refused for its size: a spell of such 502s is an outage).
 */
export function classifyBadGateway(facts: BadGatewayFacts): BadGatewayKind {
  if (statesSizeCap(facts.body)) return 'size-cap'
  const { estimatedBytes, capBytes } = facts
  if (estimatedBytes !== undefined && estimatedBytes >= capBytes * SIZE_CAP_PLAUSIBLE_SHARE) return 'size-cap'
  return 'upstream-failure'
}
