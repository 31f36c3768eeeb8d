import { Pool, type Dispatcher } from 'undici'
import type { Config } from '../config.js'
import {
  AppError,
  ClientClosedError,
  UpstreamBadResponseError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../errors.js'
import { TracedClient } from './attemptContext.js'
import { errorCodeOf } from './errorCode.js'
import type { BodySink, CallRetryOptions, RawAnswer, TransportCall } from './types.js'

export interface TransportOptions {
  /** Used instead of a Pool of our own, and left open by close(). */
  dispatcher?: Dispatcher
  /**
   * Composed on the dispatcher (innermost first): the policy's retry interceptor, whose per-request
   * decisions each call carries (TransportCall.retryOptions).
   */
  interceptors?: Dispatcher.DispatcherComposeInterceptor[]
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
])

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
])

/**
 * The one place where undici and network errors become typed errors. Typed errors pass through
 * unchanged; every other error is kept as `cause`. `phase` says whether the response headers had
 * already arrived: a connection lost after them is a broken answer (502), not an unreachable host.
 * Messages name the error code only, never request headers (tokens, keys).
 */
export function toUpstreamError(err: unknown, phase: 'before-headers' | 'body'): AppError {
  if (err instanceof AppError) return err
  const code = errorCodeOf(err)
  const options = { cause: err }
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new UpstreamTimeoutError(`Incode did not answer in time (${code})`, options)
  }
  if (phase === 'before-headers' && code !== undefined && UNAVAILABLE_CODES.has(code)) {
    return new UpstreamUnavailableError(`Incode is unreachable (${code})`, options)
  }
  if (phase === 'body') {
    return new UpstreamBadResponseError(
      `Incode's answer broke off (${code ?? 'unknown error'})`,
      'UPSTREAM_BAD_RESPONSE',
      options,
    )
  }
  return new UpstreamBadResponseError(
    `Incode request failed (${code ?? 'unknown error'})`,
    'UPSTREAM_BAD_RESPONSE',
    options,
  )
}

function tooLarge(limit: number): UpstreamBadResponseError {
  return new UpstreamBadResponseError(
    `Incode's answer is larger than ${limit} bytes`,
    'UPSTREAM_RESPONSE_TOO_LARGE',
  )
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
  }
  return flat
}

const MAX_TIMER_MS = 2 ** 31 - 1

const EMPTY = Buffer.alloc(0)

/** Why our own controller aborted the upstream request. */
type AbortCause = 'client-closed' | 'deadline'

/**
 * HTTP to Incode over one undici dispatcher, created once (a Pool for the INCODE_BASE_URL origin)
 * or injected. Every request carries its own timeouts and is cancelled when the caller goes away
 * or the incoming request's deadline passes; answers are size-guarded and read in full, or streamed to the call's sink (TransportCall.streamBody). The
 * resilience policy (breaker, bulkhead, rate budget, retries: policy.ts) sits above, and calls it.
 */
export class Transport {
  readonly #dispatcher: Dispatcher
  /** The Pool this transport created; an injected dispatcher is not ours to close. */
  readonly #ownPool: Pool | undefined
  readonly #origin: string
  readonly #basePath: string
  readonly #headersTimeout: number
  readonly #bodyTimeout: number
  readonly #maxBytes: number

  constructor(config: Config, options?: TransportOptions) {
    const base = new URL(config.INCODE_BASE_URL)
    this.#origin = base.origin
    this.#basePath = base.pathname.replace(/\/+$/, '')
    this.#headersTimeout = config.UPSTREAM_HEADERS_TIMEOUT_MS
    this.#bodyTimeout = config.UPSTREAM_BODY_TIMEOUT_MS
    this.#maxBytes = config.UPSTREAM_MAX_RESPONSE_BYTES
    let dispatcher: Dispatcher
    if (options?.dispatcher) {
      dispatcher = options.dispatcher
      this.#ownPool = undefined
    } else {
      const pool = new Pool(this.#origin, {
        connections: config.UPSTREAM_CONNECTIONS,
        keepAliveTimeout: config.UPSTREAM_KEEP_ALIVE_MS,
        connect: { timeout: config.UPSTREAM_CONNECT_TIMEOUT_MS },
        headersTimeout: config.UPSTREAM_HEADERS_TIMEOUT_MS,
        bodyTimeout: config.UPSTREAM_BODY_TIMEOUT_MS,
        // Each request is created in its own call's trace context, also when the pool queued it.
        factory: (origin, clientOptions) => new TracedClient(origin, clientOptions),
      })
      dispatcher = pool
      this.#ownPool = pool
    }
    const interceptors = options?.interceptors ?? []
    this.#dispatcher = interceptors.length > 0 ? dispatcher.compose(interceptors) : dispatcher
  }

  /**
   * One request to Incode (retried by the dispatcher's interceptors where the call's retryOptions
   * say so); returns whatever status Incode answered last.
   */
  async request(call: TransportCall): Promise<RawAnswer> {
    if (call.signal?.aborted) throw new ClientClosedError()
    const remaining = call.deadlineAt - Date.now()
    if (remaining <= 0) throw new UpstreamTimeoutError('The request deadline passed before calling Incode')

    const controller = new AbortController()
    let aborted: AbortCause | undefined
    const abort = (why: AbortCause) => {
      if (aborted !== undefined) return
      aborted = why
      controller.abort(why === 'client-closed' ? new ClientClosedError() : deadlineError())
    }
    const onCallerAbort = () => abort('client-closed')
    call.signal?.addEventListener('abort', onCallerAbort, { once: true })
    // Clamped: a longer delay would overflow setTimeout and fire at once.
    const timer = setTimeout(() => abort('deadline'), Math.min(remaining, MAX_TIMER_MS))

    // An abort wins over whatever undici reports for the cancelled request.
    const fail = (err: unknown, phase: 'before-headers' | 'body'): AppError => {
      if (aborted === 'client-closed') return err instanceof ClientClosedError ? err : new ClientClosedError()
      if (aborted === 'deadline') return err instanceof UpstreamTimeoutError ? err : deadlineError(err)
      return toUpstreamError(err, phase)
    }

    try {
      let response: Dispatcher.ResponseData
      try {
        const options: Dispatcher.RequestOptions & { retryOptions?: CallRetryOptions } = {
          origin: this.#origin,
          method: call.method,
          path: this.#pathWithQuery(call),
          headers:
            call.requestId === undefined ? call.headers : { ...call.headers, 'x-request-id': call.requestId },
          body: call.body ?? null,
          signal: controller.signal,
          headersTimeout: this.#headersTimeout,
          bodyTimeout: this.#bodyTimeout,
          // Read by the retry interceptor: this call's signal and deadline bound its retries.
          ...(call.retryOptions
            ? { retryOptions: call.retryOptions({ signal: controller.signal, deadlineAt: call.deadlineAt }) }
            : {}),
        }
        response = await this.#dispatcher.request(options)
      } catch (err) {
        throw fail(err, 'before-headers')
      }

      const { body } = response
      const declared = Number(response.headers['content-length'])
      if (Number.isFinite(declared) && declared > this.#maxBytes) {
        body.destroy()
        throw tooLarge(this.#maxBytes)
      }

      const sink = call.streamBody?.(response.statusCode)
      if (sink) {
        const streamedBytes = await this.#stream(body, sink, (err) => fail(err, 'body'))
        return {
          status: response.statusCode,
          headers: flattenHeaders(response.headers),
          body: EMPTY,
          streamedBytes,
        }
      }

      // With a declared length the answer is copied once into a buffer of that size, instead of
      // held as pieces and then concatenated (which briefly doubles a 10 MB answer).
      const presized =
        Number.isSafeInteger(declared) && declared > 0 ? Buffer.allocUnsafe(declared) : undefined
      const chunks: Buffer[] = []
      let size = 0
      let filled = 0
      try {
        for await (const chunk of body) {
          const piece = chunk as Buffer
          if (size + piece.length > this.#maxBytes) {
            body.destroy()
            throw tooLarge(this.#maxBytes)
          }
          if (presized && chunks.length === 0 && size + piece.length <= presized.length) {
            piece.copy(presized, size)
            filled += piece.length
          } else chunks.push(piece)
          size += piece.length
        }
      } catch (err) {
        if (err instanceof AppError && err.code === 'UPSTREAM_RESPONSE_TOO_LARGE') throw err
        throw fail(err, 'body')
      }

      return {
        status: response.statusCode,
        headers: flattenHeaders(response.headers),
        body: collected(presized, filled, chunks),
      }
    } finally {
      clearTimeout(timer)
      call.signal?.removeEventListener('abort', onCallerAbort)
    }
  }

  /**
   * Hands a body to `sink` piece by piece as it arrives, within the size guard; returns its length.
   * The sink's own refusal (a throw) drops the body and is the call's error as it is; a body that
   * breaks off is `broken(err)`.
   */
  async #stream(body: Dispatcher.ResponseData['body'], sink: BodySink, broken: (err: unknown) => AppError) {
    let size = 0
    let refusal: { err: unknown } | undefined
    try {
      for await (const chunk of body) {
        const piece = chunk as Buffer
        size += piece.length
        if (size > this.#maxBytes) {
          refusal = { err: tooLarge(this.#maxBytes) }
          break
        }
        try {
          sink.write(piece)
        } catch (err) {
          refusal = { err }
          break
        }
      }
    } catch (err) {
      throw broken(err)
    }
    if (refusal) {
      body.destroy()
      throw refusal.err
    }
    sink.end()
    return size
  }

  /** Closes the dispatcher this transport created; an injected one belongs to whoever injected it. */
  async close(): Promise<void> {
    if (this.#ownPool) await this.#ownPool.close()
  }

  #pathWithQuery(call: TransportCall): string {
    const path = `${this.#basePath}${call.path.startsWith('/') ? '' : '/'}${call.path}`
    const params = new URLSearchParams()
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) params.append(name, value)
    }
    const query = params.toString()
    return query === '' ? path : `${path}?${query}`
  }
}

function deadlineError(cause?: unknown): UpstreamTimeoutError {
  return new UpstreamTimeoutError(
    'The request deadline passed while waiting for Incode',
    cause === undefined ? undefined : { cause },
  )
}

/**
 * The answer's bytes: what filled the presized buffer, then any pieces that did not fit (a body
 * longer than it declared keeps every byte that came, within the size guard).
 */
function collected(presized: Buffer | undefined, filled: number, overflow: Buffer[]): Buffer {
  const head = presized?.subarray(0, filled)
  if (overflow.length === 0) return head ?? Buffer.alloc(0)
  return Buffer.concat(head ? [head, ...overflow] : overflow)
}
