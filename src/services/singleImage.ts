import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Caller } from '../domain/calls.js'
import { recordServedTypes } from '../domain/accessEvent.js'
import type { ImageType } from '../domain/imageTypes.js'
import { classifyChunk } from '../domain/imagesMerge.js'
import { isJpeg, noneMatchFails, strongEtag } from '../domain/jpegImage.js'
import { NotFoundError, UpstreamBadResponseError } from '../errors.js'
import { callContext } from './callContext.js'
import { splitFetch } from './splitFetch.js'
import { callerMemory, watchedAnswer } from './writeWatch.js'

/** One image type of one session, as a route hands it over once parsed. */
export interface SingleImageRequest {
  caller: Caller
  type: ImageType
  /** The request's If-None-Match header, when it sent one. */
  ifNoneMatch: string | undefined
}

export type SingleImageAnswer =
  /** The JPEG bytes, written under watch, with their length and strong ETag. */
  | { kind: 'image'; body: Readable; length: number; etag: string }
  /** The caller's If-None-Match names these bytes already: 304, no body. */
  | { kind: 'not-modified'; etag: string }

/**
 * /v1: the latest image of one type as JPEG bytes, decoded from Incode's base64 answer.
 *
 * The call goes through splitFetch like every base64 fetch, so a type that alone exceeds Incode's
 * cap is the same IMAGE_TOO_LARGE, an Incode failure is retried within the retry budget and
 * counted by the breaker, and the size estimator learns from it. Its memory (the estimate of the
 * base64 answer, which covers the decoded bytes) is reserved within the caller's share before the
 * call and held until the caller's socket has taken the last byte, or the answer is cut after
 * WRITE_STALL_MS without progress. The base64 text is dropped once decoded.
 *
 * An answer without the type is 404 IMAGE_NOT_FOUND; bytes that are not a JPEG are Incode's fault
 * (502 UPSTREAM_NOT_JPEG): never served under a type they are not.
 */
export async function singleImage(
  request: FastifyRequest,
  reply: FastifyReply,
  wanted: SingleImageRequest,
): Promise<SingleImageAnswer> {
  const { incode, sizeEstimator, gatewayMetrics: metrics, config } = request.server
  const ctx = callContext(request, reply)
  const types = [wanted.type]
  const release = await callerMemory(request).reserve(sizeEstimator.estimateTotal(types), ctx)
  let handedOn = false
  try {
    let base64: Buffer | undefined
    const outcome = await splitFetch({
      incode,
      estimator: sizeEstimator,
      metrics,
      budgetBytes: config.CHUNK_BUDGET_BYTES,
      concurrency: 1,
      endpoint: 'images',
      caller: wanted.caller,
      types,
      ctx,
      failFast: false,
      onAnswer: (chunk, entries) => {
        // The JSON string of the image (quotes included, escapes resolved), or none.
        const json = classifyChunk(chunk, entries).images[0]?.json
        base64 = json?.subarray(1, json.length - 1)
      },
    })
    // For the access trail: the one type, served, missing or failed.
    request.accessRecord?.failed.push(...outcome.failures.keys())
    if (outcome.answered === 0 && outcome.firstError) throw outcome.firstError
    recordServedTypes(request.accessRecord, types, new Set(base64 === undefined ? [] : types))
    if (base64 === undefined) {
      throw new NotFoundError(`The session has no ${wanted.type} image`, 'IMAGE_NOT_FOUND')
    }
    const bytes = Buffer.from(base64.toString('latin1'), 'base64')
    base64 = undefined
    if (!isJpeg(bytes)) {
      throw new UpstreamBadResponseError(`Incode's ${wanted.type} image is not a JPEG`, 'UPSTREAM_NOT_JPEG')
    }
    const etag = strongEtag(bytes)
    if (noneMatchFails(wanted.ifNoneMatch, etag)) return { kind: 'not-modified', etag }
    const body = watchedAnswer(reply, ctx.deadlineAt)
    body.hold(release)
    handedOn = true
    body.add(bytes)
    body.end()
    return { kind: 'image', body, length: bytes.length, etag }
  } finally {
    // Nothing is written (an error, a 304): the memory is not needed any more.
    if (!handedOn) release()
  }
}
