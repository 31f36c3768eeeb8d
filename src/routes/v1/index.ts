import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ImageType } from '../../domain/imageTypes.js'
import { linksAnswerJson } from '../../domain/links.js'
import { AdminNotConfiguredError } from '../../errors.js'
import type { Caller } from '../../domain/calls.js'
import { streamImages } from '../../services/base64Images.js'
import { concatenatedImage } from '../../services/concatenatedImage.js'
import { lookupLinks } from '../../services/linkLookup.js'
import { emptyBodyIsEmptyObject, noStore, sendJsonText, sessionCaller } from '../context.js'
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
  // The service resolves once the answer's status is known; the body goes on filling after that.
  const sendImages = (reply: FastifyReply, body: Readable) =>
    noStore(reply).type('application/json').send(body)

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
    async (request, reply) => {
      const caller = adminCaller(request.params.interviewId)
      const images = { caller, types: request.body.images, endpoint: 'images' } as const
      return sendImages(reply, await streamImages(request, reply, images))
    },
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
    async (request, reply) => {
      const images = {
        caller: sessionCaller(request),
        types: request.body.images,
        endpoint: 'images',
      } as const
      return sendImages(reply, await streamImages(request, reply, images))
    },
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
    async (request, reply) => {
      const caller = adminCaller(request.params.interviewId)
      const images = { caller, types: request.body.images, endpoint: 'secondIdImages' } as const
      return sendImages(reply, await streamImages(request, reply, images))
    },
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
        const answer = await concatenatedImage(request, reply, caller, request.body.images)
        return noStore(reply).type('application/json').send(answer)
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
      accessRecord: request.accessRecord,
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
      (request) => {
        const dropped = app.linkCache.invalidate(request.params.interviewId)
        if (request.accessRecord) Object.assign(request.accessRecord, { cache: 'INVALIDATED', dropped })
        return { dropped }
      },
    )
  })
}

export default v1Routes
