import type { RetryHandler } from 'undici'
import type { CallContext, Caller, IncodeEndpoint } from '../domain/calls.js'

/**
 * The types shared by the upstream layers (Incode client and admin token → policy → transport)
 * and by the services that use them. Types only: every layer imports this module, it imports none.
 */

export type { CallContext, Caller, IncodeEndpoint }

/** What an upstream call is for, as metrics and breakers name it. */
export type UpstreamEndpoint = IncodeEndpoint | 'adminLogin' | 'probe'

/** What Incode answered: status, lower-cased single-valued headers and the whole body. */
export interface RawAnswer {
  status: number
  headers: Record<string, string>
  /** Empty when the body was streamed to the call's sink (see TransportCall.streamBody). */
  body: Buffer
  /** Bytes handed to the call's sink, when the body was streamed there instead. */
  streamedBytes?: number
}

/**
 * Where a body goes while it arrives, instead of being read whole: each piece in order (views of
 * undici's buffers, to be kept only as long as needed), then the end. A throw refuses the answer:
 * the upstream body is dropped and the error is the call's.
 */
export interface BodySink {
  write(piece: Buffer): void
  end(): void
}

/** Chooses, once the status is known, whether that answer's body is streamed (to the sink returned). */
export type StreamBody = (status: number) => BodySink | undefined

/** 'half-open': the reset time has passed and the next call goes through as the probe, or it is out. */
export type BreakerState = 'closed' | 'half-open' | 'open'

/** How one answer bears on Incode's health: a 'failure' counts against its endpoint's breaker. */
export type AnswerVerdict = 'healthy' | 'failure'

/**
 * Judges an answer for the breaker, inside its accounting, for a caller that knows more than the
 * status (what it asked for, how the body must look); undefined leaves it to the default rules.
 */
export type AnswerJudge = (answer: RawAnswer) => AnswerVerdict | undefined

/** A CallContext with the caller's verdict on each answer for the endpoint's breaker. */
export interface UpstreamCallContext extends CallContext {
  judge?: AnswerJudge
  streamBody?: StreamBody
}

export interface CallOptions {
  /** Post to `/0` + path with the token alone, without x-api-key. */
  zeroPath?: boolean
}

/** One request's own bounds: aborted when the caller leaves or the deadline passes. */
export interface RequestBounds {
  signal: AbortSignal
  /** Epoch ms (Date.now() clock). */
  deadlineAt: number
}

/** The per-request part of undici's RetryOptions (read by the dispatcher's retry interceptor). */
export interface CallRetryOptions {
  retry: RetryHandler.RetryCallback
}

/** One HTTP request to Incode, as the transport sends it. */
export interface TransportCall {
  /** Metrics label and breaker; calls that name none are counted as 'probe' (the readiness probe's). */
  endpoint?: UpstreamEndpoint
  method: 'GET' | 'POST'
  path: string
  query?: Record<string, string | undefined>
  headers: Record<string, string>
  body?: string | Buffer
  /** The caller's: aborted when the incoming request's client disconnects. */
  signal?: AbortSignal
  /** Epoch ms (Date.now() clock): the incoming request's total deadline. */
  deadlineAt: number
  /** The incoming request's id, sent upstream as x-request-id. */
  requestId?: string
  /** Per-request retry decisions for the dispatcher's retry interceptor, bound to this request. */
  retryOptions?: (bounds: RequestBounds) => CallRetryOptions
  /** Streams the body of the answers it picks to a sink as it arrives (the others are read whole). */
  streamBody?: StreamBody
}

/** One logical call under the upstream policy: the request, and the caller's verdict on its answer. */
export interface UpstreamCall extends Omit<TransportCall, 'retryOptions'> {
  judge?: AnswerJudge
}

/** Where the Incode client gets the service's admin token (see AdminTokenProvider). */
export interface AdminTokens {
  /** The current token (logging in when there is none). */
  get(ctx: CallContext): Promise<string>
  /** After Incode refused `staleToken`: the renewed token (unchanged when it cannot be renewed). */
  refresh(staleToken: string, ctx: CallContext): Promise<string>
}
