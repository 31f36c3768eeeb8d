import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ImageType } from '../../domain/imageTypes.js'
import { classifyChunk, MergedImagesWriter } from '../../domain/imagesMerge.js'
import { foldTypes } from '../../domain/requestedTypes.js'
import { splitFetch, type TypeFailure } from '../../services/splitFetch.js'
import { type AnswerBody, callerMemory, watchedAnswer } from '../../services/writeWatch.js'
import type { Caller } from '../../domain/calls.js'
import { callContext, noStore } from '../context.js'

/**
 * Serves a base64 image list for /v1: split into parts under the cap, fetched in parallel, and
 * streamed out as parts complete in `{"images", "missing", "errors"}` form. The status line is
 * held back until the first part succeeds, so a request-level failure (bad token, unknown
 * interview) still gets its own status rather than a 200 with every type in `errors`.
 */
export async function serveImages(
  request: FastifyRequest,
  reply: FastifyReply,
  caller: Caller,
  requested: readonly ImageType[],
  endpoint: 'images' | 'secondIdImages',
): Promise<FastifyReply> {
  const app = request.server
  const types = foldTypes(requested)
  const ctx = callContext(request, reply)
  let out: AnswerBody | undefined
  const missing: ImageType[] = []

  const start = (): AnswerBody => {
    if (out) return out
    out = watchedAnswer(reply, ctx.deadlineAt)
    noStore(reply).type('application/json')
    void reply.send(out)
    return out
  }
  const writer = new MergedImagesWriter((chunk) => start().add(chunk))

  let outcome
  try {
    outcome = await splitFetch({
      incode: app.incode,
      estimator: app.sizeEstimator,
      telemetry: app.telemetry,
      budgetBytes: app.config.CHUNK_BUDGET_BYTES,
      concurrency: app.config.FANOUT_CONCURRENCY,
      plan: app.config.SPLIT_PLAN,
      // Each part is written to the caller as it arrives, so it reserves memory only until the
      // caller's socket has taken it (onAnswer waits for that), within its caller's share.
      memory: callerMemory(request),
      endpoint,
      caller,
      types,
      ctx,
      failFast: false,
      onAnswer: async (chunk, entries) => {
        const classified = classifyChunk(chunk, entries)
        missing.push(...classified.missing)
        for (const image of classified.images) writer.addImage(image.type, image.json)
        // The part's memory stays reserved until the socket has taken its bytes; a caller that
        // stops reading is cut by the watch (after WRITE_STALL_MS), which ends this wait.
        if (out) await out.written()
      },
    })
  } catch (err) {
    // Once streaming has begun the status is sent: all that is left is to cut the answer short.
    if (out) {
      out.destroy()
      return reply
    }
    throw err
  }

  if (outcome.answered === 0 && outcome.firstError) throw outcome.firstError
  const errors: Partial<Record<ImageType, TypeFailure>> = Object.fromEntries(outcome.failures)
  if (!out) {
    // Nothing was streamed yet (every requested type is missing): the headers can still be set.
    start()
  }
  writer.finish({ missing, errors })
  out?.end()
  return reply
}
