import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ImageType } from '../../domain/imageTypes.js'
import { classifyChunk, MergedImagesWriter } from '../../domain/imagesMerge.js'
import { foldTypes } from '../../domain/requestedTypes.js'
import { splitFetch, type TypeFailure } from '../../services/splitFetch.js'
import type { Caller } from '../../upstream/incode.js'
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
  let out: PassThrough | undefined
  const missing: ImageType[] = []

  const start = (): PassThrough => {
    if (out) return out
    out = new PassThrough()
    noStore(reply).type('application/json')
    void reply.send(out)
    return out
  }
  const writer = new MergedImagesWriter((chunk) => {
    const stream = start()
    if (!stream.destroyed) stream.write(chunk)
  })

  let outcome
  try {
    outcome = await splitFetch({
      incode: app.incode,
      estimator: app.sizeEstimator,
      telemetry: app.telemetry,
      budgetBytes: app.config.CHUNK_BUDGET_BYTES,
      concurrency: app.config.FANOUT_CONCURRENCY,
      plan: app.config.SPLIT_PLAN,
      // Each part is written to the caller as it arrives, so it reserves memory only until then.
      memory: app.answerMemory,
      endpoint,
      caller,
      types,
      ctx,
      failFast: false,
      onAnswer: async (chunk, entries) => {
        const classified = classifyChunk(chunk, entries)
        missing.push(...classified.missing)
        for (const image of classified.images) writer.addImage(image.type, image.json)
        // Backpressure: a slow caller holds at most one part's worth per in-flight call.
        if (out?.writableNeedDrain) await once(out, 'drain', { signal: ctx.signal })
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
