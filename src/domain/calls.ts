/**
 * Who a call to Incode is made for, and within which bounds: what routes know of a caller and
 * hand to the services, without reaching into the upstream client.
 */

/** The Incode image endpoints the service calls. */
export type IncodeEndpoint = 'images' | 'imageLinks' | 'secondIdImages' | 'concatenatedImages'

export type Caller =
  /** The service's admin token; the interview must be named (`?id=`). */
  | { kind: 'admin'; interviewId: string }
  /** A caller's own Incode token (a session token, or whatever the caller holds on drop-in paths). */
  | { kind: 'token'; token: string; interviewId?: string }

/** The incoming request's bounds, which every upstream call made for it keeps to. */
export interface CallContext {
  /** Aborted when the incoming request's client disconnects. */
  signal?: AbortSignal
  /** Epoch ms (Date.now() clock): the incoming request's total deadline. */
  deadlineAt: number
  /** The incoming request's id, sent upstream as x-request-id. */
  requestId?: string
}
