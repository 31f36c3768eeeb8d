/**
 * The one place where Incode's error statuses become this service's answers. Upstream code throws
 * the facts (UpstreamStatusError: Incode's status and body, the endpoint, which credential was
 * used) and never picks a status itself; this mapper does, for /v1 and for the drop-in paths.
 */

/**
 * Which credential the refused call carried: the caller's own token, the service's admin token, or
 * the service's API key and admin e-mail/password (the admin log-in).
 */
export type Credential = 'caller-token' | 'admin-token' | 'service-key/login'

export interface UpstreamStatusFacts {
  /** Incode's HTTP status (not 2xx). */
  status: number
  /** Incode's body: parsed JSON, or its text. */
  body: unknown
  /** The upstream endpoint called (an image endpoint, or 'adminLogin'). */
  endpoint: string
  credential: Credential
}

export interface UpstreamStatusAnswer {
  /** This service's status for it. */
  status: number
  code: string
  message: string
  /**
   * The refusal concerns the request as a whole (its token, its interview, the request itself),
   * not one part of it: a split request stops rather than reporting it type by type.
   */
  wholeRequest: boolean
}

/** Endpoints whose 404 means that Incode does not know the interview. */
const INTERVIEW_ENDPOINTS: ReadonlySet<string> = new Set(['images', 'imageLinks', 'secondIdImages'])

/** Incode's statuses that are about the request itself, whichever part of it was being fetched. */
const WHOLE_REQUEST_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404])

/**
 * What a caller sees for an Incode error status:
 * - the admin log-in failing is the service's own credentials failing: 502, whatever Incode said;
 * - 401/403 are the caller's when its own token was used (bad token, not its interview), and the
 *   service's own credentials failing (502) when the admin token or the API key was;
 * - 400, 404 and 413 are the caller's request and keep their status;
 * - 429 (Incode's rate limit) is 503: retry later; 503 and 504 keep theirs;
 * - anything else (500, Incode's 502, the unexpected) is 502: the caller cannot fix it.
 * The code is UPSTREAM_<Incode's status>, so that logs and callers see what Incode said; but a 404
 * on an endpoint that names one interview (images, links, second ID) is Incode not knowing that
 * interview, and says so: INTERVIEW_NOT_FOUND. (The concatenated endpoint also answers 404 for a
 * known interview without images, so its 404 keeps the general code, its detail naming both.)
 */
export function upstreamStatusAnswer(facts: UpstreamStatusFacts): UpstreamStatusAnswer {
  const { status, endpoint, credential } = facts
  const code = `UPSTREAM_${status}`
  const wholeRequest = WHOLE_REQUEST_STATUSES.has(status)
  if (credential === 'service-key/login') {
    return { status: 502, code, message: `Incode admin log-in failed with status ${status}`, wholeRequest }
  }
  if (status === 404 && INTERVIEW_ENDPOINTS.has(endpoint)) {
    return {
      status: 404,
      code: 'INTERVIEW_NOT_FOUND',
      message: 'Interview not found: Incode knows no interview with this ID',
      wholeRequest,
    }
  }
  if (status === 404 && endpoint === 'concatenatedImages') {
    return {
      status: 404,
      code,
      message: 'Not found: Incode knows no interview with this ID, or it holds none of the images to combine',
      wholeRequest,
    }
  }
  return {
    status: serviceStatus(status, credential),
    code,
    message: `Incode answered ${status} on ${endpoint}`,
    wholeRequest,
  }
}

function serviceStatus(status: number, credential: Credential): number {
  if (status === 401 || status === 403) return credential === 'caller-token' ? status : 502
  if (status === 400 || status === 404 || status === 413) return status
  if (status === 429) return 503
  if (status === 503 || status === 504) return status
  return 502
}

/**
 * On the drop-in paths, Incode's own answer is passed on as it was when Incode gave one of its
 * error bodies (`{status, message, …}`) to the caller's own token; otherwise (a gateway's page, the
 * service's own credentials) the mapped answer is given in Incode's error shape.
 */
export function dropInPassThrough(facts: UpstreamStatusFacts): { status: number; body: unknown } | undefined {
  if (facts.credential !== 'caller-token' || !isIncodeErrorBody(facts.body)) return undefined
  return { status: facts.status, body: facts.body }
}

function isIncodeErrorBody(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'status' in body && 'message' in body
}
