/**
 * The form of an Incode interview ID as the service accepts it wherever a request names one (a
 * /v1 path parameter, a drop-in `?id=`, a token's claim): letters, digits, `_` and `-`, at most 64.
 * One form, so that one interview has one spelling, hence one cache key and one label.
 */
export const INTERVIEW_ID_PATTERN = '^[A-Za-z0-9_-]+$'
/** The same, or empty (a drop-in `?id=` left empty, read as not given). */
export const INTERVIEW_ID_OR_EMPTY_PATTERN = '^[A-Za-z0-9_-]*$'
export const INTERVIEW_ID_MAX_LENGTH = 64
const INTERVIEW_ID = new RegExp(INTERVIEW_ID_PATTERN)

export function isInterviewId(value: string): boolean {
  return value.length <= INTERVIEW_ID_MAX_LENGTH && INTERVIEW_ID.test(value)
}
