import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { scanFlatJsonObject } from '../../domain/flatJson.js'
import type { ImageType } from '../../domain/imageTypes.js'
import { linksAnswerJson } from '../../domain/links.js'
import { foldTypes } from '../../domain/requestedTypes.js'
import { AdminNotConfiguredError, UpstreamBadResponseError } from '../../errors.js'
import type { Caller } from '../../domain/calls.js'
import { lookupLinks } from '../../services/linkLookup.js'
import { callContext, emptyBodyIsEmptyObject, noStore, sendJsonText, sessionCaller } from '../context.js'
import { serveImages } from './imagesHandler.js'
import {
  imagesBody,
  InterviewParams,
  InvalidatedResponse,
  problemResponses,
  SessionTokenHeaders,
  v1Schemas,
} from './schemas.js'

/** The /v1 routes: partner services by interview ID (admin token), frontends by session token. */
const v1Routes: FastifyPluginAsyncTypebox = async (app) => {
  for (const schema of v1Schemas) app.addSchema(schema)
  const Body = imagesBody(app.config.MAX_IMAGES_PER_REQUEST)
  const OptionalBody = imagesBody(app.config.MAX_IMAGES_PER_REQUEST, { optional: true })
  const ImagesRef = Type.Ref('ImagesResponse')
  const LinksRef = Type.Ref('LinksResponse')

  const adminCaller = (interviewId: string): Caller => {
    if (!app.adminTokens) throw new AdminNotConfiguredError()
    return { kind: 'admin', interviewId }
  }

  // ---- base64 images ------------------------------------------------------------------------
  app.post(
    '/sessions/:interviewId/images',
    {
      config: { scope: 'images:read' },
      schema: {
        tags: ['images'],
        summary: 'Latest images of a session as base64, split under the 10 MB cap and merged',
        params: InterviewParams,
        security: [{ apiKey: [] }],
        body: Body,
        response: { 200: ImagesRef, ...problemResponses },
      },
    },
    (request, reply) =>
      serveImages(request, reply, adminCaller(request.params.interviewId), request.body.images, 'images'),
  )

  app.post(
    '/session/images',
    {
      schema: {
        tags: ['images'],
        summary: "Latest images of the session token's own session as base64",
        headers: SessionTokenHeaders,
        security: [{ sessionToken: [] }],
        body: Body,
        response: { 200: ImagesRef, ...problemResponses },
      },
    },
    (request, reply) => serveImages(request, reply, sessionCaller(request), request.body.images, 'images'),
  )

  app.post(
    '/sessions/:interviewId/second-id/images',
    {
      config: { scope: 'images:read' },
      schema: {
        tags: ['images'],
        summary: "The second ID document's images as base64",
        params: InterviewParams,
        security: [{ apiKey: [] }],
        body: Body,
        response: { 200: ImagesRef, ...problemResponses },
      },
    },
    (request, reply) =>
      serveImages(
        request,
        reply,
        adminCaller(request.params.interviewId),
        request.body.images,
        'secondIdImages',
      ),
  )

  // The body is optional: its own scope reads no body, or an empty one, as {}.
  await app.register(async (scope) => {
    emptyBodyIsEmptyObject(scope)
    scope.withTypeProvider<TypeBoxTypeProvider>().post(
      '/sessions/:interviewId/images/concatenated',
      {
        config: { scope: 'images:read' },
        schema: {
          tags: ['images'],
          summary: 'All latest images combined into one JPEG',
          params: InterviewParams,
          security: [{ apiKey: [] }],
          body: OptionalBody,
          response: { 200: Type.Ref('ConcatenatedResponse'), ...problemResponses },
        },
      },
      async (request, reply) => {
        const caller = adminCaller(request.params.interviewId)
        const images = request.body.images ? foldTypes(request.body.images) : undefined
        const answer = await app.incode.call(
          'concatenatedImages',
          caller,
          images ? { images } : {},
          callContext(request, reply),
        )
        const image = scanOrBad(answer.body).find((e) => e.key === 'image')
        if (image?.kind !== 'string' || image.raw.length === 0) {
          throw new UpstreamBadResponseError('Incode answered without a concatenated image')
        }
        // The answer is passed on as Incode sent it: no decoding of the base64.
        return noStore(reply)
          .type('application/json')
          .send(Buffer.concat([Buffer.from('{"image":"'), image.raw, Buffer.from('"}')]))
      },
    )
  })

  // ---- links --------------------------------------------------------------------------------
  const serveLinks = async (
    request: FastifyRequest,
    reply: FastifyReply,
    caller: Caller,
    requested: readonly ImageType[],
  ) => {
    // The service derives the cache scope from the caller: a route never picks one.
    const result = await lookupLinks(app.linkDeps, {
      caller,
      types: requested,
      requestId: request.id,
    })
    // Cached entries carry their text already: the answer is put together, not serialised.
    return sendJsonText(
      noStore(reply).header('x-cache', result.status),
      linksAnswerJson(result.entries, result.missing),
    )
  }

  app.post(
    '/sessions/:interviewId/image-links',
    {
      config: { scope: 'links:read' },
      schema: {
        tags: ['links'],
        summary: 'Temporary links to every attempt of each image type, cached short of their expiry',
        params: InterviewParams,
        security: [{ apiKey: [] }],
        body: Body,
        response: { 200: LinksRef, ...problemResponses },
      },
    },
    async (request, reply) =>
      serveLinks(request, reply, adminCaller(request.params.interviewId), request.body.images),
  )

  app.post(
    '/session/image-links',
    {
      schema: {
        tags: ['links'],
        summary: "Temporary links for the session token's own session",
        headers: SessionTokenHeaders,
        security: [{ sessionToken: [] }],
        body: Body,
        response: { 200: LinksRef, ...problemResponses },
      },
    },
    async (request, reply) => serveLinks(request, reply, sessionCaller(request), request.body.images),
  )

  // No body is read; a partner client sending its usual JSON content type with none is fine.
  await app.register(async (scope) => {
    emptyBodyIsEmptyObject(scope)
    scope.withTypeProvider<TypeBoxTypeProvider>().delete(
      '/sessions/:interviewId/image-links',
      {
        config: { scope: 'cache:write' },
        schema: {
          tags: ['links'],
          summary: "Drop the cached links of a session (e.g. after a new capture), its frontends' included",
          params: InterviewParams,
          security: [{ apiKey: [] }],
          response: {
            200: InvalidatedResponse,
            400: problemResponses[400],
            401: problemResponses[401],
            403: problemResponses[403],
          },
        },
      },
      (request) => ({ dropped: app.linkCache.invalidate(request.params.interviewId) }),
    )
  })
}

function scanOrBad(body: Buffer) {
  try {
    return scanFlatJsonObject(body)
  } catch (err) {
    throw new UpstreamBadResponseError(
      'Incode sent an answer that is not a JSON object',
      'UPSTREAM_BAD_RESPONSE',
      { cause: err },
    )
  }
}

export default v1Routes
