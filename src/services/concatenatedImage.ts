import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Caller } from '../domain/calls.js'
import type { ImageType } from '../domain/imageTypes.js'
import { foldTypes } from '../domain/requestedTypes.js'
import { UpstreamBadResponseError } from '../errors.js'
import { callContext } from './callContext.js'
import { scanUpstreamObject } from './upstreamJson.js'

/** The body Incode takes: the types to combine, or none for all of them. */
function concatenatedBody(types: readonly ImageType[] | undefined): { images?: ImageType[] } {
  return types ? { images: foldTypes(types) } : {}
}

/**
 * /v1: all latest images combined into one, as `{"image": base64}`. The base64 is passed on as
 * Incode sent it, never decoded; an answer without an image is Incode's fault (502).
 */
export async function concatenatedImage(
  request: FastifyRequest,
  reply: FastifyReply,
  caller: Caller,
  types: readonly ImageType[] | undefined,
): Promise<Buffer> {
  const answer = await request.server.incode.call(
    'concatenatedImages',
    caller,
    concatenatedBody(types),
    callContext(request, reply),
  )
  const image = concatenatedBase64(answer.body)
  return Buffer.concat([Buffer.from('{"image":"'), image, Buffer.from('"}')])
}

/** The base64 of Incode's `{"image": …}` answer; anything else is Incode's fault (502). */
function concatenatedBase64(body: Buffer): Buffer {
  const image = scanUpstreamObject(body).find((entry) => entry.key === 'image')
  if (image?.kind !== 'string' || image.raw.length === 0) {
    throw new UpstreamBadResponseError('Incode answered without a concatenated image')
  }
  return image.raw
}

/** Incode's answer as it gave it: status, content type and body. */
export interface ForwardedAnswer {
  status: number
  contentType: string
  body: Buffer
}

/**
 * Drop-in: the concatenated image as Incode answers it, whatever its status; but a success that
 * does not hold an image (not JSON, no `image`) is never passed on as one: 502, as on every route.
 */
export async function forwardConcatenated(
  request: FastifyRequest,
  reply: FastifyReply,
  caller: Extract<Caller, { kind: 'token' }>,
  types: readonly ImageType[] | undefined,
  zeroPath: boolean,
): Promise<ForwardedAnswer> {
  const answer = await request.server.incode.forward(
    'concatenatedImages',
    caller,
    concatenatedBody(types),
    callContext(request, reply),
    { zeroPath },
  )
  if (answer.status >= 200 && answer.status < 300) concatenatedBase64(answer.body)
  return {
    status: answer.status,
    contentType: answer.headers['content-type'] ?? 'application/json',
    body: answer.body,
  }
}
