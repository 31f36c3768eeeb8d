import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Caller } from '../domain/calls.js'
import { recordAnswerTypes, recordServedTypes } from '../domain/accessEvent.js'
import type { ImageType } from '../domain/imageTypes.js'
import { MergedImagesWriter } from '../domain/imagesMerge.js'
import { type IncodeImagesPart, incodeImagesJson } from '../domain/incodeImagesMerge.js'
import { foldTypes } from '../domain/requestedTypes.js'
import { ClientClosedError } from '../errors.js'
import { callContext } from './callContext.js'
import { LiveMerge } from './liveMerge.js'
import { splitFetch, type SplitFetchOptions } from './splitFetch.js'
import { type AnswerBody, callerMemory, watchedAnswer } from './writeWatch.js'

/** One request for base64 images, as a route hands it over once parsed. */
export interface ImagesRequest {
  caller: Caller
  types: readonly ImageType[]
  endpoint: 'images' | 'secondIdImages'
  /** Drop-in `/0` form: Incode is called with the caller's token alone. */
  zeroPath?: boolean
}

/** What every split fetch for `request` shares: the service's parts and settings. */
function fetchOptions(
  request: FastifyRequest,
  images: ImagesRequest,
): Omit<SplitFetchOptions, 'ctx' | 'failFast' | 'onAnswer' | 'types'> {
  const { incode, sizeEstimator, gatewayMetrics: metrics, config } = request.server
  return {
    incode,
    estimator: sizeEstimator,
    metrics,
    budgetBytes: config.CHUNK_BUDGET_BYTES,
    concurrency: config.FANOUT_CONCURRENCY,
    plan: config.SPLIT_PLAN,
    endpoint: images.endpoint,
    caller: images.caller,
    zeroPath: images.zeroPath === true,
  }
}

/**
 * /v1: the images, split into parts under Incode's cap, fetched in parallel and merged into
 * `{"images", "missing", "errors"}` as the parts arrive: each part's body streams through the
 * scanner into the answer (LiveMerge), one image at a time, while Incode sends it. Resolves with
 * the answer body once its status is known, 200, that is once one part has arrived whole (or
 * every part is done); the body goes on filling as the other parts arrive. Rejects, for the
 * error handler to answer, when the request fails before that.
 *
 * A part that breaks off in the middle of an image already on its way out can only cut the
 * answer; one that breaks off between images keeps those that are whole, and lists its other
 * types under `errors`.
 *
 * A failure that concerns the whole request (a refused token, an unknown interview, the caller
 * leaving: splitFetch stops at the first) fails it whichever part it comes from and whenever it
 * comes: before the status line with its own status, after it by cutting the answer (its socket
 * destroyed), so that a caller never reads a complete 200 that silently lacks types, and never
 * waits on an answer that will not be finished. Failures of single parts are listed in `errors`.
 *
 * Each part reserves its memory within the caller's share only until the caller's socket has taken
 * it; a caller that stops reading is cut after WRITE_STALL_MS, which gives the memory back.
 */
export function streamImages(
  request: FastifyRequest,
  reply: FastifyReply,
  images: ImagesRequest,
): Promise<Readable> {
  const ctx = callContext(request, reply)
  return new Promise((resolve, reject) => {
    let out: AnswerBody | undefined
    const open = (): AnswerBody => {
      if (out) return out
      out = watchedAnswer(reply, ctx.deadlineAt)
      resolve(out)
      return out
    }
    const writer = new MergedImagesWriter((chunk) => open().add(chunk))
    const merge = new LiveMerge(writer)
    const missing: ImageType[] = []
    const delivered = new Set<ImageType>()

    const fetchAndWrite = async (): Promise<void> => {
      const outcome = await splitFetch({
        ...fetchOptions(request, images),
        memory: callerMemory(request),
        types: foldTypes(images.types),
        ctx,
        failFast: false,
        openPart: (chunk) => {
          const part = merge.part(chunk)
          return {
            write: (piece) => part.write(piece),
            end: () => part.end(),
            sizes: () => part.sizes(),
            handedOn: async () => {
              await part.handedOn()
              missing.push(...part.missing)
              for (const type of part.delivered) delivered.add(type)
              // The part's memory stays reserved until the socket has taken its bytes; a caller
              // that stops reading is cut by the watch (after WRITE_STALL_MS), which ends this wait.
              if (out) await out.written()
            },
            abandon: () => {
              const partial = part.abandon()
              for (const type of partial.delivered) delivered.add(type)
              return partial
            },
          }
        },
      })
      recordServedTypes(request.accessRecord, [...delivered, ...missing], delivered)
      // No part succeeded: the request fails as its first failure did.
      request.accessRecord?.failed.push(...outcome.failures.keys())
      if (outcome.answered === 0 && outcome.firstError) throw outcome.firstError
      writer.finish({ missing, errors: Object.fromEntries(outcome.failures) })
      open().end()
    }

    fetchAndWrite().catch((err: unknown) => {
      const error = err instanceof Error ? err : new Error('the images could not be fetched', { cause: err })
      merge.close(error)
      if (!out) {
        reject(error)
        return
      }
      // The status line is out: all that is left is to cut the answer short, never to leave it open.
      if (!(error instanceof ClientClosedError)) {
        const { code } = error as { code?: unknown }
        reply.log.warn({ code }, 'answer cut: the request failed after its status line was sent')
      }
      reply.raw.destroy()
    })
  })
}

/** A drop-in answer: Incode's flat object, and its length for content-length. */
export interface IncodeImagesAnswer {
  body: Readable
  length: number
}

/**
 * Drop-in: the images in Incode's own answer shape (a flat object of type → base64). The parts of
 * a split request are held until all have arrived, since Incode's status line cannot be known
 * before; any part failing fails the whole request, as one call to Incode would. The whole
 * answer's memory is reserved up front within the caller's share (reserving part by part while
 * holding earlier parts could deadlock under load) and kept until the caller's socket has taken
 * its last byte, or the answer is cut.
 */
export async function incodeImages(
  request: FastifyRequest,
  reply: FastifyReply,
  images: ImagesRequest,
): Promise<IncodeImagesAnswer> {
  const ctx = callContext(request, reply)
  const types = foldTypes(images.types)
  const release = await callerMemory(request).reserve(request.server.sizeEstimator.estimateTotal(types), ctx)
  let handedOn = false
  try {
    const parts: Array<IncodeImagesPart & { body: Buffer }> = []
    const outcome = await splitFetch({
      ...fetchOptions(request, images),
      types,
      ctx,
      failFast: true,
      onAnswer: (chunk, entries, body) => {
        parts.push({ requested: chunk, entries, body })
        recordAnswerTypes(request.accessRecord, chunk, entries)
      },
    })
    const only = parts[0]
    // One call answered everything: Incode's answer is passed on untouched.
    const json =
      parts.length === 1 && outcome.upstreamCalls === 1 && only ? only.body : incodeImagesJson(parts)
    const body = watchedAnswer(reply, ctx.deadlineAt)
    body.hold(release)
    handedOn = true
    body.add(json)
    body.end()
    return { body, length: json.length }
  } finally {
    // Nothing will be sent (an error answer is small): the memory is not needed any more.
    if (!handedOn) release()
  }
}
