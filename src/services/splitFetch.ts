import pLimit from 'p-limit'
import { classifyBadGateway, type BadGatewayKind } from '../domain/badGateway.js'
import { type ScannedEntry, scanFlatJsonObject } from '../domain/flatJson.js'
import { INCODE_RESPONSE_CAP_BYTES, type ImageType } from '../domain/imageTypes.js'
import { bisect, planSplit } from '../domain/planChunks.js'
import type { SizeEstimator } from '../domain/sizeEstimator.js'
import { parseUpstreamBody } from '../domain/upstreamBody.js'
import { AppError, ClientClosedError, UpstreamBadResponseError, UpstreamStatusError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { IncodeClient } from '../upstream/incode.js'
import type { AnswerVerdict, BodySink, Caller, CallContext, RawAnswer } from '../upstream/types.js'
import { inSpan, type Span } from '../tracing/spans.js'
import type { Release, Reserver } from './byteBudget.js'
import { scanUpstreamObject } from './upstreamJson.js'

export interface TypeFailure {
  status: number
  code: string
  message: string
}

export interface SplitFetchOptions {
  incode: IncodeClient
  estimator: SizeEstimator
  budgetBytes: number
  concurrency: number
  /** 'parallel': size the calls so that they run side by side (see parallelBudget); default 'fewest-calls'. */
  plan?: 'parallel' | 'fewest-calls'
  /**
   * Service-wide bound on answer bytes held: each part reserves its estimate before its call and
   * releases it once `onAnswer` (or its PartStream's `handedOn`) has handed the answer on. Leave it out when the caller holds
   * every part until the end (it must then reserve the whole request's size itself). Pass the
   * caller's view (`ByteBudget.forCaller`), so that its parts wait behind its own.
   */
  memory?: Reserver
  endpoint: 'images' | 'secondIdImages'
  caller: Caller
  types: readonly ImageType[]
  ctx: CallContext
  /** Drop-in paths answer as Incode would: the first failure of any part fails the whole request. */
  failFast: boolean
  /** Where calls per request, splits and bisections are counted. */
  metrics?: Metrics
  /** Call Incode's `/0` form (session token alone), as a drop-in `/0` request did. */
  zeroPath?: boolean
  /**
   * Called once per successful upstream answer, as answers complete; awaited (backpressure).
   * Unused when `openPart` is given.
   */
  onAnswer?: (chunk: readonly ImageType[], entries: ScannedEntry[], body: Buffer) => Promise<void> | void
  /**
   * Streams each successful answer as it arrives instead: called with the types a call asked for
   * once Incode has answered it 2xx, it returns where that answer's body goes.
   */
  openPart?: (chunk: readonly ImageType[]) => PartStream
}

/** Where a part's answer goes as it arrives (see SplitFetchOptions.openPart). */
export interface PartStream extends BodySink {
  /** Raw sizes of the images the answer held, by type (for the size estimator). */
  sizes(): Map<ImageType, number>
  /** After the body ended well: resolves once the part is handed on (awaited before its memory is given back). */
  handedOn(): Promise<void>
  /**
   * The call failed after its body began: which requested types are whole in the answer already
   * (they are delivered; only the others failed), and whether an image of it was on the wire
   * unfinished (`broken`: the answer can only be cut).
   */
  abandon(): { delivered: ReadonlySet<ImageType>; broken: boolean }
}

export interface SplitFetchOutcome {
  /** Types that could not be fetched, with why; empty when every part succeeded. */
  failures: Map<ImageType, TypeFailure>
  /**
   * The first part-level failure's error, for a request where no part succeeded. A failure of
   * the whole request (isRequestLevel, or any failure with failFast) is thrown instead, whichever
   * part met it and whether or not other parts had been answered.
   */
  firstError: AppError | undefined
  answered: number
  upstreamCalls: number
  bisections: number
  plannedChunks: number
}

/** One upstream call to make: a chunk, and whether it is the retry of a failed one. */
interface Part {
  chunk: readonly ImageType[]
  isRetry: boolean
  /** Why the call is made (a trace attribute): planned, a half of a refused part, or a retry. */
  kind: 'planned' | 'bisection' | 'retry'
}

/**
 * Errors that are about the request as a whole (token, interview, caller), not one part of it:
 * the caller leaving, or a refusal that the status mapper (upstreamAnswers.ts) says is the request's.
 */
function isRequestLevel(err: unknown): boolean {
  if (err instanceof ClientClosedError) return true
  return err instanceof UpstreamStatusError && err.wholeRequest
}

/** `promise`, or ClientClosedError once `signal` aborts first (the request is over). */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new ClientClosedError())
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new ClientClosedError())
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err
  return new UpstreamBadResponseError('Incode sent an invalid answer', 'UPSTREAM_BAD_RESPONSE', {
    cause: err,
  })
}

/** `{` and `}` around an answer's entries. */
const BRACES_BYTES = 2

/**
 * Fetches base64 images in as few upstream calls as fit under the budget, in parallel up to the
 * bound, hands each answer on as soon as it arrives (so no request holds every part at once), and
 * splits any part Incode refuses as too large in two until single types remain. A single type
 * that alone is too large is reported as failed, never retried forever.
 *
 * A 502 is read as "too large" only where the part's size makes Incode's cap plausible or the
 * body says so (domain/badGateway.ts); any other 502 is an upstream failure: counted by the
 * breaker, retried once within the retry budget, never split. Each answer is judged inside the
 * breaker's accounting: a 200 that is not a flat JSON object counts as a failure too.
 */
export function splitFetch(options: SplitFetchOptions): Promise<SplitFetchOutcome> {
  // One span for the plan and its outcome; one child span per part (see `run`).
  return inSpan('images.split', (span) => fetchInParts(options, span))
}

async function fetchInParts(options: SplitFetchOptions, span: Span): Promise<SplitFetchOutcome> {
  const { incode, estimator, endpoint, caller, ctx } = options
  const estimate = (t: ImageType) => estimator.estimate(t)
  const chunks = planSplit(options.types, estimate, {
    budgetBytes: options.budgetBytes,
    slots: options.concurrency,
    plan: options.plan ?? 'fewest-calls',
  })
  if (span.isRecording()) {
    span.setAttributes({
      'incode.endpoint': endpoint,
      'gateway.types': [...options.types],
      'gateway.plan.parts': chunks.length,
      'gateway.plan.chunks': chunks.map((chunk) => chunk.join('+')),
      'gateway.plan.bytes': chunks.reduce(
        (sum, chunk) => sum + BRACES_BYTES + estimator.estimateTotal(chunk),
        0,
      ),
      'gateway.plan.budget_bytes': options.budgetBytes,
    })
  }
  const limit = pLimit(options.concurrency)
  // One controller for all parts: a request-level failure (or the caller leaving) cancels the rest.
  const abort = new AbortController()
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, abort.signal]) : abort.signal
  const partCtx: CallContext = {
    signal,
    deadlineAt: ctx.deadlineAt,
    ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
  }

  const outcome: SplitFetchOutcome = {
    failures: new Map(),
    firstError: undefined,
    answered: 0,
    upstreamCalls: 0,
    bisections: 0,
    plannedChunks: chunks.length,
  }
  let fatal: AppError | undefined
  // Read through a call: parts set it while others await, which type narrowing does not see.
  const stopped = (): boolean => fatal !== undefined

  const fail = (chunk: readonly ImageType[], err: AppError, failure?: TypeFailure) => {
    outcome.firstError ??= err
    for (const type of chunk) {
      outcome.failures.set(type, failure ?? { status: err.statusCode, code: err.code, message: err.message })
    }
  }

  /** One upstream call; returns the parts to call next (halves after "too large", or a retry). */
  const attempt = async (
    chunk: readonly ImageType[],
    isRetry: boolean,
    partSpan: Span,
  ): Promise<Part[] | undefined> => {
    if (stopped()) return undefined
    const estimatedBytes = BRACES_BYTES + estimator.estimateTotal(chunk)
    const traced = partSpan.isRecording()
    if (traced) partSpan.setAttribute('gateway.part.planned_bytes', estimatedBytes)
    const kindOf = (body: unknown): BadGatewayKind =>
      classifyBadGateway({ body, estimatedBytes, capBytes: INCODE_RESPONSE_CAP_BYTES })
    // The scan done for the breaker's verdict is the one used below: a 10 MB answer is read once.
    let scanned: { body: Buffer; entries: ScannedEntry[] } | undefined
    const judge = (answer: RawAnswer): AnswerVerdict | undefined => {
      if (answer.status === 502) {
        return kindOf(parseUpstreamBody(answer.body)) === 'size-cap' ? 'healthy' : 'failure'
      }
      if (answer.status < 200 || answer.status > 299) return undefined
      // Streamed: the part's scanner took it whole (it throws, failing the call, on a bad answer).
      if (answer.streamedBytes !== undefined) return 'healthy'
      try {
        scanned = { body: answer.body, entries: scanFlatJsonObject(answer.body) }
        return 'healthy'
      } catch {
        return 'failure'
      }
    }
    let release: Release | undefined
    const { openPart } = options
    let streamed: PartStream | undefined
    const streamBody = openPart
      ? (status: number) => (status >= 200 && status <= 299 ? (streamed = openPart(chunk)) : undefined)
      : undefined
    try {
      if (options.memory) {
        release = await options.memory.reserve(estimator.estimateTotal(chunk), partCtx)
        if (stopped()) return undefined
      }
      outcome.upstreamCalls++
      const answer = await incode.call(
        endpoint,
        caller,
        { images: chunk },
        { ...partCtx, judge, ...(streamBody ? { streamBody } : {}) },
        { zeroPath: options.zeroPath === true },
      )
      if (streamed) {
        for (const [type, bytes] of streamed.sizes()) estimator.observe(type, bytes)
        if (traced)
          partSpan.setAttributes({
            'gateway.part.bytes': answer.streamedBytes ?? 0,
            'gateway.part.outcome': 'answered',
          })
        // Its images may wait behind another part's, which a request-level failure stops for good.
        await untilAborted(streamed.handedOn(), signal)
        outcome.answered++
        return undefined
      }
      const entries = scanned?.body === answer.body ? scanned.entries : scanUpstreamObject(answer.body)
      const requested = new Set<string>(chunk)
      for (const entry of entries) {
        if (entry.kind === 'string' && requested.has(entry.key))
          estimator.observe(entry.key as ImageType, entry.raw.length)
      }
      if (traced)
        partSpan.setAttributes({
          'gateway.part.bytes': answer.body.length,
          'gateway.part.outcome': 'answered',
        })
      await options.onAnswer?.(chunk, entries, answer.body)
      outcome.answered++
      return undefined
    } catch (err) {
      // A streamed part that broke off: what of it is whole in the answer is delivered; an image
      // cut on the wire leaves nothing to do but cut the answer (a request-level failure).
      const partial = streamed?.abandon()
      if (partial?.broken === true && !stopped()) {
        fatal = toAppError(err)
        abort.abort()
        return undefined
      }
      if (stopped()) return undefined
      if (partial && partial.delivered.size > 0) {
        chunk = chunk.filter((type) => !partial.delivered.has(type))
        if (chunk.length === 0) {
          outcome.answered++
          return undefined
        }
      }
      const badGateway =
        err instanceof UpstreamStatusError && err.upstreamStatus === 502
          ? kindOf(err.upstreamBody)
          : undefined
      const tooLarge = badGateway === 'size-cap'
      if (traced && badGateway !== undefined) partSpan.setAttribute('gateway.part.refusal', badGateway)
      if (tooLarge && chunk.length > 1) {
        outcome.bisections++
        if (traced) partSpan.setAttribute('gateway.part.outcome', 'bisected')
        return bisect(chunk, estimate).map((half) => ({
          chunk: half,
          isRetry: false,
          kind: 'bisection' as const,
        }))
      }
      if (tooLarge) {
        // Remember that this type is huge, so later plans give it a call of its own; a mark that
        // its next real size replaces, never an observation.
        estimator.markTooLarge(chunk[0] as ImageType, options.budgetBytes)
      }
      // Incode failing (not its size cap): once more, if the retry budget allows.
      if (badGateway === 'upstream-failure' && !isRetry && incode.spendRetry()) {
        if (traced) partSpan.setAttribute('gateway.part.outcome', 'retried')
        return [{ chunk: [...chunk], isRetry: true, kind: 'retry' }]
      }
      if (traced) partSpan.setAttribute('gateway.part.outcome', 'failed')
      const appErr = toAppError(err)
      // A failure about the whole request ends it whichever part meets it, and whenever: what
      // the caller gets does not depend on which part Incode answered first.
      if (options.failFast || isRequestLevel(err)) {
        fatal = appErr
        abort.abort()
        return undefined
      }
      // A type refused alone is reported as such, also as the request's error when nothing else
      // succeeded (not as the generic UPSTREAM_502 of the refusal).
      fail(
        chunk,
        tooLarge
          ? new AppError(502, 'IMAGE_TOO_LARGE', "This image alone exceeds Incode's 10 MB answer cap", {
              cause: err,
            })
          : appErr,
      )
      return undefined
    } finally {
      release?.()
    }
  }

  const run = async (part: Part): Promise<void> => {
    const next = await limit(() =>
      inSpan('images.part', (partSpan) => {
        if (partSpan.isRecording()) {
          partSpan.setAttributes({ 'gateway.part.types': [...part.chunk], 'gateway.part.kind': part.kind })
        }
        return attempt(part.chunk, part.isRetry, partSpan)
      }),
    )
    if (next) await Promise.all(next.map(run))
  }

  await Promise.all(chunks.map((chunk) => run({ chunk, isRetry: false, kind: 'planned' })))
  if (span.isRecording()) {
    span.setAttributes({
      'gateway.upstream_calls': outcome.upstreamCalls,
      'gateway.bisections': outcome.bisections,
      'gateway.parts.answered': outcome.answered,
      'gateway.types.failed': [...outcome.failures.keys()],
    })
  }
  const { metrics } = options
  if (metrics) {
    metrics.callsPerRequest.observe(outcome.upstreamCalls)
    if (chunks.length > 1) metrics.splits.inc()
    if (outcome.bisections > 0) metrics.bisections.inc(outcome.bisections)
  }
  if (fatal !== undefined) throw fatal
  return outcome
}
