import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Caller } from '../../domain/calls.js'
import type { ImageType } from '../../domain/imageTypes.js'
import { AdminNotConfiguredError } from '../../errors.js'
import { ImageTypeSchema, interviewIdSchema, refTo } from '../../schemas.js'
import { singleImage } from '../../services/singleImage.js'
import { headerValue, noStore, sessionCaller } from '../context.js'
import { imageBytesAnswer, notModifiedAnswer, problemAnswers } from '../responses.js'

const TypeParam = {
  type: Type.Unsafe<ImageType>({
    ...refTo(ImageTypeSchema),
    description: 'The image type to answer.',
    examples: ['selfie'],
  }),
}

const ConditionalHeaders = Type.Object({
  'if-none-match': Type.Optional(
    Type.String({
      description: 'The ETag of a copy already held: 304 Not Modified when it is still current.',
    }),
  ),
})

const DESCRIPTION =
  "The latest capture of one image type as JPEG bytes, decoded from Incode's base64 answer: what an " +
  '`<img>` or a file download needs, rather than base64 in JSON. Never stored by shared caches ' +
  '(`Cache-Control: no-store, private`); the strong `ETag` is the SHA-256 of the bytes, so a caller ' +
  'holding them sends `If-None-Match` and gets 304. 404 `IMAGE_NOT_FOUND` when the session has no ' +
  "image of that type; 502 `IMAGE_TOO_LARGE` when that image alone exceeds Incode's 10 MB answer cap; " +
  '502 `UPSTREAM_NOT_JPEG` when Incode sent bytes that are not a JPEG.'

const responses = {
  200: imageBytesAnswer('The JPEG image.'),
  304: notModifiedAnswer('Not modified: the `If-None-Match` ETag is current.'),
  ...problemAnswers([400, 401, 403, 404, 429, 502, 503, 504] as const),
}

/** GET one image as bytes: partners by interview ID (admin token), frontends by session token. */
const singleImageRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const send = async (request: FastifyRequest, reply: FastifyReply, caller: Caller, type: ImageType) => {
    const answer = await singleImage(request, reply, {
      caller,
      type,
      ifNoneMatch: headerValue(request, 'if-none-match'),
    })
    noStore(reply).header('etag', answer.etag)
    if (answer.kind === 'not-modified') return reply.code(304).send()
    return reply.type('image/jpeg').header('content-length', String(answer.length)).send(answer.body)
  }

  app.get(
    '/sessions/:interviewId/images/:type',
    {
      config: { scope: 'images:read' },
      schema: {
        tags: ['images'],
        summary: 'The latest image of one type as JPEG bytes',
        description: DESCRIPTION,
        operationId: 'getSessionImage',
        params: Type.Object({
          interviewId: interviewIdSchema('Incode interview (session) ID.'),
          ...TypeParam,
        }),
        headers: ConditionalHeaders,
        security: [{ apiKey: [] }],
        response: responses,
      },
    },
    async (request, reply) => {
      if (!app.adminTokens) throw new AdminNotConfiguredError()
      const caller: Caller = { kind: 'admin', interviewId: request.params.interviewId }
      return send(request, reply, caller, request.params.type)
    },
  )

  app.get(
    '/session/images/:type',
    {
      schema: {
        tags: ['images'],
        summary: "The latest image of one type of the session token's own session, as JPEG bytes",
        description: DESCRIPTION,
        operationId: 'getOwnSessionImage',
        params: Type.Object(TypeParam),
        headers: ConditionalHeaders,
        security: [{ sessionToken: [] }],
        response: responses,
      },
    },
    async (request, reply) => send(request, reply, sessionCaller(request), request.params.type),
  )
}

export default singleImageRoutes
